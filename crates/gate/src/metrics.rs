//! Prometheus metrics of the gate. Handles to every per-command counter are
//! created up front so the query path only touches atomics, never the
//! registry's label map.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabel {
    pub command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TabletLabel {
    pub tablet: String,
}

/// Client commands counted separately; anything else is `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    Query,
    Prepare,
    Execute,
    Close,
    Reset,
    LongData,
    Ping,
    InitDb,
    FieldList,
    ChangeUser,
    ResetConnection,
    Other,
}

impl CommandKind {
    const ALL: [CommandKind; 12] = [
        CommandKind::Query,
        CommandKind::Prepare,
        CommandKind::Execute,
        CommandKind::Close,
        CommandKind::Reset,
        CommandKind::LongData,
        CommandKind::Ping,
        CommandKind::InitDb,
        CommandKind::FieldList,
        CommandKind::ChangeUser,
        CommandKind::ResetConnection,
        CommandKind::Other,
    ];

    fn name(self) -> &'static str {
        match self {
            CommandKind::Query => "query",
            CommandKind::Prepare => "stmt_prepare",
            CommandKind::Execute => "stmt_execute",
            CommandKind::Close => "stmt_close",
            CommandKind::Reset => "stmt_reset",
            CommandKind::LongData => "stmt_send_long_data",
            CommandKind::Ping => "ping",
            CommandKind::InitDb => "init_db",
            CommandKind::FieldList => "field_list",
            CommandKind::ChangeUser => "change_user",
            CommandKind::ResetConnection => "reset_connection",
            CommandKind::Other => "other",
        }
    }
}

