//! `tessera local`: the whole cluster as tasks of one foreground process —
//! embedded topology, tablets with real mariadbd children, ctld and gate —
//! plus `status` and `down` for use from another terminal.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tessera_topo::{
    CellInfo, KeyRange, Keyspace, LocalStore, Shard, TabletAlias, TabletType, Topo,
};

use crate::config::ClusterConfig;

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Start the cluster in the foreground; Ctrl-C or SIGTERM stops all of it.
    Up(UpArgs),
    /// Show the running cluster's tablets.
    Status(StatusArgs),
    /// Stop the cluster started by `local up` on this data directory.
    Down(DownArgs),
}

#[derive(Args, Clone)]
pub struct UpArgs {
    /// Where the topology, every mysqld's data and the logs live.
    #[arg(long, default_value = "./tessera-data")]
    pub data_dir: PathBuf,
    /// TOML description of cells, keyspaces, shards and tablets (default: the
    /// Vitess tutorial's unsharded `commerce` with a primary, a replica and an rdonly).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, default_value_t = 15306)]
    pub gate_port: u16,
    #[arg(long, default_value_t = 15001)]
    pub gate_http_port: u16,
    #[arg(long, default_value_t = 15000)]
    pub ctld_port: u16,
    /// A tablet's agent listens on this plus its uid (zone1-100 → 15100).
    #[arg(long, default_value_t = 15000)]
    pub tablet_port_base: u16,
    /// A tablet's mysqld listens on this plus its uid (zone1-100 → 17100).
    #[arg(long, default_value_t = 17000)]
    pub mysqld_port_base: u16,
    /// Vitess-format users file for the gate; default: user `user`, empty password.
    #[arg(long)]
    pub users_file: Option<PathBuf>,
    /// Appended last to every generated my.cnf.
    #[arg(long)]
    pub mysqld_cnf: Option<PathBuf>,
    /// Replaces the SQL that creates the internal users.
    #[arg(long)]
    pub init_sql: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    pub buffer_pool_mb: u32,
    /// Do not run orc (automatic failure detection and recovery).
    #[arg(long)]
    pub no_orc: bool,
    /// The gate does not mark writes on semi_sync keyspaces (see `tessera
    /// gate --help`).
    #[arg(long)]
    pub no_write_markers: bool,
    /// Rows one query may hold in the gate where it evaluates the query over
    /// gathered rows (see `tessera gate --help`).
    #[arg(long, default_value_t = 100_000)]
    pub max_memory_rows: usize,
}

#[derive(Args)]
pub struct StatusArgs {
    #[arg(long, default_value = "./tessera-data")]
    pub data_dir: PathBuf,
    /// ctld's HTTP address.
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub server: String,
}

#[derive(Args)]
pub struct DownArgs {
    #[arg(long, default_value = "./tessera-data")]
    pub data_dir: PathBuf,
}

pub async fn run(cmd: LocalCommand) -> anyhow::Result<()> {
    match cmd {
        LocalCommand::Up(args) => up(args).await,
        LocalCommand::Status(args) => status(args).await,
        LocalCommand::Down(args) => down(args).await,
    }
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn pid_file(data_dir: &Path) -> PathBuf {
    data_dir.join("tessera.pid")
}

/// The pid recorded in the data dir, if that process is still alive.
fn running_pid(data_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file(data_dir)).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    is_alive(pid).then_some(pid)
}

/// Whether `pid` runs. A zombie (exited, not yet reaped by its parent) does
/// not count: signalling it succeeds although it is gone.
fn is_alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(true),
        Err(_) => false,
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

struct RunningTablet {
    alias: TabletAlias,
    agent: tessera_tablet::TabletAgent,
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let cluster = ClusterConfig::load(args.config.as_deref())?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    if let Some(pid) = running_pid(&data_dir) {
        bail!(
            "a cluster is already running on {} (pid {pid}); stop it with `tessera local down --data-dir {}`",
            data_dir.display(),
            data_dir.display()
        );
    }
    std::fs::write(pid_file(&data_dir), format!("{}\n", std::process::id()))?;

    let result = run_cluster(&args, &cluster, &data_dir, started).await;
    let _ = std::fs::remove_file(pid_file(&data_dir));
    result
}

