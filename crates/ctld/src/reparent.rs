//! Planned and emergency changes of a shard's primary, and the tablet-type
//! actions around them (externally reparented, change type, drain). Every
//! action holds the shard lock where it touches the primary, bumps the
//! primary term when it changes it, and lands in the event log.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tessera_tablet::api::{AgentClient, Positions};
use tessera_tablet::replication::missing_gtids;
use tessera_topo::{Shard, Tablet, TabletAlias, TabletType, Topo, TopoError};
use tracing::{info, warn};

use crate::error::{bad_request, conflict, not_found, tablet_failed};
use crate::events::record_event;
use crate::gtid::GtidPos;
use crate::ops::{REPARENT_CALL_TIMEOUT, SHARD_LOCK_WAIT, now_ms, repoint};

/// Default bound on waiting for the candidate to apply what the old primary
/// (or its relay log) holds.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Probing a tablet during an emergency must not wait on a dead host long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Setting a presumed-dead primary read-only is best effort (the replicas
/// stopping their IO threads is the real fence): bounded tightly.
const OLD_PRIMARY_FENCE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a reparent did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReparentOutcome {
    pub keyspace: String,
    pub shard: String,
    pub new_primary: TabletAlias,
    pub old_primary: Option<TabletAlias>,
    pub primary_term: u64,
    /// How long the old primary refused writes before the new one took
    /// them (planned reparents only).
    pub write_pause_ms: Option<u64>,
    /// False when the requested change was already in place.
    pub changed: bool,
    /// Tablets that could not be pointed at the new primary, with why.
    pub repoint_failures: Vec<String>,
}

fn parse_pos(text: &str, whose: &TabletAlias) -> anyhow::Result<GtidPos> {
    GtidPos::parse(text).map_err(|e| tablet_failed(format!("tablet {whose}: {e}")))
}

fn client(t: &Tablet, timeout: Duration) -> AgentClient {
    AgentClient::with_timeout(&t.agent_addr, timeout)
}

async fn lock(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
) -> anyhow::Result<Box<dyn tessera_topo::LockGuard>> {
    if topo.get_shard(keyspace, shard).await?.is_none() {
        return Err(not_found(format!(
            "shard {keyspace}/{shard} does not exist"
        )));
    }
    topo.lock_shard(keyspace, shard, SHARD_LOCK_WAIT)
        .await
        .map_err(|e| match e {
            TopoError::LockTimeout(_) => conflict(format!(
                "shard {keyspace}/{shard} is locked by another operation (reparent in progress?); try again later"
            )),
            other => other.into(),
        })
}

async fn unlock(guard: Box<dyn tessera_topo::LockGuard>, keyspace: &str, shard: &str) {
    if let Err(e) = guard.unlock().await {
        warn!(keyspace, shard, error = %e, "could not release the shard lock; it expires with its lease");
    }
}

/// The shard record and its tablets, read under the lock.
async fn shard_state(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
) -> anyhow::Result<(Shard, Vec<Tablet>)> {
    let Some((record, _)) = topo.get_shard(keyspace, shard).await? else {
        return Err(not_found(format!(
            "shard {keyspace}/{shard} does not exist"
        )));
    };
    Ok((record, topo.list_shard_tablets(keyspace, shard).await?))
}

fn find<'a>(
    tablets: &'a [Tablet],
    alias: &TabletAlias,
    keyspace: &str,
    shard: &str,
) -> anyhow::Result<&'a Tablet> {
    tablets.iter().find(|t| &t.alias == alias).ok_or_else(|| {
        bad_request(format!(
            "tablet {alias} is not a tablet of {keyspace}/{shard}"
        ))
    })
}

/// Whether a tablet may ever become primary.
fn promotable(t: &Tablet) -> Result<(), String> {
    if t.needs_reseed {
        return Err(format!(
            "tablet {} has transactions the shard lacks and must be re-seeded",
            t.alias
        ));
    }
    match t.tablet_type {
        TabletType::Replica | TabletType::Primary => Ok(()),
        other => Err(format!(
            "tablet {} is of type {other}; only replicas can be promoted",
            t.alias
        )),
    }
}

