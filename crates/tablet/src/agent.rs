//! The tablet agent: starts its mysqld, takes the role the topology gives
//! it, keeps its Tablet record, serves the HTTP API, and watches mysqld,
//! restarting it when it dies.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tessera_topo::{
    CellInfo, DurabilityPolicy, FORMAT_VERSION, Tablet, TabletAlias, TabletType, Topo, TopoError,
};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::api::{
    ExecuteRequest, ExecuteResult, KillResult, Positions, ReplicateFrom, SchemaDefinition,
    SemiSyncStatus, TableDefinition, TabletHealth, WaitForPosition, WaitResult,
};
use crate::health;
use crate::mysqld::{Mysqld, MysqldConfig, quote_ident};
use crate::replication::{self, SourceAddr};

/// How often the monitor looks at mysqld.
const MONITOR_INTERVAL: Duration = Duration::from_secs(1);
/// Longest pause between two restarts of a mysqld that keeps dying.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(10);
/// A mysqld that stayed up this long since its last restart starts the
/// backoff afresh when it dies again.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);
/// Bound on connecting to and probing mysqld, so a hung server cannot hang
/// the agent.
const SQL_TIMEOUT: Duration = Duration::from_secs(10);
/// The monitor re-reads the keyspace's durability policy every this many
/// ticks, so an operator's change reaches running tablets.
const DURABILITY_REFRESH_TICKS: u64 = 10;
/// A primary re-reads its Shard record every this many monitor ticks, to
/// find out that an emergency reparent replaced it while it was cut off.
const SUPERSEDED_CHECK_TICKS: u64 = 1;
/// A writable primary deletes stale gate write markers every this many
/// monitor ticks.
const MARKER_SWEEP_TICKS: u64 = 600;
/// A write marker matters only while the gate may still look it up after
/// a failover (seconds); rows untouched this long belong to connections
/// that are idle or gone, and their next write writes the row again.
const MARKER_MAX_AGE_SECS: u64 = 3600;
/// How often a semi-sync primary left without replicas says so again.
const NO_REPLICA_ALARM_EVERY: Duration = Duration::from_secs(30);
/// Longest wait /wait-for-position accepts, so a request cannot pin a
/// connection for ever.
const MAX_POSITION_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct TabletConfig {
    pub alias: TabletAlias,
    pub keyspace: String,
    pub shard: String,
    /// replica or rdonly; a tablet becomes primary only by promotion.
    pub initial_type: TabletType,
    pub mysqld: MysqldConfig,
    /// mysqld's host as gates and replicas should reach it.
    pub mysql_host: String,
    pub agent_listen: SocketAddr,
    pub hostname: String,
}

impl TabletConfig {
    /// A tablet on this machine with defaults: replica, everything on
    /// 127.0.0.1, the keyspace's name as the database, `alias.uid` as
    /// server_id (1 when the uid is 0). `agent_port` 0 picks a free port.
    pub fn local(
        root_dir: impl Into<PathBuf>,
        alias: TabletAlias,
        keyspace: &str,
        shard: &str,
        mysql_port: u16,
        agent_port: u16,
    ) -> Self {
        let server_id = alias.uid.max(1);
        Self {
            mysqld: MysqldConfig::new(root_dir, mysql_port, server_id, keyspace),
            alias,
            keyspace: keyspace.to_string(),
            shard: shard.to_string(),
            initial_type: TabletType::Replica,
            mysql_host: "127.0.0.1".into(),
            agent_listen: SocketAddr::from(([127, 0, 0, 1], agent_port)),
            hostname: "localhost".into(),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.keyspace.is_empty() || self.shard.is_empty() {
            anyhow::bail!("tablet {} needs a keyspace and a shard", self.alias);
        }
        if !matches!(self.initial_type, TabletType::Replica | TabletType::Rdonly) {
            anyhow::bail!(
                "initial tablet type must be replica or rdonly, not {} (a tablet becomes primary only by promotion)",
                self.initial_type
            );
        }
        if self.mysql_host.is_empty() {
            anyhow::bail!("tablet {} needs a mysql_host to advertise", self.alias);
        }
        self.mysqld.validate()
    }
}

/// The role the agent keeps mysqld in; re-applied after every restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Role {
    pub tablet_type: TabletType,
    /// The source a replica pulls from; None for a primary or a tablet that
    /// has no primary yet.
    pub source: Option<SourceAddr>,
    pub read_only: bool,
}

