//! Backend connection pools, one per tablet. Connections are kept per
//! flavour (the client capability bits that change packet formats, plus the
//! charset) because the gate relays the backend's bytes unchanged: a client
//! must only ever get bytes from a connection negotiated like its own.
//! Idle connections are reused last-in first-out; the number of open
//! connections per tablet is bounded and acquirers wait, with a timeout, for
//! one to come back.
//!
//! A pool also knows whether its tablet is the primary in the gate's
//! current routing table, and tells statements in flight on its
//! connections the moment it stops being it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_common::constants::CapabilityFlags;
use tessera_topo::TabletAlias;
use tessera_wire::protocol::UTF8MB4_GENERAL_CI;
use tessera_wire::{BackendConfig, BackendConn, BackendError};
use tokio::sync::{Notify, watch};

use crate::metrics::PoolMetrics;

/// Client capability bits that change the bytes (or the meaning of the
/// text) a server sends; the backend side asks mysqld for exactly these.
pub fn flavour_bits() -> CapabilityFlags {
    tessera_wire::backend::FLAVOUR_FLAGS
}

/// What a backend connection must have negotiated to serve a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flavour {
    pub capabilities: CapabilityFlags,
    pub charset: u8,
}

impl Flavour {
    pub fn of_client(capabilities: CapabilityFlags, charset: u8) -> Self {
        Self {
            capabilities: capabilities & flavour_bits(),
            charset,
        }
    }
}

/// How many prepared statements one backend connection keeps open.
const STMT_CACHE_CAPACITY: usize = 256;

/// The backend statements prepared on one connection, by SQL text, bounded
/// with least-recently-used eviction.
#[derive(Default)]
pub struct StmtCache {
    by_sql: HashMap<Arc<str>, CachedStmt>,
    clock: u64,
}

struct CachedStmt {
    backend_id: u32,
    last_used: u64,
}

impl StmtCache {
    pub fn get(&mut self, sql: &str) -> Option<u32> {
        self.clock += 1;
        let clock = self.clock;
        self.by_sql.get_mut(sql).map(|s| {
            s.last_used = clock;
            s.backend_id
        })
    }

    /// Records a statement; returns the backend id of an evicted one, which
    /// the caller must close on the connection.
    pub fn insert(&mut self, sql: Arc<str>, backend_id: u32) -> Option<u32> {
        self.clock += 1;
        let mut evicted = None;
        if self.by_sql.len() >= STMT_CACHE_CAPACITY && !self.by_sql.contains_key(&sql) {
            let oldest = self
                .by_sql
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            if let Some(key) = oldest {
                evicted = self.by_sql.remove(&key).map(|s| s.backend_id);
            }
        }
        self.by_sql.insert(
            sql,
            CachedStmt {
                backend_id,
                last_used: self.clock,
            },
        );
        evicted
    }

    pub fn remove(&mut self, sql: &str) -> Option<u32> {
        self.by_sql.remove(sql).map(|s| s.backend_id)
    }

    pub fn len(&self) -> usize {
        self.by_sql.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sql.is_empty()
    }
}

/// One backend connection with what the gate knows about its state.
pub struct PooledConn {
    pub backend: BackendConn,
    pub stmts: StmtCache,
    /// Identifies the connection's rows in the write-marker table.
    pub marker: crate::write_marker::ConnMarker,
    flavour: Flavour,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("Can't connect to MySQL server on '{addr}' (tablet {tablet}): {reason}")]
    Connect {
        tablet: String,
        addr: String,
        reason: String,
    },
    #[error(
        "timed out after {waited:?} waiting for a backend connection to tablet {tablet}: all {max} connections are in use"
    )]
    Exhausted {
        tablet: String,
        max: usize,
        waited: Duration,
    },
}

struct PoolState {
    /// Connections that exist: idle plus lent out.
    open: usize,
    // Boxed so a connection moves between the list and a lease without
    // copying its buffers.
    #[allow(clippy::vec_box)]
    idle: Vec<Box<PooledConn>>,
}

pub struct PoolSettings {
    pub user: String,
    pub password: String,
    pub max_connections: usize,
    pub wait_timeout: Duration,
    pub connect_timeout: Duration,
}

/// The connections of one tablet.
pub struct TabletPool {
    alias: TabletAlias,
    label: String,
    addr: String,
    db_name: String,
    user: String,
    password: String,
    max: usize,
    wait_timeout: Duration,
    connect_timeout: Duration,
    state: Mutex<PoolState>,
    returned: Notify,
    /// Set when the tablet left the topology or moved: returned connections
    /// are closed instead of kept.
    retired: AtomicBool,
    /// The routing table in force names the tablet its shard's primary.
    routed_primary: AtomicBool,
    /// Counts the times the tablet stopped being the routed primary; a
    /// statement running on it as primary watches for a change.
    deposed: watch::Sender<u64>,
    metrics: PoolMetrics,
}