/// Writes the new primary into the Shard and Tablet records.
pub(crate) async fn record_promotion(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
    alias: &TabletAlias,
    term: u64,
) -> anyhow::Result<()> {
    let start_ms = now_ms();
    topo.update_shard(keyspace, shard, |s| {
        s.primary_alias = Some(alias.clone());
        s.primary_term = term;
        s.primary_term_start_ms = start_ms;
        s.is_primary_serving = true;
        Ok(())
    })
    .await?;
    topo.update_tablet(alias, |t| {
        t.tablet_type = TabletType::Primary;
        t.primary_term = term;
        Ok(())
    })
    .await?;
    Ok(())
}

async fn repoint_all<'a>(
    topo: &Topo,
    tablets: impl Iterator<Item = &'a Tablet>,
    primary: &Tablet,
) -> Vec<String> {
    join_all(tablets.map(|t| async move {
        repoint(topo, t, primary)
            .await
            .map_err(|e| format!("{} ({}): {e:#}", t.alias, t.agent_addr))
    }))
    .await
    .into_iter()
    .filter_map(Result::err)
    .collect()
}

/// Moves the primary role of `keyspace/shard` to a caught-up replica without
/// losing a write: the candidate first catches up while the old primary
/// still takes writes, then the old primary turns read-only, its lingering
/// sessions are killed, the candidate applies the last few transactions
/// and is promoted in a new term; everybody else, the old primary too,
/// then replicates from it. Until the promotion every step is undone on
/// failure, so the old primary is writable again.
///
/// With `avoid_primary` naming a tablet that is not the primary, or
/// `new_primary` naming the primary, nothing changes.
pub async fn planned_reparent_shard(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
    new_primary: Option<&TabletAlias>,
    avoid_primary: Option<&TabletAlias>,
    wait_timeout: Duration,
) -> anyhow::Result<ReparentOutcome> {
    if new_primary.is_some() && new_primary == avoid_primary {
        return Err(bad_request("the new primary cannot be the tablet to avoid"));
    }
    let guard = lock(topo, keyspace, shard).await?;
    let result = planned_locked(
        topo,
        keyspace,
        shard,
        new_primary,
        avoid_primary,
        wait_timeout,
    )
    .await;
    unlock(guard, keyspace, shard).await;
    let ks_shard = format!("{keyspace}/{shard}");
    match &result {
        Ok(o) if o.changed => {
            record_event(
                topo,
                &ks_shard,
                "PlannedReparentShard",
                format!(
                    "{} -> {} (term {}), write pause {} ms{}",
                    o.old_primary
                        .as_ref()
                        .map_or("none".into(), |a| a.to_string()),
                    o.new_primary,
                    o.primary_term,
                    o.write_pause_ms.unwrap_or(0),
                    failures_note(&o.repoint_failures)
                ),
            )
            .await
        }
        Ok(_) => {}
        Err(e) => {
            record_event(
                topo,
                &ks_shard,
                "PlannedReparentShard",
                format!("failed: {e:#}"),
            )
            .await
        }
    }
    result
}

fn failures_note(failures: &[String]) -> String {
    if failures.is_empty() {
        String::new()
    } else {
        format!("; not repointed: {}", failures.join("; "))
    }
}