async fn run_cluster(
    args: &UpArgs,
    cluster: &ClusterConfig,
    data_dir: &Path,
    started: Instant,
) -> anyhow::Result<()> {
    let store = LocalStore::open(&data_dir.join("topo.redb"))
        .with_context(|| format!("cannot open topology in {}", data_dir.display()))?;
    let topo = Topo::new(Arc::new(store));
    ensure_topology(&topo, cluster).await?;

    // Tablets start concurrently: each initialises and boots its own mysqld.
    let mut starts = tokio::task::JoinSet::new();
    for ks in &cluster.keyspaces {
        for shard in &ks.shards {
            for t in &shard.tablets {
                let alias = TabletAlias::new(cluster.cell.clone(), t.uid);
                let cfg =
                    tablet_config(args, data_dir, &alias, &ks.name, &shard.name, t.tablet_type)?;
                let topo = topo.clone();
                starts.spawn(async move {
                    let agent = tessera_tablet::TabletAgent::start(cfg, topo)
                        .await
                        .with_context(|| format!("tablet {alias} failed to start"));
                    (alias, agent)
                });
            }
        }
    }
    let mut tablets = Vec::new();
    let mut failure = None;
    while let Some(joined) = starts.join_next().await {
        let (alias, agent) = joined?;
        match agent {
            Ok(agent) => tablets.push(RunningTablet { alias, agent }),
            Err(e) => failure = Some(e),
        }
    }
    if let Some(e) = failure {
        stop_tablets(tablets).await;
        return Err(e);
    }

    let serve = async {
        // A shard that never had a primary gets the configured one; a resumed
        // cluster keeps whichever tablet was primary when it stopped.
        for ks in &cluster.keyspaces {
            for shard in &ks.shards {
                let (record, _) = topo
                    .get_shard(&ks.name, &shard.name)
                    .await?
                    .context("shard record vanished")?;
                if record.primary_alias.is_none() {
                    let primary = shard
                        .tablets
                        .iter()
                        .find(|t| t.tablet_type == TabletType::Primary)
                        .expect("validated: one primary per shard");
                    let alias = TabletAlias::new(cluster.cell.clone(), primary.uid);
                    tessera_ctld::ops::init_shard_primary(&topo, &ks.name, &shard.name, &alias)
                        .await
                        .with_context(|| {
                            format!("cannot make {alias} primary of {}/{}", ks.name, shard.name)
                        })?;
                }
            }
        }
        let ctld = tessera_ctld::Ctld::start(
            tessera_ctld::CtldConfig {
                http_listen: loopback(args.ctld_port),
                cell: cluster.cell.clone(),
                read_only: false,
            },
            topo.clone(),
        )
        .await
        .context("ctld failed to start")?;
        let gate = tessera_gate::Gate::start(
            tessera_gate::GateConfig {
                cell: cluster.cell.clone(),
                mysql_listen: loopback(args.gate_port),
                http_listen: loopback(args.gate_http_port),
                users_file: args.users_file.clone(),
                backend_user: tessera_tablet::mysqld::Credentials::default().app_user,
                backend_password: tessera_tablet::mysqld::Credentials::default().app_password,
                tls_cert: None,
                tls_key: None,
                health_interval: Duration::from_secs(1),
                pool_size: 64,
                write_markers: !args.no_write_markers,
                max_memory_rows: args.max_memory_rows,
                ..Default::default()
            },
            topo.clone(),
        )
        .await
        .context("gate failed to start")?;
        let orc = (!args.no_orc).then(|| {
            tessera_ctld::orc::Orc::start(tessera_ctld::orc::OrcConfig::default(), topo.clone())
        });
        anyhow::Ok((ctld, gate, orc))
    };
    let (ctld, gate, orc) = match serve.await {
        Ok(v) => v,
        Err(e) => {
            stop_tablets(tablets).await;
            return Err(e);
        }
    };

    if !gate.wait_ready(Duration::from_secs(60)).await {
        if let Some(orc) = orc {
            orc.shutdown().await;
        }
        gate.shutdown().await;
        ctld.shutdown().await;
        stop_tablets(tablets).await;
        bail!(
            "the gate found no serving primary within 60 s; see the tablets' error.log under {}",
            data_dir.display()
        );
    }
    let first_ks = &cluster.keyspaces[0].name;
    println!(
        "Tessera is ready in {:.1}s: mariadb -h 127.0.0.1 -P {} -u user {first_ks}   (ctld http://127.0.0.1:{}, {} tablets, data in {})",
        started.elapsed().as_secs_f64(),
        gate.mysql_addr().port(),
        args.ctld_port,
        tablets.len(),
        data_dir.display()
    );

    wait_for_shutdown_signal().await;
    eprintln!("stopping…");
    // orc first: tablets going down now are not failures to repair.
    if let Some(orc) = orc {
        orc.shutdown().await;
    }
    gate.shutdown().await;
    ctld.shutdown().await;
    stop_tablets(tablets).await;
    eprintln!("stopped");
    Ok(())
}