impl TabletPool {
    pub fn new(
        alias: TabletAlias,
        addr: String,
        db_name: String,
        settings: &PoolSettings,
        metrics: PoolMetrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            label: alias.to_string(),
            alias,
            addr,
            db_name,
            user: settings.user.clone(),
            password: settings.password.clone(),
            max: settings.max_connections.max(1),
            wait_timeout: settings.wait_timeout,
            connect_timeout: settings.connect_timeout,
            state: Mutex::new(PoolState {
                open: 0,
                idle: Vec::new(),
            }),
            returned: Notify::new(),
            retired: AtomicBool::new(false),
            routed_primary: AtomicBool::new(false),
            deposed: watch::Sender::new(0),
            metrics,
        })
    }

    /// Records whether the routing table just swapped in names the tablet
    /// its shard's primary. Losing the role wakes every statement that
    /// watches `deposed`. Called after the table is in force, so a
    /// statement that sees `is_routed_primary` false can route again and
    /// find the new primary.
    pub(crate) fn set_routed_primary(&self, primary: bool) {
        let was = self.routed_primary.swap(primary, Ordering::AcqRel);
        if was && !primary {
            tracing::info!(tablet = %self.label, "no longer the routed primary: ending statements in flight on it");
            self.deposed.send_modify(|n| *n += 1);
        }
    }

    /// One atomic load: checked before a statement is sent to a primary.
    pub fn is_routed_primary(&self) -> bool {
        self.routed_primary.load(Ordering::Acquire)
    }

    /// Changes when the tablet stops being the routed primary. Subscribe
    /// before checking `is_routed_primary`, so no change falls between.
    pub fn deposed(&self) -> watch::Receiver<u64> {
        self.deposed.subscribe()
    }

    pub fn alias(&self) -> &TabletAlias {
        &self.alias
    }

    /// The tablet alias as text, for error messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    /// (open, idle) connection counts.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.open, state.idle.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // A panic while holding this short lock leaves only counters behind;
        // keep serving rather than poisoning every later session.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lends a connection of `flavour`: an idle one if there is one (most
    /// recently returned first), else a new one, else waits for a return.
    pub async fn get(self: &Arc<Self>, flavour: Flavour) -> Result<Lease, PoolError> {
        self.acquire(flavour, true).await
    }

    /// Lends a newly opened connection (for a retry after a pooled one failed).
    pub async fn get_fresh(self: &Arc<Self>, flavour: Flavour) -> Result<Lease, PoolError> {
        self.acquire(flavour, false).await
    }

    async fn acquire(self: &Arc<Self>, flavour: Flavour, reuse: bool) -> Result<Lease, PoolError> {
        // The per-query path: an idle connection of the right flavour, taken
        // under one short lock, with no clock read and no waiter registration.
        if reuse {
            let idle = {
                let mut state = self.lock();
                state
                    .idle
                    .iter()
                    .rposition(|c| c.flavour == flavour)
                    .map(|pos| state.idle.remove(pos))
            };
            if let Some(conn) = idle {
                self.metrics.idle.dec();
                self.metrics.in_use.inc();
                return Ok(self.lease(conn, false));
            }
        }
        let deadline = tokio::time::Instant::now() + self.wait_timeout;
        enum Next {
            Reuse(Box<PooledConn>),
            Open(Option<Box<PooledConn>>),
            Wait,
        }
        loop {
            let notified = self.returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let mut state = self.lock();
                let reusable = if reuse {
                    state.idle.iter().rposition(|c| c.flavour == flavour)
                } else {
                    None
                };
                if let Some(pos) = reusable {
                    Next::Reuse(state.idle.remove(pos))
                } else if state.open < self.max {
                    state.open += 1;
                    Next::Open(None)
                } else if !state.idle.is_empty() {
                    // Full, but with idle connections of another flavour (or
                    // ones we must not reuse): trade the oldest for a new one.
                    Next::Open(Some(state.idle.remove(0)))
                } else {
                    Next::Wait
                }
            };
            match next {
                Next::Reuse(conn) => {
                    self.metrics.idle.dec();
                    self.metrics.in_use.inc();
                    return Ok(self.lease(conn, false));
                }
                Next::Open(stale) => {
                    if let Some(old) = stale {
                        self.metrics.idle.dec();
                        drop(old);
                    }
                    self.metrics.in_use.inc();
                    return match self.connect(flavour).await {
                        Ok(conn) => Ok(self.lease(conn, true)),
                        Err(e) => {
                            self.forget_one();
                            Err(e)
                        }
                    };
                }
                Next::Wait => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        self.metrics.wait_timeouts.inc();
                        return Err(PoolError::Exhausted {
                            tablet: self.label.clone(),
                            max: self.max,
                            waited: self.wait_timeout,
                        });
                    }
                }
            }
        }
    }

    fn lease(self: &Arc<Self>, conn: Box<PooledConn>, fresh: bool) -> Lease {
        Lease {
            conn: Some(conn),
            pool: self.clone(),
            fresh,
        }
    }

    async fn connect(&self, flavour: Flavour) -> Result<Box<PooledConn>, PoolError> {
        let cfg = BackendConfig {
            addr: self.addr.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            database: Some(self.db_name.clone()),
            capabilities: flavour.capabilities,
        };
        let fail = |reason: String| {
            self.metrics.connect_errors.inc();
            PoolError::Connect {
                tablet: self.label.clone(),
                addr: self.addr.clone(),
                reason,
            }
        };
        match tokio::time::timeout(self.connect_timeout, BackendConn::connect(&cfg)).await {
            Err(_) => Err(fail(format!("no answer within {:?}", self.connect_timeout))),
            Ok(Err(e)) => Err(fail(backend_error_text(&e))),
            Ok(Ok(mut backend)) => {
                // Relayed bytes are only valid for the client when mysqld
                // agreed to every format-changing flag the client uses.
                let missing = flavour.capabilities - backend.capabilities;
                if !missing.is_empty() {
                    return Err(fail(format!(
                        "mysqld does not support capabilities {missing:?} the client negotiated"
                    )));
                }
                if flavour.charset != UTF8MB4_GENERAL_CI {
                    set_charset(&mut backend, flavour.charset)
                        .await
                        .map_err(|e| {
                            fail(format!(
                                "setting charset {}: {}",
                                flavour.charset,
                                backend_error_text(&e)
                            ))
                        })?;
                }
                self.metrics.connects.inc();
                // Boxed: connections move between the idle list and leases.
                Ok(Box::new(PooledConn {
                    backend,
                    stmts: StmtCache::default(),
                    marker: Default::default(),
                    flavour,
                }))
            }
        }
    }

    /// A lent connection is gone (closed or broken): free its slot.
    fn forget_one(&self) {
        {
            let mut state = self.lock();
            state.open = state.open.saturating_sub(1);
        }
        self.metrics.in_use.dec();
        self.returned.notify_one();
    }

    fn give_back(&self, conn: Box<PooledConn>) {
        if self.retired.load(Ordering::Relaxed) {
            drop(conn);
            self.forget_one();
            return;
        }
        self.lock().idle.push(conn);
        self.metrics.in_use.dec();
        self.metrics.idle.inc();
        self.returned.notify_one();
    }

    /// Stops keeping connections: closes the idle ones now and the lent ones
    /// when they come back.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        let idle = {
            let mut state = self.lock();
            let idle = std::mem::take(&mut state.idle);
            state.open -= idle.len();
            idle
        };
        self.metrics.idle.dec_by(idle.len() as i64);
        drop(idle);
        // Waiters may now open new connections in the freed slots.
        self.returned.notify_waiters();
    }
}