async fn planned_locked(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
    new_primary: Option<&TabletAlias>,
    avoid_primary: Option<&TabletAlias>,
    wait_timeout: Duration,
) -> anyhow::Result<ReparentOutcome> {
    let (record, tablets) = shard_state(topo, keyspace, shard).await?;
    let Some(old_alias) = record.primary_alias.clone() else {
        return Err(conflict(format!(
            "shard {keyspace}/{shard} has no primary; use init-shard-primary"
        )));
    };
    let old = find(&tablets, &old_alias, keyspace, shard)?.clone();
    let unchanged = |alias: TabletAlias| ReparentOutcome {
        keyspace: keyspace.to_string(),
        shard: shard.to_string(),
        new_primary: alias,
        old_primary: Some(old_alias.clone()),
        primary_term: record.primary_term,
        write_pause_ms: None,
        changed: false,
        repoint_failures: vec![],
    };
    if new_primary == Some(&old_alias) {
        return Ok(unchanged(old_alias.clone()));
    }
    if new_primary.is_none() && avoid_primary.is_some_and(|a| a != &old_alias) {
        return Ok(unchanged(old_alias.clone()));
    }

    let old_client = client(&old, REPARENT_CALL_TIMEOUT);
    let old_pos = old_client.positions().await.map_err(|e| {
        tablet_failed(format!(
            "old primary {old_alias} is unreachable ({e:#}); a planned reparent needs it, use emergency-reparent-shard"
        ))
    })?;

    let candidate = match new_primary {
        Some(alias) => {
            let t = find(&tablets, alias, keyspace, shard)?;
            promotable(t).map_err(conflict)?;
            t.clone()
        }
        None => pick_planned_candidate(&tablets, &old_alias, avoid_primary).await?,
    };
    let cand_client = client(&candidate, wait_timeout + REPARENT_CALL_TIMEOUT);

    // Catch up while the old primary still takes writes, so the pause
    // below only covers the last few transactions.
    let pre = cand_client
        .wait_for_position(&old_pos.gtid_binlog_pos, wait_timeout)
        .await
        .map_err(|e| tablet_failed(format!("candidate {}: {e:#}", candidate.alias)))?;
    if !pre.reached {
        return Err(tablet_failed(format!(
            "candidate {} did not catch up with {} ({}) within {:?}; nothing was changed",
            candidate.alias, old_alias, old_pos.gtid_binlog_pos, wait_timeout
        )));
    }

    let pause_start = Instant::now();
    let undo = async || {
        if let Err(e) = old_client.set_read_only(false).await {
            warn!(error = %format!("{e:#}"), "could not make the old primary writable again");
        }
    };
    // Where the write pause goes, step by step, for the log.
    let mut steps = PauseSteps::new(pause_start);
    if let Err(e) = old_client.set_read_only(true).await {
        undo().await;
        return Err(tablet_failed(format!(
            "could not make old primary {old_alias} read-only: {e:#}"
        )));
    }
    steps.done("read_only");
    if let Err(e) = old_client.kill_app_connections().await {
        warn!(error = %format!("{e:#}"), "could not kill application connections on the old primary");
    }
    steps.done("kill_sessions");
    let final_pos = match old_client.positions().await {
        Ok(p) => p,
        Err(e) => {
            undo().await;
            return Err(tablet_failed(format!(
                "could not read the final position of {old_alias}: {e:#}"
            )));
        }
    };
    steps.done("final_position");
    let caught_up = cand_client
        .wait_for_position(&final_pos.gtid_binlog_pos, wait_timeout)
        .await;
    steps.done("candidate_caught_up");
    match caught_up {
        Ok(w) if w.reached => {}
        Ok(_) => {
            undo().await;
            return Err(tablet_failed(format!(
                "candidate {} did not apply {} within {:?}; {old_alias} is writable again",
                candidate.alias, final_pos.gtid_binlog_pos, wait_timeout
            )));
        }
        Err(e) => {
            undo().await;
            return Err(tablet_failed(format!(
                "waiting on candidate {}: {e:#}; {old_alias} is writable again",
                candidate.alias
            )));
        }
    }

    let term = record.primary_term + 1;
    if let Err(e) = cand_client.promote(term).await {
        undo().await;
        return Err(tablet_failed(format!(
            "candidate {} could not be promoted: {e:#}; {old_alias} is writable again",
            candidate.alias
        )));
    }
    let write_pause_ms = pause_start.elapsed().as_millis() as u64;
    steps.done("promoted");
    record_promotion(topo, keyspace, shard, &candidate.alias, term).await?;
    steps.done("recorded");
    info!(keyspace, shard, new_primary = %candidate.alias, term, write_pause_ms,
        steps_ms = %steps.summary(), "planned reparent done");
    let failures = repoint_all(
        topo,
        tablets.iter().filter(|t| t.alias != candidate.alias),
        &candidate,
    )
    .await;
    Ok(ReparentOutcome {
        keyspace: keyspace.to_string(),
        shard: shard.to_string(),
        new_primary: candidate.alias.clone(),
        old_primary: Some(old_alias),
        primary_term: term,
        write_pause_ms: Some(write_pause_ms),
        changed: true,
        repoint_failures: failures,
    })
}

