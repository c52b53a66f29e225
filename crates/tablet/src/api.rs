//! The tablet agent's HTTP API: request and response bodies, and the client
//! that ctld, gates and `local up` use to call it. The agent is control plane
//! only; queries never pass through it.
//!
//! | method, path          | body                 | answer            |
//! |-----------------------|----------------------|-------------------|
//! | GET  /health          | —                    | `TabletHealth`    |
//! | POST /set-read-only   | `SetReadOnly`        | `TabletHealth`    |
//! | POST /replicate-from  | `ReplicateFrom`      | `TabletHealth`    |
//! | POST /promote         | `Promote`            | `TabletHealth`    |
//! | POST /change-type     | `ChangeType`         | `TabletHealth`    |
//! | POST /execute         | `ExecuteRequest`     | `ExecuteResult`   |
//! | GET  /schema          | —                    | `SchemaDefinition`|
//! | GET  /positions       | —                    | `Positions`       |
//! | POST /stop-io-thread  | `{}`                 | `Positions`       |
//! | POST /wait-for-position | `WaitForPosition`  | `WaitResult`      |
//! | POST /kill-app-connections | `{}`            | `KillResult`      |
//! | POST /probe-mysqld    | `ProbeMysqld`        | `MysqldProbe`     |
//!
//! Errors come back as HTTP 4xx/5xx with an `ApiError` body.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_topo::{TabletAlias, TabletType};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplicationStatus {
    pub source_host: String,
    pub source_port: u16,
    pub io_running: bool,
    pub sql_running: bool,
    /// `Seconds_Behind_Master`; None when unknown (threads stopped).
    pub lag_seconds: Option<u64>,
    pub last_io_error: String,
    pub last_sql_error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TabletHealth {
    pub alias: TabletAlias,
    pub keyspace: String,
    pub shard: String,
    pub tablet_type: TabletType,
    /// mysqld answers queries and the tablet may be routed to.
    pub serving: bool,
    pub mysqld_running: bool,
    pub read_only: bool,
    /// Present when the tablet is configured as a replica.
    pub replication: Option<ReplicationStatus>,
    pub gtid_binlog_pos: String,
    pub gtid_slave_pos: String,
    pub gtid_current_pos: String,
    /// Human-readable reason when not serving.
    pub error: Option<String>,
    /// Semi-sync replication state; None when mysqld could not be asked
    /// (or the agent predates semi-sync).
    #[serde(default)]
    pub semi_sync: Option<SemiSyncStatus>,
}

/// What mysqld says about loss-less semi-sync replication.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SemiSyncStatus {
    /// `rpl_semi_sync_master_enabled`: commits wait for a replica's ack.
    pub primary_enabled: bool,
    /// `Rpl_semi_sync_master_clients`: semi-sync replicas attached.
    pub clients: u64,
    /// `Rpl_semi_sync_master_yes_tx`: commits a replica acknowledged.
    pub yes_tx: u64,
    /// `Rpl_semi_sync_master_no_tx`: commits that went out unacknowledged.
    pub no_tx: u64,
    /// `rpl_semi_sync_slave_enabled`: this replica acknowledges events.
    pub replica_enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetReadOnly {
    pub read_only: bool,
}

/// Become a replica of the given mysqld (`MASTER_USE_GTID=slave_pos`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicateFrom {
    pub primary_alias: TabletAlias,
    pub host: String,
    pub port: u16,
    /// The tablet type to take while replicating (replica or rdonly); when
    /// None the tablet keeps its type, or becomes a replica if it was primary.
    pub tablet_type: Option<TabletType>,
}