/// Makes a backend connection speak the client's character set and
/// collation (the handshake always asks for utf8mb4_general_ci), looking the
/// collation id up on the server itself.
async fn set_charset(backend: &mut BackendConn, collation_id: u8) -> Result<(), BackendError> {
    let found = backend
        .query(&format!(
            "SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS WHERE ID = {collation_id}"
        ))
        .await?;
    let (Some(charset), Some(collation)) = (found.text(0, 0), found.text(0, 1)) else {
        // E.g. MySQL 8's 255 (utf8mb4_0900_ai_ci) on MariaDB: utf8mb4 it is.
        tracing::debug!(
            collation_id,
            "unknown collation id; keeping utf8mb4_general_ci"
        );
        return Ok(());
    };
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plain(&charset) || !plain(&collation) {
        return Err(BackendError::Protocol(format!(
            "unexpected collation name {collation:?}"
        )));
    }
    backend
        .query(&format!("SET NAMES {charset} COLLATE {collation}"))
        .await?;
    Ok(())
}

/// Text of a backend error for a client-facing message.
pub fn backend_error_text(e: &BackendError) -> String {
    match e {
        BackendError::Io(io) => io.to_string(),
        BackendError::Server(info) => {
            format!("{} ({}): {}", info.code, info.sqlstate, info.message)
        }
        BackendError::Protocol(p) => format!("protocol error: {p}"),
    }
}

/// A connection lent to a session. Dropping it closes the connection (its
/// state is unknown, e.g. a session aborted mid-response); `release` returns
/// it to the pool.
pub struct Lease {
    conn: Option<Box<PooledConn>>,
    pool: Arc<TabletPool>,
    /// Opened for this lease rather than reused from the idle list.
    pub fresh: bool,
}

impl Lease {
    pub fn conn(&mut self) -> &mut PooledConn {
        self.conn
            .as_mut()
            .expect("lease holds its connection until consumed")
    }

    pub fn pool(&self) -> &Arc<TabletPool> {
        &self.pool
    }

    /// Returns the connection to the pool's idle list.
    pub fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }

    /// Closes the connection and frees its slot.
    pub fn discard(mut self) {
        self.close_now();
    }

    fn close_now(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn);
            self.pool.forget_one();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.close_now();
    }
}