/// Milliseconds each step of a planned reparent's write pause took.
struct PauseSteps {
    last: Instant,
    steps: Vec<(&'static str, u128)>,
}

impl PauseSteps {
    fn new(start: Instant) -> Self {
        PauseSteps {
            last: start,
            steps: Vec::new(),
        }
    }

    fn done(&mut self, step: &'static str) {
        let now = Instant::now();
        self.steps.push((step, (now - self.last).as_millis()));
        self.last = now;
    }

    fn summary(&self) -> String {
        self.steps
            .iter()
            .map(|(s, ms)| format!("{s}={ms}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The most caught-up healthy replica that may be promoted.
async fn pick_planned_candidate(
    tablets: &[Tablet],
    old: &TabletAlias,
    avoid: Option<&TabletAlias>,
) -> anyhow::Result<Tablet> {
    let eligible: Vec<&Tablet> = tablets
        .iter()
        .filter(|t| &t.alias != old && Some(&t.alias) != avoid)
        .filter(|t| t.tablet_type == TabletType::Replica && !t.needs_reseed)
        .collect();
    let probes = join_all(
        eligible
            .iter()
            .map(|t| async move { client(t, PROBE_TIMEOUT).positions().await }),
    )
    .await;
    let mut best: Option<(u64, &Tablet)> = None;
    let mut rejected = Vec::new();
    for (t, probe) in eligible.iter().zip(probes) {
        match probe {
            Ok(p) if p.sql_running => {
                let applied = GtidPos::parse(&p.gtid_current_pos)
                    .unwrap_or_default()
                    .merge(&GtidPos::parse(&p.gtid_slave_pos).unwrap_or_default());
                let total = applied.seq_total();
                if best.is_none_or(|(b, _)| total > b) {
                    best = Some((total, t));
                }
            }
            Ok(_) => rejected.push(format!("{}: not replicating", t.alias)),
            Err(e) => rejected.push(format!("{}: {e:#}", t.alias)),
        }
    }
    best.map(|(_, t)| t.clone()).ok_or_else(|| {
        conflict(format!(
            "no healthy replica can be promoted{}",
            if rejected.is_empty() {
                String::new()
            } else {
                format!(" ({})", rejected.join("; "))
            }
        ))
    })
}

/// The primary a caller found dead, with its term. An emergency reparent
/// given one runs only while the shard still names exactly that primary in
/// exactly that term: a second orc (or an operator) that detected the same
/// failure and queued behind the first one's shard lock then finds a newer
/// primary and does nothing, instead of replacing the freshly elected one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExpectedPrimary {
    pub alias: TabletAlias,
    pub term: u64,
}

/// Replaces a dead primary. Every reachable tablet stops receiving first,
/// so the old primary can collect no more acknowledgements; the replica
/// that received the most (a superset of every other's) is chosen, or the
/// requested one if it holds that superset; a candidate holding its own
/// transactions nobody else has is refused. It applies its relay log, is
/// promoted in a new term, and the others replicate from it once it is
/// known to still have the binlogs they need. An unreachable old primary's
/// record is turned into a replica's: when it returns it finds the new
/// primary in the Shard record and starts fenced (see the tablet agent).
///
/// With `expected` set, the check of the shard's primary and term is made
/// under the shard lock; when they differ nothing is done, the outcome says
/// `changed: false` and names the current primary, and the event log says
/// why.
pub async fn emergency_reparent_shard(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
    new_primary: Option<&TabletAlias>,
    expected: Option<&ExpectedPrimary>,
    wait_timeout: Duration,
) -> anyhow::Result<ReparentOutcome> {
    let guard = lock(topo, keyspace, shard).await?;
    let result = match expected {
        Some(expected) => match superseded_expectation(topo, keyspace, shard, expected).await {
            Ok(Some(noop)) => Ok(noop),
            Ok(None) => emergency_locked(topo, keyspace, shard, new_primary, wait_timeout).await,
            Err(e) => Err(e),
        },
        None => emergency_locked(topo, keyspace, shard, new_primary, wait_timeout).await,
    };
    unlock(guard, keyspace, shard).await;
    let ks_shard = format!("{keyspace}/{shard}");
    let detail = match &result {
        Ok(o) if !o.changed => format!(
            "skipped: expected to replace {} (term {}), but the shard's primary is already {} (term {}); nothing done",
            expected.map_or("?".into(), |e| e.alias.to_string()),
            expected.map_or(0, |e| e.term),
            o.new_primary,
            o.primary_term
        ),
        Ok(o) => format!(
            "{} -> {} (term {}){}",
            o.old_primary
                .as_ref()
                .map_or("none".into(), |a| a.to_string()),
            o.new_primary,
            o.primary_term,
            failures_note(&o.repoint_failures)
        ),
        Err(e) => format!("failed: {e:#}"),
    };
    record_event(topo, &ks_shard, "EmergencyReparentShard", detail).await;
    result
}

/// Under the shard lock: None when the shard still has the expected primary
/// in the expected term, else the no-op outcome naming the current one.
async fn superseded_expectation(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
    expected: &ExpectedPrimary,
) -> anyhow::Result<Option<ReparentOutcome>> {
    let (record, _) = shard_state(topo, keyspace, shard).await?;
    if record.primary_alias.as_ref() == Some(&expected.alias)
        && record.primary_term == expected.term
    {
        return Ok(None);
    }
    let Some(current) = record.primary_alias else {
        return Err(conflict(format!(
            "shard {keyspace}/{shard} no longer has a primary (expected {} in term {}); nothing done",
            expected.alias, expected.term
        )));
    };
    Ok(Some(ReparentOutcome {
        keyspace: keyspace.to_string(),
        shard: shard.to_string(),
        new_primary: current,
        old_primary: Some(expected.alias.clone()),
        primary_term: record.primary_term,
        write_pause_ms: None,
        changed: false,
        repoint_failures: vec![],
    }))
}

/// GTIDs `p` logged under its own server id that no other reachable tablet
/// logged: they did not come from the shard's primaries. Empty when there
/// is nobody to compare with.
fn errant_gtids(p: &Probed, all: &[Probed]) -> Vec<String> {
    let others: Vec<&Probed> = all
        .iter()
        .filter(|o| o.tablet.alias != p.tablet.alias)
        .collect();
    if others.is_empty() {
        return Vec::new();
    }
    let own_server = p.positions.server_id.to_string();
    p.positions
        .gtid_binlog_pos
        .split(',')
        .map(str::trim)
        .filter(|g| g.split('-').nth(1) == Some(own_server.as_str()))
        .filter(|g| {
            others.iter().all(|o| {
                missing_gtids(g, &o.positions.gtid_binlog_state)
                    .map(|m| !m.is_empty())
                    .unwrap_or(true)
            })
        })
        .map(str::to_string)
        .collect()
}

struct Probed {
    tablet: Tablet,
    positions: Positions,
    received: GtidPos,
}

async fn emergency_locked(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
    new_primary: Option<&TabletAlias>,
    wait_timeout: Duration,
) -> anyhow::Result<ReparentOutcome> {
    let (record, tablets) = shard_state(topo, keyspace, shard).await?;
    let old_alias = record.primary_alias.clone();
    if let Some(alias) = new_primary {
        let t = find(&tablets, alias, keyspace, shard)?;
        if Some(alias) == old_alias.as_ref() {
            return Err(bad_request(format!(
                "tablet {alias} is the current primary; an emergency reparent replaces it"
            )));
        }
        promotable(t).map_err(conflict)?;
    }
    let others: Vec<&Tablet> = tablets
        .iter()
        .filter(|t| Some(&t.alias) != old_alias.as_ref())
        .collect();

    // Fence first: a reachable old primary goes read-only (best effort,
    // it is presumed dead), every replica stops receiving.
    let old = old_alias
        .as_ref()
        .and_then(|a| tablets.iter().find(|t| &t.alias == a));
    // The presumed-dead primary is set read-only on the side, briefly, and
    // nothing waits for it until the end: a host cut off the network does
    // not refuse connections, it swallows them, and every second spent on
    // it would be a second of unavailability. Its replicas no longer
    // receiving is what fences it.
    let fence_old = old.cloned().map(|o| {
        tokio::spawn(async move {
            let old_client = client(&o, OLD_PRIMARY_FENCE_TIMEOUT);
            // Sessions first: one waiting on a semi-sync acknowledgement can
            // hold up read_only, and repointing the old primary later turns
            // semi-sync off, which would release it as a success.
            if old_client.kill_app_connections().await.is_err() {
                return false;
            }
            let fenced = old_client.set_read_only(true).await.is_ok();
            if fenced {
                let _ = old_client.kill_app_connections().await;
            }
            fenced
        })
    });
    let started = Instant::now();
    let stopped = join_all(
        others
            .iter()
            .map(|t| async move { client(t, PROBE_TIMEOUT).stop_io_thread().await }),
    )
    .await;
    info!(
        keyspace,
        shard,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "emergency reparent: replicas stopped receiving"
    );
    let mut probed = Vec::new();
    let mut unreachable = Vec::new();
    for (t, answer) in others.iter().zip(stopped) {
        match answer {
            Ok(p) => {
                let received = parse_pos(&p.gtid_io_pos, &t.alias)?
                    .merge(&parse_pos(&p.gtid_current_pos, &t.alias)?);
                probed.push(Probed {
                    tablet: (*t).clone(),
                    positions: p,
                    received,
                });
            }
            Err(e) => unreachable.push(format!("{}: {e:#}", t.alias)),
        }
    }
    if probed.is_empty() {
        return Err(tablet_failed(format!(
            "no replica of {keyspace}/{shard} is reachable: {}",
            unreachable.join("; ")
        )));
    }

    let errant: Vec<Vec<String>> = probed.iter().map(|p| errant_gtids(p, &probed)).collect();
    let clean = |i: usize| errant[i].is_empty();
    let holds_all = |c: &Probed| {
        probed
            .iter()
            .enumerate()
            .filter(|(i, _)| clean(*i))
            .all(|(_, o)| c.received.contains(&o.received))
    };
    let chosen_idx = match new_primary {
        Some(alias) => {
            let Some(i) = probed.iter().position(|p| &p.tablet.alias == alias) else {
                return Err(tablet_failed(format!(
                    "requested tablet {alias} is unreachable"
                )));
            };
            if !clean(i) {
                return Err(conflict(format!(
                    "requested tablet {alias} has errant GTIDs no other tablet has: {}",
                    errant[i].join(",")
                )));
            }
            if !holds_all(&probed[i]) {
                return Err(conflict(format!(
                    "requested tablet {alias} lacks transactions other replicas received; choose another or let ctld choose"
                )));
            }
            i
        }
        None => (0..probed.len())
            .filter(|&i| clean(i) && promotable(&probed[i].tablet).is_ok() && holds_all(&probed[i]))
            .max_by_key(|&i| probed[i].received.seq_total())
            .ok_or_else(|| {
                let errant_note: Vec<String> = probed
                    .iter()
                    .zip(&errant)
                    .filter(|(_, e)| !e.is_empty())
                    .map(|(p, e)| format!("{} has errant GTIDs {}", p.tablet.alias, e.join(",")))
                    .collect();
                conflict(format!(
                    "no promotable replica of {keyspace}/{shard} received everything the others did{}",
                    if errant_note.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", errant_note.join("; "))
                    }
                ))
            })?,
    };
    let chosen = &probed[chosen_idx];
    let cand = &chosen.tablet;

    let cand_client = client(cand, wait_timeout + REPARENT_CALL_TIMEOUT);
    if !chosen.positions.gtid_io_pos.is_empty() {
        let w = cand_client
            .wait_for_position(&chosen.positions.gtid_io_pos, wait_timeout)
            .await
            .map_err(|e| tablet_failed(format!("candidate {}: {e:#}", cand.alias)))?;
        if !w.reached {
            return Err(tablet_failed(format!(
                "candidate {} did not apply its relay log ({}) within {:?}",
                cand.alias, chosen.positions.gtid_io_pos, wait_timeout
            )));
        }
    }

    info!(keyspace, shard, candidate = %cand.alias, elapsed_ms = started.elapsed().as_millis() as u64,
        "emergency reparent: candidate applied its relay log");
    let term = record.primary_term + 1;
    let promoted = cand_client.promote(term).await.map_err(|e| {
        tablet_failed(format!(
            "candidate {} could not be promoted: {e:#}",
            cand.alias
        ))
    })?;
    record_promotion(topo, keyspace, shard, &cand.alias, term).await?;
    info!(keyspace, shard, new_primary = %cand.alias, term, elapsed_ms = started.elapsed().as_millis() as u64,
        "emergency reparent: promoted");
    let _ = promoted;

    // Binlogs older than the new primary's oldest file are gone: a replica
    // positioned before it cannot be served and must be re-seeded.
    let new_pos = cand_client
        .positions()
        .await
        .unwrap_or_else(|_| chosen.positions.clone());
    let binlog_start = GtidPos::parse(&new_pos.gtid_binlog_start).unwrap_or_default();
    let mut failures = Vec::new();
    let mut to_repoint: Vec<&Tablet> = Vec::new();
    for (p, errant) in probed.iter().zip(&errant) {
        if p.tablet.alias == cand.alias {
            continue;
        }
        if !errant.is_empty() {
            // Replicating would fail or diverge: keep it out until re-seeded.
            topo.update_tablet(&p.tablet.alias, |t| {
                t.needs_reseed = true;
                Ok(())
            })
            .await?;
            failures.push(format!(
                "{}: errant GTIDs {}; marked needs_reseed",
                p.tablet.alias,
                errant.join(",")
            ));
            continue;
        }
        let applied = parse_pos(&p.positions.gtid_current_pos, &p.tablet.alias)?;
        if !applied.contains(&binlog_start) {
            failures.push(format!(
                "{}: its position {} predates the new primary's oldest binlog ({}); re-seed it",
                p.tablet.alias, p.positions.gtid_current_pos, new_pos.gtid_binlog_start
            ));
            continue;
        }
        to_repoint.push(&p.tablet);
    }
    let old_reachable = match fence_old {
        Some(task) => task.await.unwrap_or(false),
        None => false,
    };
    if let (Some(o), true) = (old, old_reachable) {
        to_repoint.push(o);
    }
    failures.extend(repoint_all(topo, to_repoint.into_iter(), cand).await);
    for u in &unreachable {
        failures.push(u.clone());
    }
    if let (Some(o), false) = (old, old_reachable) {
        // Its agent reads this on return and joins as a replica, fenced.
        topo.update_tablet(&o.alias, |t| {
            t.tablet_type = TabletType::Replica;
            Ok(())
        })
        .await?;
    }
    Ok(ReparentOutcome {
        keyspace: keyspace.to_string(),
        shard: shard.to_string(),
        new_primary: cand.alias.clone(),
        old_primary: old_alias,
        primary_term: term,
        write_pause_ms: None,
        changed: true,
        repoint_failures: failures,
    })
}

/// Records that `alias` became its shard's primary by other means (an
/// operator promoted its mysqld by hand): new term, the others repointed.
pub async fn tablet_externally_reparented(
    topo: &Topo,
    alias: &TabletAlias,
) -> anyhow::Result<ReparentOutcome> {
    let Some((tablet, _)) = topo.get_tablet(alias).await? else {
        return Err(not_found(format!("tablet {alias} does not exist")));
    };
    let (keyspace, shard) = (tablet.keyspace.clone(), tablet.shard.clone());
    let guard = lock(topo, &keyspace, &shard).await?;
    let result = async {
        let (record, tablets) = shard_state(topo, &keyspace, &shard).await?;
        let tablet = find(&tablets, alias, &keyspace, &shard)?.clone();
        let old = record.primary_alias.clone();
        if old.as_ref() == Some(alias) {
            return Ok(ReparentOutcome {
                keyspace: keyspace.clone(),
                shard: shard.clone(),
                new_primary: alias.clone(),
                old_primary: old,
                primary_term: record.primary_term,
                write_pause_ms: None,
                changed: false,
                repoint_failures: vec![],
            });
        }
        promotable(&tablet).map_err(conflict)?;
        let term = record.primary_term + 1;
        // The agent must hold the primary role too, or it would put its
        // mysqld back to replicating after a restart.
        client(&tablet, REPARENT_CALL_TIMEOUT)
            .promote(term)
            .await
            .map_err(|e| tablet_failed(format!("tablet {alias}: {e:#}")))?;
        record_promotion(topo, &keyspace, &shard, alias, term).await?;
        let failures =
            repoint_all(topo, tablets.iter().filter(|t| &t.alias != alias), &tablet).await;
        Ok(ReparentOutcome {
            keyspace: keyspace.clone(),
            shard: shard.clone(),
            new_primary: alias.clone(),
            old_primary: old,
            primary_term: term,
            write_pause_ms: None,
            changed: true,
            repoint_failures: failures,
        })
    }
    .await;
    unlock(guard, &keyspace, &shard).await;
    let detail = match &result {
        Ok(o) => format!(
            "{alias} is primary (term {}){}",
            o.primary_term,
            failures_note(&o.repoint_failures)
        ),
        Err(e) => format!("{alias}: failed: {e:#}"),
    };
    record_event(
        topo,
        &format!("{keyspace}/{shard}"),
        "TabletExternallyReparented",
        detail,
    )
    .await;
    result
}

/// Changes a non-primary tablet between replica, rdonly, spare and drained.
pub async fn change_tablet_type(
    topo: &Topo,
    alias: &TabletAlias,
    tablet_type: TabletType,
) -> anyhow::Result<Tablet> {
    let Some((tablet, _)) = topo.get_tablet(alias).await? else {
        return Err(not_found(format!("tablet {alias} does not exist")));
    };
    if tablet_type == TabletType::Primary {
        return Err(bad_request(
            "a tablet becomes primary by a reparent, not by a type change",
        ));
    }
    if tablet.tablet_type == TabletType::Primary {
        return Err(conflict(format!(
            "tablet {alias} is primary; reparent away from it first (planned-reparent-shard --avoid-primary {alias})"
        )));
    }
    let from = tablet.tablet_type;
    client(&tablet, REPARENT_CALL_TIMEOUT)
        .change_type(tablet_type)
        .await
        .map_err(|e| tablet_failed(format!("tablet {alias}: {e:#}")))?;
    let updated = topo
        .get_tablet(alias)
        .await?
        .map(|(t, _)| t)
        .unwrap_or(tablet);
    record_event(
        topo,
        &format!("{}/{}", updated.keyspace, updated.shard),
        "ChangeTabletType",
        format!("{alias}: {from} -> {tablet_type}"),
    )
    .await;
    Ok(updated)
}

/// Takes a tablet out of serving: a primary hands its role to a replica
/// first, then the tablet becomes `drained`.
pub async fn drain(
    topo: &Topo,
    alias: &TabletAlias,
    wait_timeout: Duration,
) -> anyhow::Result<Tablet> {
    let Some((tablet, _)) = topo.get_tablet(alias).await? else {
        return Err(not_found(format!("tablet {alias} does not exist")));
    };
    if tablet.tablet_type == TabletType::Primary {
        planned_reparent_shard(
            topo,
            &tablet.keyspace,
            &tablet.shard,
            None,
            Some(alias),
            wait_timeout,
        )
        .await?;
    }
    change_tablet_type(topo, alias, TabletType::Drained).await
}

/// Puts a drained tablet back into serving as a replica.
pub async fn undrain(topo: &Topo, alias: &TabletAlias) -> anyhow::Result<Tablet> {
    let Some((tablet, _)) = topo.get_tablet(alias).await? else {
        return Err(not_found(format!("tablet {alias} does not exist")));
    };
    if tablet.tablet_type != TabletType::Drained {
        return Err(conflict(format!(
            "tablet {alias} is {}, not drained",
            tablet.tablet_type
        )));
    }
    change_tablet_type(topo, alias, TabletType::Replica).await
}
