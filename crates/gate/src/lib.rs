//! The gate: Tessera's MySQL-protocol front door. Clients connect here; each
//! statement goes to the mysqld of the tablet its target routes to (one hop),
//! with responses relayed byte for byte. This milestone routes unsharded
//! keyspaces; routing is keyed by keyspace + shard + tablet type so a
//! sharded planner can slot in later.

mod buffer;
mod counted;
mod http;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod pool;
pub mod schema;
pub mod sequence;
mod session;
pub mod target;
pub mod topology;
mod users;
pub mod vindex;
mod write_marker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tessera_topo::Topo;
use tessera_wire::UserStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use metrics::Metrics;
pub use target::Target;
pub use topology::{Health, RoutingTable};
pub use users::{StaticUsers, load_users_json};

/// The version string clients see; MariaDB's, so clients enable what MariaDB has.
pub const SERVER_VERSION: &str = "10.11.19-MariaDB-tessera";

#[derive(Debug, Clone)]
pub struct GateConfig {
    /// The cell whose tablets this gate routes to, e.g. "zone1".
    pub cell: String,
    pub mysql_listen: SocketAddr,
    /// /metrics and /debug/status.
    pub http_listen: SocketAddr,
    /// Vitess-format users.json; None = user "user" with an empty password.
    pub users_file: Option<PathBuf>,
    /// The application user the gate logs into every mysqld as.
    pub backend_user: String,
    pub backend_password: String,
    /// PEM certificate and key for client TLS; None = a self-signed one.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How often the topology is re-read and agents' health polled.
    pub health_interval: Duration,
    /// Max backend connections per tablet.
    pub pool_size: usize,
    /// How long statements for a shard whose primary is changing wait for
    /// the new primary before failing with a retryable error.
    pub buffer_window: Duration,
    /// Statements that may wait per shard; more fail at once.
    pub buffer_max_queued: usize,
    /// Write markers on semi_sync keyspaces (see `write_marker`): a write
    /// whose answer a failover lost is answered instead of failing, for one
    /// small extra row write per transaction.
    pub write_markers: bool,
    /// Rows a query may hold in the gate's memory where the gate evaluates
    /// it over gathered rows (Vitess's `max_memory_rows`); more fail with
    /// error 1235.
    pub max_memory_rows: usize,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            cell: "zone1".to_string(),
            mysql_listen: "127.0.0.1:15306".parse().expect("valid address"),
            http_listen: "127.0.0.1:15001".parse().expect("valid address"),
            users_file: None,
            backend_user: "tessera_app".to_string(),
            backend_password: "tessera_app_pw".to_string(),
            tls_cert: None,
            tls_key: None,
            health_interval: Duration::from_secs(1),
            pool_size: 64,
            buffer_window: Duration::from_secs(10),
            buffer_max_queued: 1000,
            write_markers: true,
            max_memory_rows: 100_000,
        }
    }
}

/// How long a command waits for a backend connection when the pool is full.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long opening a backend connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// State every session shares.
pub(crate) struct Shared {
    pub routing: Arc<ArcSwap<RoutingTable>>,
    pub users: Arc<dyn UserStore>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub server_version: String,
    pub metrics: Arc<Metrics>,
    pub buffers: Arc<buffer::Buffers>,
    pub schema: Arc<schema::SchemaTracker>,
    pub sequences: sequence::Sequences,
    pub plans: plan::PlanCache,
    pub write_markers: bool,
    pub max_memory_rows: usize,
}

/// How often the gate re-reads every keyspace's table schemas.
const SCHEMA_REFRESH: Duration = Duration::from_secs(30);
/// The plan cache's bound on the statement text it keeps (bytes).
const PLAN_CACHE_BYTES: usize = 16 << 20;