async fn stop_tablets(tablets: Vec<RunningTablet>) {
    let mut stops = tokio::task::JoinSet::new();
    for t in tablets {
        stops.spawn(async move {
            if let Err(e) = t.agent.shutdown().await {
                tracing::warn!(alias = %t.alias, "tablet did not stop cleanly: {e:#}");
            }
        });
    }
    while stops.join_next().await.is_some() {}
}

fn tablet_config(
    args: &UpArgs,
    data_dir: &Path,
    alias: &TabletAlias,
    keyspace: &str,
    shard: &str,
    configured: TabletType,
) -> anyhow::Result<tessera_tablet::TabletConfig> {
    let port = |base: u16| {
        u16::try_from(u32::from(base) + alias.uid)
            .with_context(|| format!("port base {base} + uid {} is over 65535", alias.uid))
    };
    let mysql_port = port(args.mysqld_port_base)?;
    let agent_port = port(args.tablet_port_base)?;
    let mysqld = tessera_tablet::mysqld::MysqldConfig {
        root_dir: data_dir.join("tablets").join(alias.to_string()),
        port: mysql_port,
        bind_address: "127.0.0.1".to_string(),
        server_id: alias.uid,
        buffer_pool_mb: args.buffer_pool_mb,
        extra_cnf: args.mysqld_cnf.clone(),
        init_sql: args.init_sql.clone(),
        database: keyspace.to_string(),
        credentials: Default::default(),
    };
    // The configured primary boots as a replica like the others; it becomes
    // primary through init_shard_primary (or already is, per the shard record).
    let initial_type = match configured {
        TabletType::Primary => TabletType::Replica,
        other => other,
    };
    Ok(tessera_tablet::TabletConfig {
        alias: alias.clone(),
        keyspace: keyspace.to_string(),
        shard: shard.to_string(),
        initial_type,
        mysqld,
        mysql_host: "127.0.0.1".to_string(),
        agent_listen: loopback(agent_port),
        hostname: hostname(),
    })
}

/// Creates the cell, keyspace and shard records that do not exist yet.
async fn ensure_topology(topo: &Topo, cluster: &ClusterConfig) -> anyhow::Result<()> {
    if topo.get_cell(&cluster.cell).await?.is_none() {
        topo.create_cell(&CellInfo {
            name: cluster.cell.clone(),
            ..Default::default()
        })
        .await?;
    }
    for ks in &cluster.keyspaces {
        if topo.get_keyspace(&ks.name).await?.is_none() {
            topo.create_keyspace(&Keyspace {
                name: ks.name.clone(),
                sharded: ks.sharded,
                durability_policy: ks.durability,
                ..Default::default()
            })
            .await?;
        }
        for shard in &ks.shards {
            if topo.get_shard(&ks.name, &shard.name).await?.is_none() {
                topo.create_shard(&Shard {
                    keyspace: ks.name.clone(),
                    name: shard.name.clone(),
                    key_range: KeyRange::from_shard_name(&shard.name)
                        .map_err(anyhow::Error::msg)?,
                    ..Default::default()
                })
                .await?;
            }
        }
    }
    Ok(())
}

/// Lets `local status` reuse ctl's subcommands without knowing their variants.
#[derive(Parser)]
struct CtlInvocation {
    #[command(subcommand)]
    command: tessera_ctld::cli::CtlCommand,
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    match running_pid(&args.data_dir) {
        Some(pid) => println!(
            "local cluster running (pid {pid}) on {}",
            args.data_dir.display()
        ),
        None => println!(
            "no local cluster recorded as running on {}",
            args.data_dir.display()
        ),
    }
    for words in [["ctl", "status"], ["ctl", "list-tablets"]] {
        let cmd = CtlInvocation::try_parse_from(words)?.command;
        tessera_ctld::cli::run_ctl(&args.server, cmd).await?;
    }
    Ok(())
}

async fn down(args: DownArgs) -> anyhow::Result<()> {
    let Some(pid) = running_pid(&args.data_dir) else {
        println!("no local cluster running on {}", args.data_dir.display());
        return Ok(());
    };
    kill(Pid::from_raw(pid), Signal::SIGTERM).context("cannot signal the cluster process")?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if !is_alive(pid) {
            println!("stopped local cluster (pid {pid})");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("cluster process {pid} did not stop within 90 s")
}