pub struct Metrics {
    pub registry: Registry,
    commands: Vec<Counter>,
    /// Error answers sent to clients (relayed from mysqld or made by the gate).
    pub errors: Counter,
    /// Errors the gate itself produced (routing, pool, backend unreachable).
    pub gate_errors: Counter,
    pub client_connections: Gauge,
    pub client_connections_total: Counter,
    pub handshake_failures: Counter,
    pub backend_retries: Counter,
    /// Writes whose answer was lost with their connection and whose outcome
    /// the gate read from their write marker.
    pub marked_writes_resolved: Counter,
    pub pool_in_use: Family<TabletLabel, Gauge>,
    pub pool_idle: Family<TabletLabel, Gauge>,
    pub pool_connects: Family<TabletLabel, Counter>,
    pub pool_connect_errors: Family<TabletLabel, Counter>,
    pub pool_wait_timeouts: Family<TabletLabel, Counter>,
    pub topology_refresh_errors: Counter,
    /// Statements that waited for a shard's primary change.
    pub buffered: Counter,
    /// How long buffered statements waited.
    pub buffer_seconds: Histogram,
    /// Buffered statements whose window ended without a serving primary.
    pub buffer_timeouts: Counter,
    /// Statements refused because the shard's buffer was full.
    pub buffer_full: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tessera_gate");
        let queries = Family::<CommandLabel, Counter>::default();
        registry.register(
            "commands",
            "Client commands received, by command",
            queries.clone(),
        );
        let commands = CommandKind::ALL
            .iter()
            .map(|c| {
                queries
                    .get_or_create(&CommandLabel {
                        command: c.name().to_string(),
                    })
                    .clone()
            })
            .collect();
        let errors = Counter::default();
        registry.register("errors", "Error packets sent to clients", errors.clone());
        let gate_errors = Counter::default();
        registry.register(
            "gate_errors",
            "Errors produced by the gate itself (routing, pools, unreachable backends)",
            gate_errors.clone(),
        );
        let client_connections = Gauge::default();
        registry.register(
            "client_connections",
            "Client sessions currently open",
            client_connections.clone(),
        );
        let client_connections_total = Counter::default();
        registry.register(
            "client_connections_accepted",
            "Client connections accepted",
            client_connections_total.clone(),
        );
        let handshake_failures = Counter::default();
        registry.register(
            "handshake_failures",
            "Client handshakes that failed (bad password, protocol errors)",
            handshake_failures.clone(),
        );
        let backend_retries = Counter::default();
        registry.register(
            "backend_retries",
            "Commands retried on a fresh backend connection after a pooled one failed",
            backend_retries.clone(),
        );
        let marked_writes_resolved = Counter::default();
        registry.register(
            "marked_writes_resolved",
            "Writes whose connection broke before their commit was answered, settled by reading their write marker on the primary",
            marked_writes_resolved.clone(),
        );
        let pool_in_use = Family::<TabletLabel, Gauge>::default();
        registry.register(
            "pool_in_use",
            "Backend connections lent out (including reserved ones), per tablet",
            pool_in_use.clone(),
        );
        let pool_idle = Family::<TabletLabel, Gauge>::default();
        registry.register(
            "pool_idle",
            "Idle backend connections, per tablet",
            pool_idle.clone(),
        );
        let pool_connects = Family::<TabletLabel, Counter>::default();
        registry.register(
            "pool_connects",
            "Backend connections opened, per tablet",
            pool_connects.clone(),
        );
        let pool_connect_errors = Family::<TabletLabel, Counter>::default();
        registry.register(
            "pool_connect_errors",
            "Backend connection attempts that failed, per tablet",
            pool_connect_errors.clone(),
        );
        let pool_wait_timeouts = Family::<TabletLabel, Counter>::default();
        registry.register(
            "pool_wait_timeouts",
            "Waits for a backend connection that timed out because the pool was full",
            pool_wait_timeouts.clone(),
        );
        let topology_refresh_errors = Counter::default();
        registry.register(
            "topology_refresh_errors",
            "Topology re-reads that failed (the last table kept serving)",
            topology_refresh_errors.clone(),
        );
        let buffered = Counter::default();
        registry.register(
            "buffered_queries",
            "Statements that waited for a shard's primary change",
            buffered.clone(),
        );
        let buffer_seconds =
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        registry.register(
            "buffer_seconds",
            "How long buffered statements waited for a serving primary",
            buffer_seconds.clone(),
        );
        let buffer_timeouts = Counter::default();
        registry.register(
            "buffer_timeouts",
            "Buffered statements whose window ended without a serving primary",
            buffer_timeouts.clone(),
        );
        let buffer_full = Counter::default();
        registry.register(
            "buffer_full",
            "Statements refused at once because the shard's buffer was full",
            buffer_full.clone(),
        );
        Self {
            registry,
            commands,
            errors,
            gate_errors,
            client_connections,
            client_connections_total,
            handshake_failures,
            backend_retries,
            marked_writes_resolved,
            pool_in_use,
            pool_idle,
            pool_connects,
            pool_connect_errors,
            pool_wait_timeouts,
            topology_refresh_errors,
            buffered,
            buffer_seconds,
            buffer_timeouts,
            buffer_full,
        }
    }

    pub fn command(&self, kind: CommandKind) {
        let idx = CommandKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(CommandKind::ALL.len() - 1);
        self.commands[idx].inc();
    }

    /// The metric handles of one tablet's pool, cloned once when the pool is made.
    pub fn pool_handles(&self, tablet: &str) -> PoolMetrics {
        let label = TabletLabel {
            tablet: tablet.to_string(),
        };
        PoolMetrics {
            in_use: self.pool_in_use.get_or_create(&label).clone(),
            idle: self.pool_idle.get_or_create(&label).clone(),
            connects: self.pool_connects.get_or_create(&label).clone(),
            connect_errors: self.pool_connect_errors.get_or_create(&label).clone(),
            wait_timeouts: self.pool_wait_timeouts.get_or_create(&label).clone(),
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("encoding metrics failed: {e}");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Default)]
pub struct PoolMetrics {
    pub in_use: Gauge,
    pub idle: Gauge,
    pub connects: Counter,
    pub connect_errors: Counter,
    pub wait_timeouts: Counter,
}
