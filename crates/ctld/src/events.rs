//! The cluster's event log in the topology (`/global/events/{ms}-{n}`): one
//! record per action ctld takes on a shard or tablet, so an operator can
//! tell afterwards what changed, when and why.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tessera_topo::{Expect, Topo, TopoError};
use tracing::warn;

use crate::listing::rfc3339_utc;
use crate::ops::now_ms;

const EVENTS_PREFIX: &str = "/global/events/";

/// One logged action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Unix milliseconds.
    pub time_ms: u64,
    /// `keyspace/shard`, or empty for an action on no shard.
    pub shard: String,
    /// Vitess-style action name, such as `PlannedReparentShard`.
    pub action: String,
    pub detail: String,
}

impl Event {
    /// `2026-11-22T04:20:00.123Z commerce/0 PlannedReparentShard detail`.
    pub fn line(&self) -> String {
        let secs = rfc3339_utc(self.time_ms / 1000);
        let stamp = format!("{}.{:03}Z", secs.trim_end_matches('Z'), self.time_ms % 1000);
        let shard = if self.shard.is_empty() {
            "-"
        } else {
            &self.shard
        };
        format!("{stamp} {shard} {} {}", self.action, self.detail)
    }
}

/// Distinguishes events of one millisecond; the key must also survive
/// several ctlds writing at once, hence the create-only write below.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Appends an event. A failure to log never fails the action it describes:
/// it is only warned about.
pub async fn record_event(topo: &Topo, shard: &str, action: &str, detail: impl Into<String>) {
    let event = Event {
        time_ms: now_ms(),
        shard: shard.to_string(),
        action: action.to_string(),
        detail: detail.into(),
    };
    tracing::info!(shard, action, detail = %event.detail, "event");
    let value = match serde_json::to_vec(&event) {
        Ok(v) => v,
        Err(e) => {
            warn!(error = %e, "event does not serialise");
            return;
        }
    };
    for _ in 0..10 {
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        let key = format!("{EVENTS_PREFIX}{:015}-{n:06}", event.time_ms);
        match topo.store().put(&key, &value, Expect::Absent).await {
            Ok(_) => return,
            Err(TopoError::AlreadyExists(_)) => continue,
            Err(e) => {
                warn!(error = %e, action, "could not write the event log");
                return;
            }
        }
    }
    warn!(action, "could not find a free event key");
}

/// Every logged event, oldest first.
pub async fn list_events(topo: &Topo) -> anyhow::Result<Vec<Event>> {
    let mut out = Vec::new();
    for (key, v) in topo.store().list(EVENTS_PREFIX).await? {
        match serde_json::from_slice::<Event>(&v.value) {
            Ok(e) => out.push(e),
            Err(e) => warn!(%key, error = %e, "unreadable event record skipped"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_line_has_millisecond_timestamp() {
        let e = Event {
            time_ms: 1_700_000_000_123,
            shard: "commerce/0".into(),
            action: "PlannedReparentShard".into(),
            detail: "x".into(),
        };
        assert_eq!(
            e.line(),
            "2023-11-14T22:13:20.123Z commerce/0 PlannedReparentShard x"
        );
    }
}