/// A failed agent operation, by whose fault.
#[derive(Debug)]
pub enum OpError {
    /// The request cannot be carried out as asked.
    BadRequest(String),
    /// The agent or mysqld failed.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for OpError {
    fn from(e: anyhow::Error) -> Self {
        OpError::Failed(e)
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::BadRequest(m) => f.write_str(m),
            OpError::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

pub type OpResult<T> = Result<T, OpError>;

/// State shared by the agent's API handlers and its monitor.
pub(crate) struct Shared {
    pub cfg: TabletConfig,
    pub topo: Topo,
    pub mysqld: Mutex<Mysqld>,
    pub role: StdMutex<Role>,
    /// Serialises role changes with each other and with restarts.
    pub ops: Mutex<()>,
    pub agent_addr: SocketAddr,
    pub stopping: AtomicBool,
    /// The keyspace's durability policy as last read from the topology.
    pub durability: StdMutex<DurabilityPolicy>,
    /// This primary has turned semi-sync on in its current term. It stays
    /// on from then, even across a restart of mysqld: turning it off would
    /// silently give up loss-lessness.
    pub semi_sync_armed: AtomicBool,
    /// The term this tablet was last promoted in (0 if never): a Shard
    /// record naming another primary only supersedes it with a higher term.
    pub primary_term: AtomicU64,
}

impl Shared {
    fn role(&self) -> Role {
        self.role.lock().expect("role lock").clone()
    }

    fn set_role(&self, role: Role) {
        *self.role.lock().expect("role lock") = role;
    }

    fn durability(&self) -> DurabilityPolicy {
        *self.durability.lock().expect("durability lock")
    }

    fn semi_sync_replica(&self, tablet_type: TabletType) -> bool {
        acknowledges_semi_sync(self.durability(), tablet_type)
    }

    async fn refresh_durability(&self) -> anyhow::Result<()> {
        let policy = read_durability(&self.topo, &self.cfg.keyspace).await?;
        let mut current = self.durability.lock().expect("durability lock");
        if *current != policy {
            tracing::info!(alias = %self.cfg.alias, ?policy, "keyspace durability policy changed");
            *current = policy;
        }
        Ok(())
    }

    pub async fn conn(&self, db: Option<&str>) -> anyhow::Result<Conn> {
        let opts = self.cfg.mysqld.dba_opts(db);
        match tokio::time::timeout(SQL_TIMEOUT, Conn::new(opts)).await {
            Ok(r) => r.with_context(|| {
                format!(
                    "connecting as dba to mysqld on port {}",
                    self.cfg.mysqld.port
                )
            }),
            Err(_) => anyhow::bail!(
                "mysqld on port {} did not accept a connection within {}s",
                self.cfg.mysqld.port,
                SQL_TIMEOUT.as_secs()
            ),
        }
    }

    /// Puts mysqld in the role the agent holds for it.
    async fn apply_role(&self) -> anyhow::Result<()> {
        let role = self.role();
        let mut conn = self.conn(None).await?;
        match (&role.tablet_type, &role.source) {
            (TabletType::Primary, _) => {
                replication::reset_replication(&mut conn).await?;
                replication::set_semi_sync_replica(&mut conn, false).await?;
                // A restarted mysqld boots with semi-sync off; a primary that
                // already had it on takes it back at once, accepting that
                // writes wait until a replica reconnects.
                let rearm = self.durability() == DurabilityPolicy::SemiSync
                    && self.semi_sync_armed.load(Ordering::SeqCst);
                replication::set_semi_sync_primary(&mut conn, rearm).await?;
                replication::set_read_only(&mut conn, role.read_only).await?;
            }
            (_, Some(source)) => {
                replication::set_read_only(&mut conn, true).await?;
                replication::replicate_from(
                    &mut conn,
                    source,
                    &self.cfg.mysqld.credentials,
                    self.semi_sync_replica(role.tablet_type),
                )
                .await?;
            }
            (_, None) => {
                replication::set_read_only(&mut conn, true).await?;
                replication::set_semi_sync_primary(&mut conn, false).await?;
            }
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// A fresh look at mysqld.
    pub async fn health(&self) -> TabletHealth {
        let role = self.role();
        let mut health = TabletHealth {
            alias: self.cfg.alias.clone(),
            keyspace: self.cfg.keyspace.clone(),
            shard: self.cfg.shard.clone(),
            tablet_type: role.tablet_type,
            serving: false,
            mysqld_running: false,
            read_only: true,
            replication: None,
            gtid_binlog_pos: String::new(),
            gtid_slave_pos: String::new(),
            gtid_current_pos: String::new(),
            error: None,
            semi_sync: None,
        };
        health.mysqld_running = self.mysqld_pid().await.is_some();
        if !health.mysqld_running {
            health.error = Some("mysqld is not running".into());
            return health;
        }
        let probe = async {
            let mut conn = self.conn(None).await?;
            let p = health::probe(&mut conn).await;
            let _ = conn.disconnect().await;
            p
        };
        let probe = match tokio::time::timeout(SQL_TIMEOUT, probe).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                health.error = Some(format!("mysqld does not answer: {e:#}"));
                return health;
            }
            Err(_) => {
                health.error = Some("mysqld did not answer the health probe in time".into());
                return health;
            }
        };
        let (serving, error) = health::judge(role.tablet_type, &probe);
        health.serving = serving;
        health.error = error;
        health.read_only = probe.state.read_only;
        health.replication = probe.replication;
        health.gtid_binlog_pos = probe.state.gtid_binlog_pos;
        health.gtid_slave_pos = probe.state.gtid_slave_pos;
        health.gtid_current_pos = probe.state.gtid_current_pos;
        health.semi_sync = probe.semi_sync;
        health
    }

    /// The mariadbd child's pid while it runs. The monitor holds the lock
    /// for microseconds when it looks, but for the whole start-up when it
    /// restarts mysqld: a lock not had quickly means not running (yet).
    pub async fn mysqld_pid(&self) -> Option<u32> {
        let mut m = tokio::time::timeout(Duration::from_millis(500), self.mysqld.lock())
            .await
            .ok()?;
        if m.is_running() { m.pid() } else { None }
    }

    async fn update_record(
        &self,
        tablet_type: TabletType,
        primary_term: Option<u64>,
    ) -> anyhow::Result<()> {
        self.topo
            .update_tablet(&self.cfg.alias, |t| {
                t.tablet_type = tablet_type;
                if let Some(term) = primary_term {
                    t.primary_term = term;
                }
                Ok(())
            })
            .await
            .with_context(|| format!("updating the Tablet record of {}", self.cfg.alias))?;
        Ok(())
    }

    pub async fn op_set_read_only(&self, read_only: bool) -> OpResult<TabletHealth> {
        let _ops = self.ops.lock().await;
        let mut conn = self.conn(None).await?;
        replication::set_read_only(&mut conn, read_only).await?;
        let _ = conn.disconnect().await;
        self.role.lock().expect("role lock").read_only = read_only;
        tracing::info!(alias = %self.cfg.alias, read_only, "read_only set");
        Ok(self.health().await)
    }

    pub async fn op_replicate_from(&self, req: ReplicateFrom) -> OpResult<TabletHealth> {
        if req.primary_alias == self.cfg.alias {
            return Err(OpError::BadRequest(format!(
                "tablet {} cannot replicate from itself",
                self.cfg.alias
            )));
        }
        if req.host.is_empty() || req.port == 0 {
            return Err(OpError::BadRequest(format!(
                "bad source address {:?}:{}",
                req.host, req.port
            )));
        }
        if req.tablet_type == Some(TabletType::Primary) {
            return Err(OpError::BadRequest(
                "a replicating tablet cannot be of type primary".into(),
            ));
        }
        let _ops = self.ops.lock().await;
        let current = self.role();
        let tablet_type = match (req.tablet_type, current.tablet_type) {
            (Some(t), _) => t,
            (None, TabletType::Primary) => TabletType::Replica,
            (None, t) => t,
        };
        let source = SourceAddr {
            host: req.host.clone(),
            port: req.port,
        };
        let mut conn = self.conn(None).await?;
        // Fence writes before anything else: this may be a demoted primary.
        replication::set_read_only(&mut conn, true).await?;
        replication::replicate_from(
            &mut conn,
            &source,
            &self.cfg.mysqld.credentials,
            self.semi_sync_replica(tablet_type),
        )
        .await?;
        let _ = conn.disconnect().await;
        self.semi_sync_armed.store(false, Ordering::SeqCst);
        self.set_role(Role {
            tablet_type,
            source: Some(source),
            read_only: true,
        });
        self.update_record(tablet_type, None).await?;
        tracing::info!(alias = %self.cfg.alias, primary = %req.primary_alias,
            host = %req.host, port = req.port, %tablet_type, "replicating");
        Ok(self.health().await)
    }

    pub async fn op_promote(&self, primary_term: u64) -> OpResult<TabletHealth> {
        let _ops = self.ops.lock().await;
        let recorded = self
            .topo
            .get_tablet(&self.cfg.alias)
            .await
            .context("reading the Tablet record")?
            .map(|(t, _)| t.primary_term)
            .unwrap_or(0);
        if primary_term < recorded {
            return Err(OpError::BadRequest(format!(
                "stale primary term {primary_term}: tablet {} was already primary in term {recorded}",
                self.cfg.alias
            )));
        }
        let mut conn = self.conn(None).await?;
        replication::reset_replication(&mut conn).await?;
        // The new primary's replicas are still being repointed: waiting for
        // their acks now would block every write. The monitor turns
        // semi-sync on once one of them is attached and caught up.
        replication::set_semi_sync_replica(&mut conn, false).await?;
        replication::set_semi_sync_primary(&mut conn, false).await?;
        self.semi_sync_armed.store(false, Ordering::SeqCst);
        replication::set_read_only(&mut conn, false).await?;
        self.primary_term.store(primary_term, Ordering::SeqCst);
        let _ = conn.disconnect().await;
        self.set_role(Role {
            tablet_type: TabletType::Primary,
            source: None,
            read_only: false,
        });
        self.update_record(TabletType::Primary, Some(primary_term))
            .await?;
        tracing::info!(alias = %self.cfg.alias, primary_term, "promoted to primary");
        Ok(self.health().await)
    }

    pub async fn op_change_type(&self, tablet_type: TabletType) -> OpResult<TabletHealth> {
        let _ops = self.ops.lock().await;
        let current = self.role();
        if tablet_type == TabletType::Primary {
            return Err(OpError::BadRequest(
                "use /promote to make a tablet primary".into(),
            ));
        }
        if current.tablet_type == TabletType::Primary {
            return Err(OpError::BadRequest(
                "tablet is primary: use /replicate-from to demote it".into(),
            ));
        }
        self.role.lock().expect("role lock").tablet_type = tablet_type;
        self.update_record(tablet_type, None).await?;
        tracing::info!(alias = %self.cfg.alias, from = %current.tablet_type, to = %tablet_type, "type changed");
        Ok(self.health().await)
    }

    /// Brings mysqld's semi-sync settings in line with the keyspace's
    /// policy and the tablet's role. Skipped when a role change is under way:
    /// the next tick sees its outcome.
    /// Deletes the gate's write markers nobody has written for an hour (see
    /// crates/gate/src/write_marker.rs); on a writable primary only, so the
    /// delete replicates like the rows did.
    async fn sweep_write_markers(&self) -> u64 {
        let role = self.role();
        if role.tablet_type != TabletType::Primary || role.read_only {
            return 0;
        }
        let sql = format!(
            "DELETE FROM _tessera.write_marker WHERE updated_at < NOW(6) - INTERVAL {MARKER_MAX_AGE_SECS} SECOND"
        );
        let swept = async {
            let mut conn = self.conn(None).await?;
            conn.query_drop(sql).await?;
            anyhow::Ok(conn.affected_rows())
        };
        match tokio::time::timeout(SQL_TIMEOUT, swept).await {
            Ok(Ok(n)) => {
                if n > 0 {
                    tracing::debug!(alias = %self.cfg.alias, rows = n, "stale write markers deleted");
                }
                n
            }
            Ok(Err(e)) => {
                tracing::debug!(alias = %self.cfg.alias, error = %format!("{e:#}"),
                    "deleting stale write markers failed");
                0
            }
            Err(_) => {
                tracing::debug!(alias = %self.cfg.alias, "deleting stale write markers timed out");
                0
            }
        }
    }

    async fn reconcile_semi_sync(&self, log: &mut SemiSyncLog) -> anyhow::Result<()> {
        let Ok(_ops) = self.ops.try_lock() else {
            return Ok(());
        };
        let role = self.role();
        let mut conn = self.conn(None).await?;
        let out = async {
            let status = replication::semi_sync_status(&mut conn).await?;
            if role.tablet_type == TabletType::Primary {
                return self.reconcile_primary(&mut conn, &status, log).await;
            }
            if status.primary_enabled {
                replication::set_semi_sync_primary(&mut conn, false).await?;
            }
            let want = self.semi_sync_replica(role.tablet_type);
            if role.source.is_some() && status.replica_enabled != want {
                replication::set_semi_sync_replica(&mut conn, want).await?;
                // A stopped IO thread (a reparent in progress) stays stopped:
                // it reads the new setting whenever it is started.
                let io_running = replication::replication_status(&mut conn)
                    .await?
                    .is_some_and(|r| r.io_running);
                if io_running {
                    replication::restart_io_thread(&mut conn).await?;
                }
                tracing::info!(alias = %self.cfg.alias, tablet_type = %role.tablet_type,
                    acknowledging = want, "replica semi-sync acknowledgement changed");
            }
            anyhow::Ok(())
        }
        .await;
        let _ = conn.disconnect().await;
        out
    }

    async fn reconcile_primary(
        &self,
        conn: &mut Conn,
        status: &SemiSyncStatus,
        log: &mut SemiSyncLog,
    ) -> anyhow::Result<()> {
        if self.durability() != DurabilityPolicy::SemiSync {
            if status.primary_enabled {
                // Only an operator's change of policy gets here.
                replication::set_semi_sync_primary(conn, false).await?;
                self.semi_sync_armed.store(false, Ordering::SeqCst);
                tracing::warn!(alias = %self.cfg.alias,
                    "durability policy is no longer semi_sync: primary semi-sync turned off");
            }
            *log = SemiSyncLog::default();
            return Ok(());
        }
        if !status.primary_enabled {
            let armed = self.semi_sync_armed.load(Ordering::SeqCst);
            let ready =
                armed || (status.clients >= 1 && replication::some_replica_caught_up(conn).await?);
            if ready {
                replication::set_semi_sync_primary(conn, true).await?;
                self.semi_sync_armed.store(true, Ordering::SeqCst);
                tracing::info!(alias = %self.cfg.alias, clients = status.clients,
                    "primary semi-sync enabled: commits now wait for a replica's acknowledgement");
                *log = SemiSyncLog::default();
            } else if !log.waiting_reported {
                tracing::warn!(alias = %self.cfg.alias, clients = status.clients,
                    "semi_sync primary waits for a caught-up semi-sync replica; until then writes are not loss-less");
                log.waiting_reported = true;
            }
            return Ok(());
        }
        if status.clients == 0 {
            if log
                .last_no_replica_alarm
                .is_none_or(|t| t.elapsed() >= NO_REPLICA_ALARM_EVERY)
            {
                tracing::error!(alias = %self.cfg.alias,
                    "SEMI-SYNC PRIMARY HAS NO REPLICA ATTACHED: every write blocks until a replica acknowledges it (by design; semi-sync is never turned off automatically)");
                log.last_no_replica_alarm = Some(Instant::now());
            }
        } else if log.last_no_replica_alarm.take().is_some() {
            tracing::info!(alias = %self.cfg.alias, clients = status.clients,
                "a semi-sync replica is attached again: writes proceed");
        }
        Ok(())
    }

    /// The newer primary the Shard record names in place of this primary,
    /// with its term; None when this tablet is not primary or still is the
    /// shard's primary as far as the record says.
    async fn superseded_by(&self) -> anyhow::Result<Option<(TabletAlias, u64)>> {
        if self.role().tablet_type != TabletType::Primary {
            return Ok(None);
        }
        let Some((shard, _)) = self
            .topo
            .get_shard(&self.cfg.keyspace, &self.cfg.shard)
            .await?
        else {
            return Ok(None);
        };
        let own_term = self.primary_term.load(Ordering::SeqCst);
        Ok(match shard.primary_alias {
            Some(p) if p != self.cfg.alias && shard.primary_term > own_term => {
                Some((p, shard.primary_term))
            }
            _ => None,
        })
    }

    /// Demotes this primary when the Shard record names a newer one: an
    /// emergency reparent elected it while this tablet was cut off, so
    /// writes here would be lost or diverge. Fences writes first, then
    /// rejoins as a replica of the new primary when its GTIDs allow, else
    /// stays read-only and out of serving until re-seeded. A topology it
    /// cannot read changes nothing: missing data is no reason to act.
    async fn fence_if_superseded(&self) {
        let first_look = match self.superseded_by().await {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(alias = %self.cfg.alias, error = %format!("{e:#}"),
                    "could not read the Shard record to check this primary is still current");
                return;
            }
        };
        let _ops = self.ops.lock().await;
        // A promotion or a ctld repointing may have run while we waited.
        let (new_primary, new_term) = match self.superseded_by().await {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(alias = %self.cfg.alias, error = %format!("{e:#}"),
                    seen = %first_look.0, "Shard record unreadable on re-check; not fencing");
                return;
            }
        };
        let own_term = self.primary_term.load(Ordering::SeqCst);
        tracing::error!(alias = %self.cfg.alias, own_term, new_primary = %new_primary, new_term,
            "SUPERSEDED PRIMARY: the Shard record names a newer primary; fencing writes and demoting this tablet");
        self.role.lock().expect("role lock").read_only = true;
        // A primary returning from a partition still takes writes, and a
        // commit of it may be waiting for a semi-sync acknowledgement that
        // will never come; turning semi-sync off below (to replicate) would
        // release it and tell its client it succeeded: a write acknowledged
        // here alone, lost for good. Its application sessions are killed
        // first, so those clients hear of a failure instead. A primary
        // already read-only with nothing waiting (the old primary of a
        // planned reparent, whose sessions ctld already ended) is left
        // alone: the gate is replaying its refused queries elsewhere.
        let fenced = tokio::time::timeout(SQL_TIMEOUT, async {
            let mut conn = self.conn(None).await?;
            let creds = &self.cfg.mysqld.credentials;
            let kill = replication::may_hold_unacknowledged_commits(&mut conn)
                .await
                .unwrap_or(true);
            if kill {
                let killed = replication::kill_app_connections(&mut conn, creds).await;
                tracing::warn!(alias = %self.cfg.alias, killed = ?killed.ok(),
                    "application sessions of the superseded primary killed");
            }
            let out = replication::set_read_only(&mut conn, true).await;
            if kill {
                // Sessions that slipped in before read_only took effect.
                let _ = replication::kill_app_connections(&mut conn, creds).await;
            }
            let _ = conn.disconnect().await;
            out
        })
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "SET GLOBAL read_only = 1 did not finish in time"
            ))
        });
        if let Err(e) = fenced {
            // Retried on the next check: the role is still primary.
            tracing::error!(alias = %self.cfg.alias, error = %format!("{e:#}"),
                "could not set read_only on the superseded primary");
            return;
        }
        let source = match self.topo.get_tablet(&new_primary).await {
            Ok(Some((t, _))) => Some(SourceAddr {
                host: t.mysql_host,
                port: t.mysql_port,
            }),
            Ok(None) => {
                tracing::warn!(alias = %self.cfg.alias, new_primary = %new_primary,
                    "the new primary has no Tablet record: staying read-only without replicating");
                None
            }
            Err(e) => {
                tracing::warn!(alias = %self.cfg.alias, error = %format!("{e:#}"),
                    "could not read the new primary's Tablet record: staying read-only without replicating");
                None
            }
        };
        let mut needs_reseed = false;
        let source = match source {
            Some(source) => match errant_transactions(&self.cfg, &self.topo).await {
                Ok(None) => Some(source),
                Ok(Some(errant)) => {
                    tracing::error!(alias = %self.cfg.alias, errant = %errant, new_primary = %new_primary,
                        "the superseded primary has transactions the new primary lacks; not replicating, needs re-seed");
                    needs_reseed = true;
                    None
                }
                Err(e) => {
                    tracing::warn!(alias = %self.cfg.alias, error = %format!("{e:#}"),
                        "could not compare GTIDs with the new primary; replicating anyway (strict GTID mode refuses a divergent replica)");
                    Some(source)
                }
            },
            None => None,
        };
        let tablet_type = self.cfg.initial_type;
        self.semi_sync_armed.store(false, Ordering::SeqCst);
        self.set_role(Role {
            tablet_type,
            source,
            read_only: true,
        });
        if let Err(e) = self.apply_role().await {
            tracing::error!(alias = %self.cfg.alias, error = %format!("{e:#}"),
                "the demoted primary could not take its new role; it stays read-only");
        }
        let recorded = self
            .topo
            .update_tablet(&self.cfg.alias, |t| {
                t.tablet_type = tablet_type;
                t.needs_reseed |= needs_reseed;
                Ok(())
            })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(alias = %self.cfg.alias, error = %format!("{e:#}"),
                "could not record the self-demotion in the Tablet record");
        }
        tracing::warn!(alias = %self.cfg.alias, new_primary = %new_primary, new_term, %tablet_type,
            needs_reseed, "superseded primary demoted itself");
    }

    pub async fn op_positions(&self) -> OpResult<Positions> {
        let mut conn = self.conn(None).await?;
        let out = replication::positions(&mut conn).await;
        let _ = conn.disconnect().await;
        Ok(out?)
    }

    pub async fn op_stop_io_thread(&self) -> OpResult<Positions> {
        let _ops = self.ops.lock().await;
        let mut conn = self.conn(None).await?;
        replication::stop_io_thread(&mut conn).await?;
        let out = replication::positions(&mut conn).await;
        let _ = conn.disconnect().await;
        tracing::info!(alias = %self.cfg.alias, "replication IO thread stopped");
        Ok(out?)
    }

    /// Not serialised with role changes: it only reads, and may wait long.
    pub async fn op_wait_for_position(&self, req: WaitForPosition) -> OpResult<WaitResult> {
        if let Err(e) = validate_gtid_list(&req.gtid_pos) {
            return Err(OpError::BadRequest(e));
        }
        if req.timeout_ms > MAX_POSITION_WAIT.as_millis() as u64 {
            return Err(OpError::BadRequest(format!(
                "timeout_ms {} exceeds the maximum of {}",
                req.timeout_ms,
                MAX_POSITION_WAIT.as_millis()
            )));
        }
        let mut conn = self.conn(None).await?;
        let reached = replication::wait_for_gtid(
            &mut conn,
            &req.gtid_pos,
            Duration::from_millis(req.timeout_ms),
        )
        .await;
        let positions = replication::positions(&mut conn).await;
        let _ = conn.disconnect().await;
        Ok(WaitResult {
            reached: reached?,
            positions: positions?,
        })
    }

    pub async fn op_kill_app_connections(&self) -> OpResult<KillResult> {
        let mut conn = self.conn(None).await?;
        let killed =
            replication::kill_app_connections(&mut conn, &self.cfg.mysqld.credentials).await;
        let _ = conn.disconnect().await;
        let killed = killed?;
        tracing::info!(alias = %self.cfg.alias, killed, "application connections killed");
        Ok(KillResult { killed })
    }

    pub async fn op_execute(&self, req: ExecuteRequest) -> OpResult<ExecuteResult> {
        if req.sql.trim().is_empty() {
            return Err(OpError::BadRequest("empty SQL".into()));
        }
        let db = req.db.as_deref().unwrap_or(&self.cfg.mysqld.database);
        let mut conn = match self.conn(Some(db)).await {
            Ok(c) => c,
            Err(e) => return Err(sql_error(e)),
        };
        if req.skip_binlog {
            conn.query_drop("SET SESSION sql_log_bin = 0")
                .await
                .context("SET sql_log_bin = 0")?;
        }
        let out = run_text_query(&mut conn, &req.sql).await;
        let _ = conn.disconnect().await;
        out.map_err(sql_error)
    }

    pub async fn op_schema(&self, db: Option<String>) -> OpResult<SchemaDefinition> {
        let db = db.unwrap_or_else(|| self.cfg.mysqld.database.clone());
        let mut conn = self.conn(None).await?;
        let exists: Option<String> = conn
            .exec_first(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
                (&db,),
            )
            .await
            .context("looking up the database")?;
        if exists.is_none() {
            return Err(OpError::BadRequest(format!(
                "database {db:?} does not exist"
            )));
        }
        let tables: Vec<(String, String)> = conn
            .exec(
                "SELECT table_name, table_type FROM information_schema.tables \
                 WHERE table_schema = ? ORDER BY table_name",
                (&db,),
            )
            .await
            .context("listing tables")?;
        // From inside the database, SHOW CREATE names views unqualified.
        conn.query_drop(format!("USE {}", quote_ident(&db)))
            .await
            .context("switching to the database")?;
        let mut defs = Vec::with_capacity(tables.len());
        for (name, table_type) in tables {
            let row: Option<mysql_async::Row> = conn
                .query_first(format!("SHOW CREATE TABLE {}", quote_ident(&name)))
                .await
                .with_context(|| format!("SHOW CREATE TABLE {name}"))?;
            let create_statement = row
                .and_then(|r| r.get_opt::<String, _>(1).and_then(|v| v.ok()))
                .unwrap_or_default();
            defs.push(TableDefinition {
                name,
                table_type,
                create_statement,
            });
        }
        let _ = conn.disconnect().await;
        Ok(SchemaDefinition {
            database: db,
            tables: defs,
        })
    }
}

