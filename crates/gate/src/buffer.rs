//! Buffering of primary-bound statements while a shard's primary changes:
//! a statement that finds the primary read-only, unroutable or unreachable
//! waits (bounded in time and number) until the routing table shows a
//! serving primary again, then runs there. The topology watcher is woken to
//! refresh at a fast pace while any shard buffers, so the new primary is
//! learnt within tens of milliseconds instead of one health interval.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tessera_topo::TabletAlias;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::topology::{Health, RoutingTable};

/// How often the routing table is rebuilt while a shard buffers.
pub(crate) const FAST_REFRESH: Duration = Duration::from_millis(50);

/// Why a buffered statement gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BufferError {
    /// The shard's window ended before a serving primary appeared; why the
    /// primary was found unusable.
    WindowEnded(String),
    /// Too many statements already wait for the shard.
    Full(usize),
}

impl BufferError {
    /// The message of the ERROR 1105 the client gets; both say "retry"
    /// because the condition is transient.
    pub(crate) fn message(&self, keyspace: &str, shard: &str) -> String {
        match self {
            BufferError::WindowEnded(why) if why.is_empty() => {
                format!("primary of {keyspace}/{shard} is changing; retry")
            }
            BufferError::WindowEnded(why) => {
                format!("primary of {keyspace}/{shard} is changing; retry (last error: {why})")
            }
            BufferError::Full(n) => format!(
                "primary of {keyspace}/{shard} is changing and {n} queries already wait for it; retry"
            ),
        }
    }
}

/// The primary a statement found unusable: what a change is measured against.
#[derive(Debug, Clone)]
pub(crate) struct FailedPrimary {
    pub alias: Option<TabletAlias>,
    pub term: u64,
    /// What the statement saw, for the error if the window ends.
    pub why: String,
}

type ShardKey = (Arc<str>, Arc<str>);

struct ShardWindow {
    deadline: Instant,
    /// Routing-table generation when the window opened.
    opened_generation: u64,
    failed: FailedPrimary,
    queued: usize,
}

pub(crate) struct Buffers {
    window: Duration,
    max_queued: usize,
    /// Shards with an open window; the only thing the query path reads when
    /// nothing is changing.
    active: AtomicUsize,
    shards: Mutex<HashMap<ShardKey, ShardWindow>>,
    /// Asks the topology watcher for an immediate refresh.
    refresh_wanted: Notify,
    /// Counts routing tables swapped in, so waiters know a table is newer
    /// than their failure.
    generation: watch::Sender<u64>,
    routing: Arc<ArcSwap<RoutingTable>>,
    metrics: Arc<Metrics>,
}