/// Become the primary: stop replication, forget the source, read-write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promote {
    /// The shard's new primary term, recorded in the tablet's record.
    pub primary_term: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeType {
    pub tablet_type: TabletType,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecuteRequest {
    pub sql: String,
    /// Database to run in; None uses the tablet's keyspace database.
    pub db: Option<String>,
    /// Run with `sql_log_bin=0` (not replicated).
    #[serde(default)]
    pub skip_binlog: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExecuteResult {
    pub columns: Vec<String>,
    /// Every value as text; NULL as None.
    pub rows: Vec<Vec<Option<String>>>,
    pub rows_affected: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableDefinition {
    pub name: String,
    /// `BASE TABLE` or `VIEW`.
    pub table_type: String,
    pub create_statement: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SchemaDefinition {
    pub database: String,
    pub tables: Vec<TableDefinition>,
}

/// GTID state of a mysqld, as reparents compare it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Positions {
    pub server_id: u32,
    pub read_only: bool,
    /// What this server wrote to its binlog (own writes and, with
    /// log_slave_updates, replicated ones).
    pub gtid_binlog_pos: String,
    /// What the replication SQL thread applied.
    pub gtid_slave_pos: String,
    pub gtid_current_pos: String,
    /// What the IO thread received (`Gtid_IO_Pos`); empty when not a replica.
    pub gtid_io_pos: String,
    /// The last GTID per domain and server id in the binlogs.
    pub gtid_binlog_state: String,
    /// The position at the start of the oldest binlog still on disk: a
    /// replica whose position is older needs purged transactions.
    pub gtid_binlog_start: String,
    pub io_running: bool,
    pub sql_running: bool,
}

/// Wait until the replica has applied `gtid_pos` (`MASTER_GTID_WAIT`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitForPosition {
    pub gtid_pos: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WaitResult {
    /// False when the timeout passed first.
    pub reached: bool,
    pub positions: Positions,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KillResult {
    pub killed: u64,
}

/// Ask the agent whether it can reach another mysqld (its source, usually)
/// from where it runs: orc's second opinion on a primary it cannot reach.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeMysqld {
    pub host: String,
    pub port: u16,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MysqldProbe {
    /// The mysqld greeted within the timeout.
    pub reachable: bool,
    /// How long the greeting took, when it came.
    pub elapsed_ms: Option<u64>,
    /// Why it is deemed unreachable.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

/// Client of one agent, by its `host:port`.
#[derive(Clone)]
pub struct AgentClient {
    base: String,
    http: reqwest::Client,
}

impl AgentClient {
    pub fn new(agent_addr: &str) -> Self {
        Self::with_timeout(agent_addr, Duration::from_secs(30))
    }

    pub fn with_timeout(agent_addr: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .expect("reqwest client builds");
        Self {
            base: format!("http://{agent_addr}"),
            http,
        }
    }

    async fn answer<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> anyhow::Result<T> {
        let status = resp.status();
        if status.is_success() {
            Ok(resp.json().await?)
        } else {
            let text = resp.text().await.unwrap_or_default();
            let msg = serde_json::from_str::<ApiError>(&text)
                .map(|e| e.error)
                .unwrap_or(text);
            anyhow::bail!("{msg}")
        }
    }

    async fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?;
        Self::answer(resp).await
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await?;
        Self::answer(resp).await
    }

    pub async fn health(&self) -> anyhow::Result<TabletHealth> {
        self.get("/health").await
    }

    pub async fn set_read_only(&self, read_only: bool) -> anyhow::Result<TabletHealth> {
        self.post("/set-read-only", &SetReadOnly { read_only })
            .await
    }

    pub async fn replicate_from(&self, req: &ReplicateFrom) -> anyhow::Result<TabletHealth> {
        self.post("/replicate-from", req).await
    }

    pub async fn promote(&self, primary_term: u64) -> anyhow::Result<TabletHealth> {
        self.post("/promote", &Promote { primary_term }).await
    }

    pub async fn change_type(&self, tablet_type: TabletType) -> anyhow::Result<TabletHealth> {
        self.post("/change-type", &ChangeType { tablet_type }).await
    }

    pub async fn execute(&self, req: &ExecuteRequest) -> anyhow::Result<ExecuteResult> {
        self.post("/execute", req).await
    }

    pub async fn schema(&self) -> anyhow::Result<SchemaDefinition> {
        self.get("/schema").await
    }

    pub async fn positions(&self) -> anyhow::Result<Positions> {
        self.get("/positions").await
    }

    pub async fn stop_io_thread(&self) -> anyhow::Result<Positions> {
        self.post("/stop-io-thread", &serde_json::json!({})).await
    }

    /// The HTTP timeout of this client must exceed `timeout`.
    pub async fn wait_for_position(
        &self,
        gtid_pos: &str,
        timeout: Duration,
    ) -> anyhow::Result<WaitResult> {
        let req = WaitForPosition {
            gtid_pos: gtid_pos.to_string(),
            timeout_ms: timeout.as_millis() as u64,
        };
        self.post("/wait-for-position", &req).await
    }

    /// The HTTP timeout of this client must exceed `timeout`.
    pub async fn probe_mysqld(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> anyhow::Result<MysqldProbe> {
        let req = ProbeMysqld {
            host: host.to_string(),
            port,
            timeout_ms: timeout.as_millis() as u64,
        };
        self.post("/probe-mysqld", &req).await
    }

    pub async fn kill_app_connections(&self) -> anyhow::Result<KillResult> {
        self.post("/kill-app-connections", &serde_json::json!({}))
            .await
    }
}