/// MariaDB's own refusals (syntax, unknown table, read-only) are the
/// caller's to fix; anything else is the agent's failure.
fn sql_error(e: anyhow::Error) -> OpError {
    match e.downcast_ref::<mysql_async::Error>() {
        Some(mysql_async::Error::Server(s)) => OpError::BadRequest(format!(
            "MariaDB error {} ({}): {}",
            s.code, s.state, s.message
        )),
        _ => OpError::Failed(e),
    }
}

/// Runs possibly several statements over the text protocol. The columns and
/// rows are those of the last statement that returned rows; rows_affected
/// adds up over all statements.
async fn run_text_query(conn: &mut Conn, sql: &str) -> anyhow::Result<ExecuteResult> {
    let mut out = ExecuteResult {
        columns: Vec::new(),
        rows: Vec::new(),
        rows_affected: 0,
    };
    let mut result = conn.query_iter(sql).await?;
    while !result.is_empty() {
        let columns: Vec<String> = result
            .columns_ref()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        // A row set carries no affected count; the connection still holds
        // the previous statement's, which must not be counted twice.
        if columns.is_empty() {
            out.rows_affected += result.affected_rows();
        }
        let rows: Vec<mysql_async::Row> = result.collect().await?;
        if !columns.is_empty() {
            out.columns = columns;
            out.rows = rows.into_iter().map(row_as_text).collect();
        }
    }
    Ok(out)
}

