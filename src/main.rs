//! The `tessera` binary: one subcommand per component, plus `local` to run a
//! whole cluster on one machine.

mod config;
mod local;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tessera_topo::{TabletAlias, TabletType, Topo};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Sharded, highly available MariaDB behind one MySQL endpoint"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A whole cluster on this machine.
    Local {
        #[command(subcommand)]
        command: local::LocalCommand,
    },
    /// The MySQL-protocol front door.
    Gate(GateArgs),
    /// The agent beside one mysqld.
    Tablet(TabletArgs),
    /// The control plane (HTTP API).
    Ctld(CtldArgs),
    /// Failure detector and automatic recovery (also runs inside `local up`).
    Orc(OrcArgs),
    /// Command-line client of ctld.
    Ctl {
        /// ctld's HTTP address.
        #[arg(long, default_value = "127.0.0.1:15000", global = true)]
        server: String,
        #[command(subcommand)]
        command: tessera_ctld::cli::CtlCommand,
    },
}

#[derive(Args)]
struct TopoArgs {
    /// Topology store: `etcd:http://127.0.0.1:2379[,…][?root=/tessera]` or `local:/path/topo.redb`.
    #[arg(long, env = "TESSERA_TOPO")]
    topo: String,
}

impl TopoArgs {
    async fn open(&self) -> anyhow::Result<Topo> {
        let store = tessera_topo::open_store(&self.topo)
            .await
            .with_context(|| format!("cannot open topology {}", self.topo))?;
        Ok(Topo::new(store))
    }
}

#[derive(Args)]
struct GateArgs {
    #[command(flatten)]
    topo: TopoArgs,
    #[arg(long, default_value = "zone1")]
    cell: String,
    #[arg(long, default_value = "127.0.0.1:15306")]
    mysql_listen: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:15001")]
    http_listen: SocketAddr,
    /// Vitess-format static users file; without it, user `user` with an empty password.
    #[arg(long)]
    users_file: Option<PathBuf>,
    #[arg(long, default_value = "tessera_app")]
    backend_user: String,
    #[arg(
        long,
        default_value = "tessera_app_pw",
        env = "TESSERA_BACKEND_PASSWORD"
    )]
    backend_password: String,
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    pool_size: usize,
    /// Do not mark writes on semi_sync keyspaces: a write in flight when its
    /// primary fails then ends with error 2013 (outcome unknown) instead of
    /// being settled, and transactions skip one small row write each.
    #[arg(long)]
    no_write_markers: bool,
    /// Rows one query may hold in the gate where the gate evaluates it over
    /// gathered rows (as Vitess's max_memory_rows); more fail with 1235.
    #[arg(long, default_value_t = 100_000)]
    max_memory_rows: usize,
}

#[derive(Args)]
struct TabletArgs {
    #[command(flatten)]
    topo: TopoArgs,
    /// `cell-uid`, e.g. zone1-100.
    #[arg(long)]
    alias: TabletAlias,
    #[arg(long)]
    keyspace: String,
    #[arg(long, default_value = "0")]
    shard: String,
    /// replica or rdonly (a tablet becomes primary only by a reparent).
    #[arg(long, default_value = "replica")]
    tablet_type: TabletType,
    /// The tablet's directory (mysqld datadir, config, logs).
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    mysql_port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    mysql_host: String,
    /// The agent's HTTP address.
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long, default_value_t = 32)]
    buffer_pool_mb: u32,
    /// Appended last to the generated my.cnf.
    #[arg(long)]
    mysqld_cnf: Option<PathBuf>,
    /// Replaces the SQL that creates the internal users at initialisation.
    #[arg(long)]
    init_sql: Option<PathBuf>,
}

#[derive(Args)]
struct CtldArgs {
    #[command(flatten)]
    topo: TopoArgs,
    #[arg(long, default_value = "zone1")]
    cell: String,
    #[arg(long, default_value = "127.0.0.1:15000")]
    listen: SocketAddr,
    /// Serve the API without any mutating action (and without orc).
    #[arg(long)]
    read_only: bool,
    /// Do not run orc (automatic failure detection and recovery) inside ctld.
    #[arg(long)]
    no_orc: bool,
}