pub struct Gate {
    mysql_addr: SocketAddr,
    http_addr: SocketAddr,
    routing: Arc<ArcSwap<RoutingTable>>,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Gate {
    /// Reads the topology once, then listens for MySQL clients and HTTP, and
    /// keeps the routing table fresh in the background.
    pub async fn start(cfg: GateConfig, topo: Topo) -> anyhow::Result<Gate> {
        let users: Arc<dyn UserStore> = match &cfg.users_file {
            Some(path) => Arc::new(load_users_json(path)?),
            None => Arc::new(StaticUsers::default_user()),
        };
        let tls = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(cert), Some(key)) => tessera_wire::tls_config_from_pem(cert, key)
                .with_context(|| format!("loading TLS certificate {}", cert.display()))?,
            (None, None) => tessera_wire::self_signed_tls_config()
                .context("making a self-signed TLS certificate")?,
            _ => anyhow::bail!("tls_cert and tls_key must be given together"),
        };
        let metrics = Arc::new(Metrics::new());
        let routing = Arc::new(ArcSwap::from_pointee(RoutingTable::default()));
        let (stop, stop_rx) = watch::channel(false);
        let buffers = Arc::new(buffer::Buffers::new(
            cfg.buffer_window,
            cfg.buffer_max_queued,
            routing.clone(),
            metrics.clone(),
        ));

        let store = topo.store().clone();
        let mut watcher = topology::TopologyWatcher::new(
            topo,
            cfg.cell.clone(),
            routing.clone(),
            metrics.clone(),
            pool::PoolSettings {
                user: cfg.backend_user.clone(),
                password: cfg.backend_password.clone(),
                max_connections: cfg.pool_size,
                wait_timeout: POOL_WAIT,
                connect_timeout: CONNECT_TIMEOUT,
            },
        );
        watcher.refresh().await;

        let mysql_listener = TcpListener::bind(cfg.mysql_listen)
            .await
            .with_context(|| format!("listening for MySQL clients on {}", cfg.mysql_listen))?;
        let http_listener = TcpListener::bind(cfg.http_listen)
            .await
            .with_context(|| format!("listening for HTTP on {}", cfg.http_listen))?;
        let mysql_addr = mysql_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;

        let shared = Arc::new(Shared {
            routing: routing.clone(),
            users,
            tls: Some(tls),
            server_version: SERVER_VERSION.to_string(),
            metrics: metrics.clone(),
            buffers: buffers.clone(),
            schema: Arc::new(schema::SchemaTracker::new()),
            sequences: sequence::Sequences::new(),
            plans: plan::PlanCache::new(PLAN_CACHE_BYTES),
            write_markers: cfg.write_markers,
            max_memory_rows: cfg.max_memory_rows,
        });
        let schema_task =
            shared
                .schema
                .spawn_refresher(routing.clone(), SCHEMA_REFRESH, stop_rx.clone());
        let tasks = vec![
            schema_task,
            tokio::spawn(topology::run_watcher(
                watcher,
                cfg.health_interval,
                buffers.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(topology::watch_records(
                store,
                cfg.cell.clone(),
                buffers.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(accept_loop(mysql_listener, shared, stop_rx.clone())),
            tokio::spawn(http::serve(
                http_listener,
                routing.clone(),
                metrics.clone(),
                buffers.clone(),
                stop_rx,
            )),
        ];
        tracing::info!(%mysql_addr, %http_addr, cell = cfg.cell, "gate started");
        Ok(Gate {
            mysql_addr,
            http_addr,
            routing,
            metrics,
            stop,
            tasks,
        })
    }

    pub fn mysql_addr(&self) -> SocketAddr {
        self.mysql_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The routing table currently served.
    pub fn routing_table(&self) -> Arc<RoutingTable> {
        self.routing.load_full()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// True once every keyspace in the topology (at least one) has a
    /// routable primary for each of its shards.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.routing.load().all_primaries_routable() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops accepting, closes every session and backend connection, stops
    /// the background tasks.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        tracing::info!(mysql_addr = %self.mysql_addr, "gate stopped");
    }
}

impl Drop for Gate {
    /// A gate dropped without `shutdown` still stops its tasks (in the background).
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let next_id = AtomicU32::new(1);
    // Sessions live in this set so that stopping the gate ends them all.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    shared.metrics.client_connections_total.inc();
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    sessions.spawn(session::serve(shared.clone(), stream, peer, id));
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(done) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!("a session panicked: {e}");
                }
            }
            _ = stop.changed() => break,
        }
    }
    sessions.shutdown().await;
}