fn row_as_text(row: mysql_async::Row) -> Vec<Option<String>> {
    row.unwrap()
        .into_iter()
        .map(|v| match v {
            mysql_async::Value::NULL => None,
            mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            mysql_async::Value::Int(i) => Some(i.to_string()),
            mysql_async::Value::UInt(u) => Some(u.to_string()),
            mysql_async::Value::Float(f) => Some(f.to_string()),
            mysql_async::Value::Double(d) => Some(d.to_string()),
            // Dates and times only come over the binary protocol; render
            // them as SQL would, without the quotes.
            other => Some(other.as_sql(true).trim_matches('\'').to_string()),
        })
        .collect()
}

/// Checks `domain-server-seq[,...]` text before it reaches SQL.
fn validate_gtid_list(text: &str) -> Result<(), String> {
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let fields: Vec<&str> = part.split('-').collect();
        let numeric = fields.len() == 3
            && fields
                .iter()
                .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
        if !numeric {
            return Err(format!(
                "bad GTID {part:?}: expected domain-server-sequence"
            ));
        }
    }
    Ok(())
}

pub struct TabletAgent {
    shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
    monitor: Option<JoinHandle<()>>,
    server: Option<JoinHandle<()>>,
}

impl TabletAgent {
    /// Initialises the datadir if needed, starts mysqld, takes the role the
    /// topology gives this tablet, writes its Tablet record, serves the HTTP
    /// API and starts the monitor. Returns once mysqld answers and the API
    /// is up.
    pub async fn start(cfg: TabletConfig, topo: Topo) -> anyhow::Result<TabletAgent> {
        cfg.validate()?;
        let listener = tokio::net::TcpListener::bind(cfg.agent_listen)
            .await
            .with_context(|| format!("binding the agent API on {}", cfg.agent_listen))?;
        let bound = listener.local_addr()?;
        let agent_addr = if bound.ip().is_unspecified() {
            format!("{}:{}", cfg.mysql_host, bound.port())
                .parse()
                .unwrap_or(bound)
        } else {
            bound
        };

        let mut mysqld = Mysqld::new(cfg.mysqld.clone());
        mysqld.init_if_needed().await?;
        mysqld.start().await?;

        let (mut role, mut record) = match initial_role(&cfg, &topo, agent_addr).await {
            Ok(r) => r,
            Err(e) => {
                let _ = mysqld.stop().await;
                return Err(e);
            }
        };
        if role.source.is_some() {
            match errant_transactions(&cfg, &topo).await {
                Ok(None) => {}
                Ok(Some(errant)) => {
                    // Replicating would either fail or silently diverge:
                    // stay read-only and out of serving until re-seeded.
                    tracing::error!(alias = %cfg.alias, errant = %errant,
                        "this tablet has transactions the shard's primary lacks; not replicating, needs re-seed");
                    role.source = None;
                    record.needs_reseed = true;
                }
                Err(e) => tracing::warn!(alias = %cfg.alias, error = %format!("{e:#}"),
                    "could not compare GTIDs with the shard's primary; replicating anyway (strict GTID mode refuses a divergent replica)"),
            }
        }
        let durability = match read_durability(&topo, &cfg.keyspace).await {
            Ok(p) => p,
            Err(e) => {
                let _ = mysqld.stop().await;
                return Err(e);
            }
        };
        let shared = Arc::new(Shared {
            durability: StdMutex::new(durability),
            semi_sync_armed: AtomicBool::new(false),
            primary_term: AtomicU64::new(record.primary_term),
            cfg,
            topo,
            mysqld: Mutex::new(mysqld),
            role: StdMutex::new(role.clone()),
            ops: Mutex::new(()),
            agent_addr,
            stopping: AtomicBool::new(false),
        });
        let registered = async {
            shared
                .apply_role()
                .await
                .context("putting mysqld in its role")?;
            ensure_cell(&shared.topo, &shared.cfg.alias.cell).await?;
            shared
                .topo
                .put_tablet(&record)
                .await
                .context("writing the Tablet record")?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = registered {
            let _ = shared.mysqld.lock().await.stop().await;
            return Err(e);
        }
        tracing::info!(alias = %shared.cfg.alias, tablet_type = %role.tablet_type,
            agent = %agent_addr, mysql_port = shared.cfg.mysqld.port, "tablet agent started");

        let (stop_tx, stop_rx) = watch::channel(false);
        let server = tokio::spawn(crate::http::serve(
            listener,
            shared.clone(),
            stop_rx.clone(),
        ));
        let monitor = tokio::spawn(monitor(shared.clone(), stop_rx));
        Ok(TabletAgent {
            shared,
            stop_tx,
            monitor: Some(monitor),
            server: Some(server),
        })
    }

    /// The agent's API address (`host:port`), as written in its record.
    pub fn agent_addr(&self) -> SocketAddr {
        self.shared.agent_addr
    }

    pub fn config(&self) -> &TabletConfig {
        &self.shared.cfg
    }

    pub fn alias(&self) -> &TabletAlias {
        &self.shared.cfg.alias
    }

    pub fn mysql_port(&self) -> u16 {
        self.shared.cfg.mysqld.port
    }

    /// The mariadbd child's pid, None while it is down or restarting.
    pub async fn mysqld_pid(&self) -> Option<u32> {
        self.shared.mysqld_pid().await
    }

    /// Deletes stale gate write markers now (the monitor does it every ten
    /// minutes on a writable primary); the rows deleted.
    pub async fn sweep_write_markers(&self) -> u64 {
        self.shared.sweep_write_markers().await
    }

    pub async fn health(&self) -> TabletHealth {
        self.shared.health().await
    }

    /// Stops the monitor and the API, then mysqld, cleanly. The Tablet
    /// record stays.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.stop_tx.send(true);
        if let Some(m) = self.monitor.take() {
            let _ = m.await;
        }
        if let Some(s) = self.server.take() {
            let abort = s.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), s)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let _ops = self.shared.ops.lock().await;
        self.shared.mysqld.lock().await.stop().await?;
        tracing::info!(alias = %self.shared.cfg.alias, "tablet agent stopped");
        Ok(())
    }
}