/// Leaves the shard's queue however the wait ends.
struct Queued<'a> {
    buffers: &'a Buffers,
    key: &'a ShardKey,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut shards = self.buffers.lock();
        if let Some(w) = shards.get_mut(self.key) {
            w.queued = w.queued.saturating_sub(1);
            if w.queued == 0 {
                shards.remove(self.key);
                self.buffers.active.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Buffers {
    pub(crate) fn new(
        window: Duration,
        max_queued: usize,
        routing: Arc<ArcSwap<RoutingTable>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            window,
            max_queued,
            active: AtomicUsize::new(0),
            shards: Mutex::new(HashMap::new()),
            refresh_wanted: Notify::new(),
            generation: watch::Sender::new(0),
            routing,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ShardKey, ShardWindow>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (each update is one insert/remove), so poisoning is ignored.
        self.shards.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// True while some shard buffers; one relaxed load.
    #[inline]
    pub(crate) fn any_active(&self) -> bool {
        self.active.load(Ordering::Relaxed) != 0
    }

    /// The watcher should refresh at the fast pace.
    pub(crate) fn wants_fast_refresh(&self) -> bool {
        self.any_active()
    }

    /// Asks the watcher for a refresh now (a record changed while buffering).
    pub(crate) fn request_refresh(&self) {
        self.refresh_wanted.notify_one();
    }

    /// Resolves when some statement asked for an immediate refresh.
    pub(crate) async fn refresh_requested(&self) {
        self.refresh_wanted.notified().await
    }

    /// Called by the watcher after each new routing table.
    pub(crate) fn table_swapped(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Waits until the shard has a serving primary that is not the one that
    /// failed (or the failed one serves again, as seen by a health poll made
    /// after the failure). `failed` None means the caller saw no failure
    /// itself and only joins a window that is already open.
    pub(crate) async fn wait(
        &self,
        keyspace: &Arc<str>,
        shard: &Arc<str>,
        failed: Option<FailedPrimary>,
    ) -> Result<(), BufferError> {
        let key: ShardKey = (keyspace.clone(), shard.clone());
        let started = Instant::now();
        let (deadline, opened_generation, failed) = {
            let mut shards = self.lock();
            match shards.get_mut(&key) {
                Some(w) => {
                    if w.queued >= self.max_queued {
                        self.metrics.buffer_full.inc();
                        return Err(BufferError::Full(w.queued));
                    }
                    w.queued += 1;
                    (w.deadline, w.opened_generation, w.failed.clone())
                }
                None => {
                    let Some(failed) = failed else {
                        return Ok(());
                    };
                    if self.max_queued == 0 {
                        self.metrics.buffer_full.inc();
                        return Err(BufferError::Full(0));
                    }
                    let w = ShardWindow {
                        deadline: started + self.window,
                        opened_generation: *self.generation.borrow(),
                        failed,
                        queued: 1,
                    };
                    tracing::info!(
                        keyspace = &**keyspace,
                        shard = &**shard,
                        primary = ?w.failed.alias,
                        term = w.failed.term,
                        "primary is changing: buffering its statements"
                    );
                    let opened = (w.deadline, w.opened_generation, w.failed.clone());
                    shards.insert(key.clone(), w);
                    self.active.fetch_add(1, Ordering::Relaxed);
                    self.refresh_wanted.notify_one();
                    opened
                }
            }
        };
        let _queued = Queued {
            buffers: self,
            key: &key,
        };
        self.metrics.buffered.inc();
        let mut generations = self.generation.subscribe();
        loop {
            let generation = *generations.borrow_and_update();
            if primary_changed(
                &self.routing.load(),
                keyspace,
                shard,
                &failed,
                generation,
                opened_generation,
            ) {
                self.metrics
                    .buffer_seconds
                    .observe(started.elapsed().as_secs_f64());
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, generations.changed()).await {
                Ok(Ok(())) => {}
                // The gate is stopping.
                Ok(Err(_)) | Err(_) => {
                    self.metrics.buffer_timeouts.inc();
                    self.metrics
                        .buffer_seconds
                        .observe(started.elapsed().as_secs_f64());
                    tracing::info!(
                        keyspace = &**keyspace,
                        shard = &**shard,
                        "buffering window ended without a serving primary"
                    );
                    return Err(BufferError::WindowEnded(failed.why));
                }
            }
        }
    }

    /// The open windows, for /debug/status.
    pub(crate) fn status_json(&self) -> serde_json::Value {
        let now = Instant::now();
        let shards = self.lock();
        let mut open: Vec<_> = shards
            .iter()
            .map(|((keyspace, shard), w)| {
                serde_json::json!({
                    "keyspace": &**keyspace,
                    "shard": &**shard,
                    "queued": w.queued,
                    "failed_primary": w.failed.alias.as_ref().map(|a| a.to_string()),
                    "failed_term": w.failed.term,
                    "why": w.failed.why,
                    "window_left_ms": w.deadline.saturating_duration_since(now).as_millis() as u64,
                })
            })
            .collect();
        open.sort_by(|a, b| {
            (a["keyspace"].as_str(), a["shard"].as_str())
                .cmp(&(b["keyspace"].as_str(), b["shard"].as_str()))
        });
        serde_json::Value::Array(open)
    }

    /// Whether the shard has an open window (call only when `any_active`).
    pub(crate) fn is_buffering(&self, keyspace: &str, shard: &str) -> bool {
        self.lock()
            .keys()
            .any(|(k, s)| **k == *keyspace && **s == *shard)
    }
}

/// The table shows the change a buffered statement waits for.
pub(crate) fn primary_changed(
    table: &RoutingTable,
    keyspace: &str,
    shard: &str,
    failed: &FailedPrimary,
    generation: u64,
    opened_generation: u64,
) -> bool {
    let Some(route) = table
        .keyspaces
        .get(keyspace)
        .and_then(|k| k.shards.get(shard))
    else {
        return false;
    };
    let Some(primary) = &route.primary else {
        return false;
    };
    if primary.health != Health::Serving {
        return false;
    }
    let replaced = failed.alias.as_ref() != Some(&primary.tablet.alias)
        || route.shard.primary_term > failed.term;
    // The table one generation after the failure may rest on a health poll
    // made before it; two generations later the poll surely came after.
    replaced || generation >= opened_generation + 2
}