#[derive(Args)]
struct OrcArgs {
    #[command(flatten)]
    topo: TopoArgs,
    /// Seconds between two looks at every shard.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Consecutive rounds a primary must look dead before it is replaced.
    #[arg(long, default_value_t = 3)]
    primary_failure_checks: u32,
    /// Watch only these keyspaces (repeat the flag); default: all.
    #[arg(long = "keyspace")]
    keyspaces: Vec<String>,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tessera=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::var("TESSERA_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        builder.worker_threads(n);
    }
    let runtime = builder.enable_all().build()?;
    let result = runtime.block_on(run(cli));
    // Every component has stopped by now; a blocking task still parked (a
    // topology watch, a child's pipe) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(3));
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Local { command } => local::run(command).await,
        Command::Ctl { server, command } => tessera_ctld::cli::run_ctl(&server, command).await,
        Command::Gate(args) => {
            let topo = args.topo.open().await?;
            let cfg = tessera_gate::GateConfig {
                cell: args.cell,
                mysql_listen: args.mysql_listen,
                http_listen: args.http_listen,
                users_file: args.users_file,
                backend_user: args.backend_user,
                backend_password: args.backend_password,
                tls_cert: args.tls_cert,
                tls_key: args.tls_key,
                health_interval: Duration::from_secs(1),
                pool_size: args.pool_size,
                write_markers: !args.no_write_markers,
                max_memory_rows: args.max_memory_rows,
                ..Default::default()
            };
            let gate = tessera_gate::Gate::start(cfg, topo).await?;
            tracing::info!(mysql = %gate.mysql_addr(), http = %gate.http_addr(), "gate serving");
            local::wait_for_shutdown_signal().await;
            gate.shutdown().await;
            Ok(())
        }
        Command::Tablet(args) => {
            let topo = args.topo.open().await?;
            let mysqld = tessera_tablet::mysqld::MysqldConfig {
                root_dir: args.data_dir,
                port: args.mysql_port,
                bind_address: args.mysql_host.clone(),
                server_id: args.alias.uid,
                buffer_pool_mb: args.buffer_pool_mb,
                extra_cnf: args.mysqld_cnf,
                init_sql: args.init_sql,
                database: args.keyspace.clone(),
                credentials: Default::default(),
            };
            let cfg = tessera_tablet::TabletConfig {
                alias: args.alias,
                keyspace: args.keyspace,
                shard: args.shard,
                initial_type: args.tablet_type,
                mysqld,
                mysql_host: args.mysql_host,
                agent_listen: args.listen,
                hostname: local::hostname(),
            };
            tessera_tablet::run_tablet_process(cfg, topo).await
        }
        Command::Orc(args) => {
            let topo = args.topo.open().await?;
            let cfg = tessera_ctld::orc::OrcConfig {
                interval: Duration::from_secs_f64(args.interval.max(0.05)),
                primary_failure_checks: args.primary_failure_checks.max(1),
                enabled_keyspaces: (!args.keyspaces.is_empty()).then_some(args.keyspaces),
            };
            tessera_ctld::orc::run_orc_process(topo, cfg).await
        }
        Command::Ctld(args) => {
            let topo = args.topo.open().await?;
            let ctld = tessera_ctld::Ctld::start(
                tessera_ctld::CtldConfig {
                    http_listen: args.listen,
                    cell: args.cell,
                    read_only: args.read_only,
                },
                topo.clone(),
            )
            .await?;
            let orc = (!args.read_only && !args.no_orc).then(|| {
                tessera_ctld::orc::Orc::start(tessera_ctld::orc::OrcConfig::default(), topo)
            });
            tracing::info!(http = %ctld.http_addr(), orc = orc.is_some(), "ctld serving");
            local::wait_for_shutdown_signal().await;
            if let Some(orc) = orc {
                orc.shutdown().await;
            }
            ctld.shutdown().await;
            Ok(())
        }
    }
}