impl Drop for TabletAgent {
    fn drop(&mut self) {
        // Without this the tasks would keep `Shared`, and so mysqld, alive
        // after an agent dropped without shutdown (a failing test).
        for task in [self.monitor.take(), self.server.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// The role and record a starting tablet takes from the topology, so that a
/// restarted cluster resumes by itself.
async fn initial_role(
    cfg: &TabletConfig,
    topo: &Topo,
    agent_addr: SocketAddr,
) -> anyhow::Result<(Role, Tablet)> {
    ensure_keyspace_and_shard(topo, &cfg.keyspace, &cfg.shard).await?;
    let shard = topo
        .get_shard(&cfg.keyspace, &cfg.shard)
        .await
        .context("reading the Shard record")?
        .map(|(s, _)| s);
    let existing = topo
        .get_tablet(&cfg.alias)
        .await
        .context("reading this tablet's record")?
        .map(|(t, _)| t);
    let non_primary_type = match existing.as_ref().map(|t| t.tablet_type) {
        Some(TabletType::Primary) | None => cfg.initial_type,
        Some(t) => t,
    };
    let primary = shard.as_ref().and_then(|s| s.primary_alias.clone());
    let mut primary_term = existing.as_ref().map(|t| t.primary_term).unwrap_or(0);
    let role = match primary {
        Some(p) if p == cfg.alias => {
            primary_term = shard
                .as_ref()
                .map(|s| s.primary_term)
                .unwrap_or(primary_term);
            Role {
                tablet_type: TabletType::Primary,
                source: None,
                read_only: false,
            }
        }
        Some(p) => {
            let source = topo
                .get_tablet(&p)
                .await
                .context("reading the primary's Tablet record")?
                .map(|(t, _)| SourceAddr {
                    host: t.mysql_host,
                    port: t.mysql_port,
                });
            if source.is_none() {
                tracing::warn!(primary = %p, "the shard's primary has no Tablet record: not replicating");
            }
            Role {
                tablet_type: non_primary_type,
                source,
                read_only: true,
            }
        }
        None => Role {
            tablet_type: non_primary_type,
            source: None,
            read_only: true,
        },
    };
    let record = Tablet {
        format: FORMAT_VERSION,
        alias: cfg.alias.clone(),
        hostname: cfg.hostname.clone(),
        keyspace: cfg.keyspace.clone(),
        shard: cfg.shard.clone(),
        tablet_type: role.tablet_type,
        mysql_host: cfg.mysql_host.clone(),
        mysql_port: cfg.mysqld.port,
        agent_addr: agent_addr.to_string(),
        db_name: cfg.mysqld.database.clone(),
        primary_term,
        needs_reseed: existing.map(|t| t.needs_reseed).unwrap_or(false),
    };
    Ok((role, record))
}

/// The GTIDs this mysqld wrote or applied that the shard's current primary
/// does not have (as text), None when it has them all. A returning old
/// primary may hold transactions nobody received before it was replaced.
async fn errant_transactions(cfg: &TabletConfig, topo: &Topo) -> anyhow::Result<Option<String>> {
    let shard = topo
        .get_shard(&cfg.keyspace, &cfg.shard)
        .await?
        .map(|(s, _)| s)
        .context("the Shard record vanished")?;
    let primary_alias = shard.primary_alias.context("the shard has no primary")?;
    let (primary, _) = topo
        .get_tablet(&primary_alias)
        .await?
        .with_context(|| format!("the primary {primary_alias} has no Tablet record"))?;
    let theirs = crate::api::AgentClient::with_timeout(&primary.agent_addr, SQL_TIMEOUT)
        .positions()
        .await
        .with_context(|| format!("asking the primary {primary_alias} for its GTID state"))?;
    let mut conn =
        match tokio::time::timeout(SQL_TIMEOUT, Conn::new(cfg.mysqld.dba_opts(None))).await {
            Ok(c) => c.context("connecting to mysqld")?,
            Err(_) => anyhow::bail!("mysqld did not accept a connection in time"),
        };
    let ours = replication::positions(&mut conn).await;
    let _ = conn.disconnect().await;
    let ours = ours?;
    let errant = replication::missing_gtids(&ours.gtid_binlog_pos, &theirs.gtid_binlog_state)
        .map_err(anyhow::Error::msg)?;
    Ok((!errant.is_empty()).then(|| errant.join(",")))
}

/// A tablet started on its own (`tessera tablet`) may be the first to name
/// its keyspace and shard, as with Vitess's tablets: create their records
/// when nobody has. A keyspace whose first shard is a key range is sharded.
async fn ensure_keyspace_and_shard(topo: &Topo, keyspace: &str, shard: &str) -> anyhow::Result<()> {
    let key_range = tessera_topo::KeyRange::from_shard_name(shard).map_err(anyhow::Error::msg)?;
    if topo.get_keyspace(keyspace).await?.is_none() {
        let record = tessera_topo::Keyspace {
            name: keyspace.to_string(),
            sharded: !key_range.is_full(),
            ..Default::default()
        };
        match topo.create_keyspace(&record).await {
            Ok(()) | Err(TopoError::AlreadyExists(_)) => {}
            Err(e) => return Err(e).context("creating the Keyspace record"),
        }
    }
    if topo.get_shard(keyspace, shard).await?.is_none() {
        let record = tessera_topo::Shard {
            keyspace: keyspace.to_string(),
            name: shard.to_string(),
            key_range,
            ..Default::default()
        };
        match topo.create_shard(&record).await {
            Ok(()) | Err(TopoError::AlreadyExists(_)) => {}
            Err(e) => return Err(e).context("creating the Shard record"),
        }
    }
    Ok(())
}

/// Tablets are listed per known cell, so a tablet of an unknown cell would be
/// invisible: register the cell when nobody has.
async fn ensure_cell(topo: &Topo, cell: &str) -> anyhow::Result<()> {
    if topo.get_cell(cell).await?.is_some() {
        return Ok(());
    }
    let info = CellInfo {
        format: FORMAT_VERSION,
        name: cell.to_string(),
        ..Default::default()
    };
    match topo.create_cell(&info).await {
        Ok(()) | Err(TopoError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e).context("registering the tablet's cell"),
    }
}

fn restart_backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(4)).min(MAX_RESTART_BACKOFF)
}

/// Whether a tablet of this type acknowledges semi-sync: only replicas
/// count as acknowledgers (as with Vitess's semi_sync policy), rdonly
/// tablets never do.
fn acknowledges_semi_sync(policy: DurabilityPolicy, tablet_type: TabletType) -> bool {
    policy == DurabilityPolicy::SemiSync && tablet_type == TabletType::Replica
}

/// The keyspace's durability policy; `none` when the keyspace has no record.
async fn read_durability(topo: &Topo, keyspace: &str) -> anyhow::Result<DurabilityPolicy> {
    Ok(topo
        .get_keyspace(keyspace)
        .await
        .with_context(|| format!("reading the Keyspace record of {keyspace}"))?
        .map(|k| k.durability_policy)
        .unwrap_or_default())
}

/// What the monitor already said about semi-sync, so it neither floods the
/// log nor stays silent about a primary blocked for want of replicas.
#[derive(Debug, Default)]
struct SemiSyncLog {
    waiting_reported: bool,
    last_no_replica_alarm: Option<Instant>,
}

/// Watches mysqld every second: restarts it with backoff when it died and
/// puts it back in its role; demotes this primary when the topology names a
/// newer one; keeps semi-sync in line with the durability policy; logs
/// changes of health.
async fn monitor(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut semi_sync_log = SemiSyncLog::default();
    let mut ticks = 0u64;
    let mut attempt = 0u32;
    let mut last_restart: Option<Instant> = None;
    let mut last_seen: Option<(bool, Option<String>)> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(MONITOR_INTERVAL) => {}
        }
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let died = {
            let mut m = shared.mysqld.lock().await;
            if m.is_running() {
                None
            } else {
                Some(m.exit_status())
            }
        };
        if let Some(status) = died {
            if last_restart.is_some_and(|t| t.elapsed() > BACKOFF_RESET_AFTER) {
                attempt = 0;
            }
            let delay = restart_backoff(attempt);
            attempt += 1;
            let status = status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into());
            tracing::warn!(alias = %shared.cfg.alias, %status, ?delay, attempt,
                "mysqld died; restarting it");
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            let _ops = shared.ops.lock().await;
            let started = shared.mysqld.lock().await.start().await;
            last_restart = Some(Instant::now());
            match started {
                Ok(()) => match shared.apply_role().await {
                    Ok(()) => {
                        tracing::info!(alias = %shared.cfg.alias, "mysqld restarted and back in its role")
                    }
                    Err(e) => tracing::error!(alias = %shared.cfg.alias, error = %format!("{e:#}"),
                        "mysqld restarted but its role could not be re-applied"),
                },
                Err(e) => tracing::error!(alias = %shared.cfg.alias, error = %format!("{e:#}"),
                    "restarting mysqld failed"),
            }
            continue;
        }
        ticks += 1;
        if ticks.is_multiple_of(DURABILITY_REFRESH_TICKS)
            && let Err(e) = shared.refresh_durability().await
        {
            tracing::warn!(alias = %shared.cfg.alias, error = %format!("{e:#}"),
                "could not re-read the durability policy");
        }
        if ticks.is_multiple_of(SUPERSEDED_CHECK_TICKS) {
            shared.fence_if_superseded().await;
        }
        if ticks.is_multiple_of(MARKER_SWEEP_TICKS) {
            let _ = shared.sweep_write_markers().await;
        }
        if let Err(e) = shared.reconcile_semi_sync(&mut semi_sync_log).await {
            tracing::debug!(alias = %shared.cfg.alias, error = %format!("{e:#}"),
                "semi-sync check failed");
        }
        let health = shared.health().await;
        let seen = (health.serving, health.error.clone());
        if last_seen.as_ref() != Some(&seen) {
            if health.serving {
                tracing::info!(alias = %shared.cfg.alias, tablet_type = %health.tablet_type, "tablet serving");
            } else {
                tracing::warn!(alias = %shared.cfg.alias, tablet_type = %health.tablet_type,
                    reason = health.error.as_deref().unwrap_or(""), "tablet not serving");
            }
            last_seen = Some(seen);
        }
    }
}

/// Runs one tablet until ctrl-c or SIGTERM, then shuts it down cleanly.
pub async fn run_tablet_process(cfg: TabletConfig, topo: Topo) -> anyhow::Result<()> {
    let agent = TabletAgent::start(cfg, topo).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for ctrl-c")?,
        _ = term.recv() => {}
    }
    tracing::info!(alias = %agent.alias(), "shutting down");
    agent.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_replicas_of_semi_sync_keyspaces_acknowledge() {
        use DurabilityPolicy::{None as Async, SemiSync};
        assert!(acknowledges_semi_sync(SemiSync, TabletType::Replica));
        for t in [
            TabletType::Rdonly,
            TabletType::Primary,
            TabletType::Spare,
            TabletType::Drained,
        ] {
            assert!(!acknowledges_semi_sync(SemiSync, t), "{t}");
        }
        assert!(!acknowledges_semi_sync(Async, TabletType::Replica));
    }

    #[test]
    fn backoff_grows_to_ten_seconds() {
        let secs: Vec<u64> = (0..6).map(|a| restart_backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn local_config_defaults() {
        let cfg = TabletConfig::local("/tmp/t", TabletAlias::new("zone1", 100), "ks", "0", 3400, 0);
        assert_eq!(cfg.mysqld.server_id, 100);
        assert_eq!(cfg.mysqld.database, "ks");
        assert!(cfg.validate().is_ok());
        let mut bad = cfg.clone();
        bad.initial_type = TabletType::Primary;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("promotion")
        );
    }
}
