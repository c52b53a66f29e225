//! orc, the failure detector: a background loop that looks at every shard
//! each interval and repairs what it finds — a dead primary (emergency
//! reparent), replicas whose replication is broken or points elsewhere
//! (repointed), a primary left read-only (made writable) — logging every
//! detection and action to the event log.
//!
//! A primary is declared dead only when orc reaches neither its agent nor
//! its mysqld, and the replicas' agents, asked to dial the primary's mysqld
//! themselves, cannot reach it either — on consecutive rounds. Asking the
//! agents instead of waiting for the replicas' IO threads to time out
//! (`slave_net_timeout`) is what lets a silent partition be detected in
//! about a second; asking them at all is what keeps a primary that only
//! orc has lost from being failed over. Replicas that lost the primary on
//! the first check already stop receiving from it then (a replica that
//! cannot reach its source acknowledges nothing anyway), so the emergency
//! reparent that follows the last check finds them stopped; if the primary
//! returns instead, they are repointed at it on the next round.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::join_all;
use tessera_tablet::api::{AgentClient, MysqldProbe, ReplicateFrom, TabletHealth};
use tessera_tablet::health::mysqld_greets;
use tessera_topo::{Shard, Tablet, TabletAlias, TabletType, Topo, TopoError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::events::record_event;
use crate::reparent::{DEFAULT_WAIT_TIMEOUT, ExpectedPrimary, emergency_reparent_shard};

/// How long orc waits for the shard lock before leaving a shard alone for
/// this round: a holder is a reparent, which must not be fought.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// Beyond the probe's own timeout, what an agent gets to answer a
/// probe-mysqld request over HTTP.
const AGENT_PROBE_SLACK: Duration = Duration::from_millis(700);
/// Repointing a replica runs a few statements on its mysqld.
const REPAIR_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A replica problem must be seen on this many consecutive rounds before
/// orc acts, so a replica caught between two steps of someone else's
/// change is left alone.
const REPLICA_CHECKS: u32 = 2;
/// Longest pause between two repair attempts on a replica that stays broken.
const MAX_REPAIR_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct OrcConfig {
    /// Time between two looks at every shard.
    pub interval: Duration,
    /// Consecutive rounds a primary must look dead before orc replaces it.
    pub primary_failure_checks: u32,
    /// Watch only these keyspaces; None watches all.
    pub enabled_keyspaces: Option<Vec<String>>,
}

impl Default for OrcConfig {
    fn default() -> Self {
        OrcConfig {
            interval: Duration::from_secs(1),
            primary_failure_checks: 3,
            enabled_keyspaces: None,
        }
    }
}

impl OrcConfig {
    /// A health probe gets about two intervals, within 1..5 s: long enough
    /// for a busy machine, short enough that a dead host does not stall a
    /// round.
    fn probe_timeout(&self) -> Duration {
        (self.interval * 2).clamp(Duration::from_secs(1), Duration::from_secs(5))
    }

    /// How long the primary's mysqld (dialled by orc, and by each replica's
    /// agent) gets to greet before it counts as unreachable: a fraction of
    /// the interval, within 250 ms..1 s. A mysqld greets in milliseconds
    /// even on a busy machine; a host cut off the network never does, and
    /// this bound is most of what detecting it costs. A spurious miss does
    /// no harm by itself: failing over also needs the replicas to miss, on
    /// consecutive rounds.
    fn primary_probe_timeout(&self) -> Duration {
        (self.interval.mul_f64(0.6)).clamp(Duration::from_millis(250), Duration::from_secs(1))
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.interval.is_zero() {
            anyhow::bail!("orc interval must be positive");
        }
        if self.primary_failure_checks == 0 {
            anyhow::bail!("orc primary_failure_checks must be at least 1");
        }
        Ok(())
    }
}

/// A running orc loop.
pub struct Orc {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Orc {
    /// Starts the loop. A config with a zero interval or zero checks is
    /// corrected to the defaults (with a warning) rather than spinning.
    pub fn start(cfg: OrcConfig, topo: Topo) -> Orc {
        let cfg = match cfg.validate() {
            Ok(()) => cfg,
            Err(e) => {
                warn!(error = %e, "bad orc configuration; using the defaults for the bad values");
                let d = OrcConfig::default();
                OrcConfig {
                    interval: if cfg.interval.is_zero() {
                        d.interval
                    } else {
                        cfg.interval
                    },
                    primary_failure_checks: cfg.primary_failure_checks.max(1),
                    enabled_keyspaces: cfg.enabled_keyspaces,
                }
            }
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_loop(cfg, topo, stopped));
        Orc { stop, task }
    }

    /// Stops the loop; a round in progress (possibly a reparent) finishes
    /// first, so no shard is left half repaired.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            warn!(error = %e, "orc task ended abnormally");
        }
    }
}

/// Runs orc alone (`tessera orc`) until ctrl-c or SIGTERM.
pub async fn run_orc_process(topo: Topo, cfg: OrcConfig) -> anyhow::Result<()> {
    cfg.validate()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let orc = Orc::start(cfg, topo);
    info!("orc running");
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for ctrl-c")?,
        _ = term.recv() => {}
    }
    info!("orc shutting down");
    orc.shutdown().await;
    Ok(())
}

/// What orc remembers about one shard between rounds.
#[derive(Debug, Default)]
struct ShardMemory {
    /// The primary (and its term) the failure count is about.
    suspect: Option<(TabletAlias, u64)>,
    /// Consecutive rounds the primary looked dead.
    failed_checks: u32,
    /// Emergency reparents of this primary that failed in a row, and when
    /// the next may run: a shard nobody can be promoted in is retried ever
    /// more rarely instead of every few rounds.
    failed_recoveries: u32,
    next_recovery: Option<Instant>,
    replicas: HashMap<TabletAlias, ReplicaMemory>,
    /// Replicas told to stop receiving on the first failed check.
    prefenced: Vec<TabletAlias>,
}

#[derive(Debug, Default)]
struct ReplicaMemory {
    /// Consecutive rounds the replica looked broken.
    bad_rounds: u32,
    attempts: u32,
    next_attempt: Option<Instant>,
}

async fn run_loop(cfg: OrcConfig, topo: Topo, mut stopped: watch::Receiver<bool>) {
    let mut memory: HashMap<String, ShardMemory> = HashMap::new();
    loop {
        if *stopped.borrow() {
            return;
        }
        let started = Instant::now();
        match watched_shards(&topo, &cfg).await {
            Ok(shards) => {
                let mut rounds = Vec::new();
                for shard in shards {
                    let key = format!("{}/{}", shard.keyspace, shard.name);
                    let mem = memory.remove(&key).unwrap_or_default();
                    let (topo, cfg) = (&topo, &cfg);
                    rounds.push(async move {
                        let mem = check_shard(topo, cfg, &shard, mem).await;
                        (key, mem)
                    });
                }
                // Shards no longer listed are forgotten with the old map.
                memory = join_all(rounds).await.into_iter().collect();
            }
            Err(e) => warn!(error = %e, "orc cannot list the shards"),
        }
        // A suspected primary is looked at again sooner: rounds then start
        // a primary probe timeout apart, not an interval, so that a round
        // which timed out on a silent host is followed by the next check at
        // once, while checks of a refusing host stay spaced enough to rule
        // out a blip.
        let confirming = memory
            .values()
            .any(|m| m.failed_checks > 0 && m.next_recovery.is_none());
        let period = if confirming {
            cfg.primary_probe_timeout().min(cfg.interval)
        } else {
            cfg.interval
        };
        let pause = period.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => return,
        }
    }
}

async fn watched_shards(topo: &Topo, cfg: &OrcConfig) -> anyhow::Result<Vec<Shard>> {
    let mut out = Vec::new();
    for ks in topo.list_keyspaces().await? {
        if let Some(enabled) = &cfg.enabled_keyspaces
            && !enabled.contains(&ks.name)
        {
            continue;
        }
        out.extend(topo.list_shards(&ks.name).await?);
    }
    Ok(out)
}

/// How one replica relates to the shard's primary, as its own health says.
#[derive(Debug, Clone, PartialEq)]
enum ReplicaView {
    /// Replicating from the primary, IO thread connected.
    SeesPrimary,
    /// Configured for the primary but its IO thread is not connected.
    LostPrimary(String),
    /// Pointed elsewhere, not replicating, or no answer: no opinion.
    NoOpinion,
}

/// A replica's opinion of the primary, from its agent's own attempt to
/// reach the primary's mysqld when it made one, else (an agent that could
/// not be asked, or predates the probe) from its replication threads.
fn replica_opinion(
    probe: Option<&anyhow::Result<MysqldProbe>>,
    health: &anyhow::Result<TabletHealth>,
    primary: &Tablet,
) -> ReplicaView {
    match (probe, health) {
        (Some(Ok(p)), _) if p.reachable => ReplicaView::SeesPrimary,
        (Some(Ok(p)), _) => ReplicaView::LostPrimary(format!(
            "its agent cannot reach {}: {}",
            primary.mysql_addr(),
            p.error.as_deref().unwrap_or("no reason given")
        )),
        (_, Ok(h)) => replica_view(h, primary),
        (_, Err(_)) => ReplicaView::NoOpinion,
    }
}

/// Asks every replica's agent to dial the primary's mysqld.
async fn replicas_probe_primary(
    replicas: &[&Tablet],
    primary: &Tablet,
    timeout: Duration,
) -> Vec<anyhow::Result<MysqldProbe>> {
    join_all(replicas.iter().map(|t| async move {
        AgentClient::with_timeout(&t.agent_addr, timeout + AGENT_PROBE_SLACK)
            .probe_mysqld(&primary.mysql_host, primary.mysql_port, timeout)
            .await
    }))
    .await
}

fn replica_view(health: &TabletHealth, primary: &Tablet) -> ReplicaView {
    let Some(r) = &health.replication else {
        return ReplicaView::NoOpinion;
    };
    if r.source_host != primary.mysql_host || r.source_port != primary.mysql_port {
        return ReplicaView::NoOpinion;
    }
    if r.io_running {
        ReplicaView::SeesPrimary
    } else if r.last_io_error.is_empty() {
        ReplicaView::LostPrimary("IO thread not running".into())
    } else {
        ReplicaView::LostPrimary(r.last_io_error.clone())
    }
}

/// Whether the replicas' views add up to a dead primary: somebody lost it
/// and no majority (of all replicas, reachable or not) still sees it — a
/// primary that a majority still sees is alive and orc is the one cut off.
fn replicas_agree_primary_dead(views: &[ReplicaView]) -> bool {
    let seeing = views
        .iter()
        .filter(|v| **v == ReplicaView::SeesPrimary)
        .count();
    let lost = views
        .iter()
        .filter(|v| matches!(v, ReplicaView::LostPrimary(_)))
        .count();
    lost > 0 && lost > seeing && seeing * 2 < views.len()
}

/// What is wrong with a replica's replication, if anything.
fn replica_problem(health: &TabletHealth, primary: &Tablet) -> Option<String> {
    let Some(r) = &health.replication else {
        return Some("not replicating from anyone".into());
    };
    if r.source_host != primary.mysql_host || r.source_port != primary.mysql_port {
        return Some(format!(
            "replicating from {}:{}, not from the primary {} at {}",
            r.source_host,
            r.source_port,
            primary.alias,
            primary.mysql_addr()
        ));
    }
    let mut problems = Vec::new();
    if !r.io_running {
        problems.push(if r.last_io_error.is_empty() {
            "IO thread stopped".to_string()
        } else {
            format!("IO thread error: {}", r.last_io_error)
        });
    }
    if !r.sql_running {
        problems.push(if r.last_sql_error.is_empty() {
            "SQL thread stopped".to_string()
        } else {
            format!("SQL thread error: {}", r.last_sql_error)
        });
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

async fn probe(t: &Tablet, timeout: Duration) -> anyhow::Result<TabletHealth> {
    AgentClient::with_timeout(&t.agent_addr, timeout)
        .health()
        .await
}

async fn check_shard(
    topo: &Topo,
    cfg: &OrcConfig,
    shard: &Shard,
    mut mem: ShardMemory,
) -> ShardMemory {
    let ks_shard = format!("{}/{}", shard.keyspace, shard.name);
    let Some(primary_alias) = shard.primary_alias.clone() else {
        // Not initialised yet: nothing orc may decide.
        return ShardMemory::default();
    };
    let tablets = match topo.list_shard_tablets(&shard.keyspace, &shard.name).await {
        Ok(t) => t,
        Err(e) => {
            warn!(shard = %ks_shard, error = %e, "orc cannot list the shard's tablets");
            return mem;
        }
    };
    let Some(primary) = tablets.iter().find(|t| t.alias == primary_alias).cloned() else {
        warn!(shard = %ks_shard, primary = %primary_alias, "the shard's primary has no tablet record");
        return mem;
    };
    let replicas: Vec<&Tablet> = tablets
        .iter()
        .filter(|t| t.alias != primary.alias)
        .collect();
    let timeout = cfg.probe_timeout();
    let short = cfg.primary_probe_timeout();

    // A new primary (after anyone's reparent) starts a new count.
    let current = (primary.alias.clone(), shard.primary_term);
    if mem.suspect.as_ref() != Some(&current) {
        mem.suspect = Some(current);
        mem.failed_checks = 0;
        mem.failed_recoveries = 0;
        mem.next_recovery = None;
    }

    // The primary's agent gets the full probe timeout (its health query
    // may be slow on a busy machine) unless its mysqld fails to greet
    // within the short one: then the host may be gone, and waiting longer
    // for the agent would only delay the verdict. Everything runs side by
    // side, the replicas' own attempts to reach the primary too — a host
    // cut off the network makes each probe wait for its timeout, and in a
    // row they would add up. (The replicas' agents log in cleanly, so
    // asking them every round leaves no trace in the primary's log.)
    let started = Instant::now();
    let agent_addr = primary.agent_addr.clone();
    let mut agent_probe = tokio::spawn(async move {
        AgentClient::with_timeout(&agent_addr, timeout)
            .health()
            .await
    });
    let (replica_health, primary_mysqld, opinions) = tokio::join!(
        join_all(replicas.iter().map(|t| probe(t, timeout))),
        mysqld_greets(&primary.mysql_host, primary.mysql_port, short),
        replicas_probe_primary(&replicas, &primary, short)
    );
    let primary_health = if primary_mysqld.is_ok() {
        (&mut agent_probe).await
    } else {
        let bound = started + short.max(Duration::from_millis(1));
        match tokio::time::timeout_at(bound.into(), &mut agent_probe).await {
            Ok(answer) => answer,
            Err(_) => {
                agent_probe.abort();
                Ok(Err(anyhow::anyhow!(
                    "no answer within {} ms",
                    short.as_millis()
                )))
            }
        }
    };
    let primary_health = primary_health.unwrap_or_else(|e| Err(anyhow::anyhow!("probe task: {e}")));

    let primary_health = match primary_health {
        Ok(h) => h,
        Err(agent_err) => {
            check_dead_primary(
                topo,
                cfg,
                shard,
                &primary,
                &replicas,
                &replica_health,
                &opinions,
                format!("{agent_err:#}"),
                primary_mysqld.err(),
                &mut mem,
            )
            .await;
            return mem;
        }
    };
    if mem.failed_checks > 0 {
        record_event(
            topo,
            &ks_shard,
            "OrcPrimaryReachable",
            format!(
                "primary {} answers again after {} failed check(s); no failover",
                primary.alias, mem.failed_checks
            ),
        )
        .await;
        mem.failed_checks = 0;
    }

    if primary_health.mysqld_running
        && primary_health.read_only
        && primary_health.tablet_type == TabletType::Primary
    {
        fix_primary_read_only(topo, shard, &primary).await;
    }

    // Replicas are repaired only towards a primary that works.
    if !primary_health.mysqld_running || primary_health.tablet_type != TabletType::Primary {
        return mem;
    }
    let mut seen = HashMap::new();
    for (t, h) in replicas.iter().zip(&replica_health) {
        let mut rm = mem.replicas.remove(&t.alias).unwrap_or_default();
        if let Ok(h) = h {
            check_replica(topo, shard, &primary, t, h, &mut rm).await;
        }
        seen.insert(t.alias.clone(), rm);
    }
    mem.replicas = seen;
    mem
}

#[allow(clippy::too_many_arguments)]
async fn check_dead_primary(
    topo: &Topo,
    cfg: &OrcConfig,
    shard: &Shard,
    primary: &Tablet,
    replicas: &[&Tablet],
    replica_health: &[anyhow::Result<TabletHealth>],
    opinions: &[anyhow::Result<MysqldProbe>],
    agent_err: String,
    mysqld_err: Option<String>,
    mem: &mut ShardMemory,
) {
    let ks_shard = format!("{}/{}", shard.keyspace, shard.name);
    let reset = |mem: &mut ShardMemory| {
        mem.failed_checks = 0;
        // Replicas stopped on suspicion are repaired on the next round
        // that finds the primary working, without the usual wait.
        for alias in mem.prefenced.drain(..) {
            mem.replicas.entry(alias).or_default().bad_rounds = REPLICA_CHECKS - 1;
        }
    };
    let Some(mysqld_err) = mysqld_err else {
        // Only the agent is gone; the database still serves.
        if mem.failed_checks > 0 {
            record_event(
                topo,
                &ks_shard,
                "OrcPrimaryReachable",
                format!(
                    "mysqld of primary {} at {} answers again after {} failed check(s); no failover",
                    primary.alias,
                    primary.mysql_addr(),
                    mem.failed_checks
                ),
            )
            .await;
            reset(mem);
        }
        return;
    };
    let views: Vec<ReplicaView> = opinions
        .iter()
        .zip(replica_health)
        .map(|(p, h)| replica_opinion(Some(p), h, primary))
        .collect();
    if !replicas_agree_primary_dead(&views) {
        if mem.failed_checks > 0 {
            record_event(
                topo,
                &ks_shard,
                "OrcPrimaryReachable",
                format!(
                    "primary {} is unreachable from orc but its replicas do not agree it is dead; no failover",
                    primary.alias
                ),
            )
            .await;
            reset(mem);
        }
        return;
    }
    mem.failed_checks += 1;
    let lost: Vec<String> = replicas
        .iter()
        .zip(&views)
        .filter_map(|(t, v)| match v {
            ReplicaView::LostPrimary(why) => Some(format!("{} ({why})", t.alias)),
            _ => None,
        })
        .collect();
    let what = format!(
        "primary {} looks dead: agent unreachable ({agent_err}), mysqld at {} unreachable ({mysqld_err}), replicas lost it: {}",
        primary.alias,
        primary.mysql_addr(),
        lost.join(", ")
    );
    if mem.failed_checks == 1 {
        record_event(
            topo,
            &ks_shard,
            "OrcDeadPrimarySuspected",
            format!("{what}; check 1/{}", cfg.primary_failure_checks),
        )
        .await;
        if cfg.primary_failure_checks > 1 {
            prefence(topo, &ks_shard, replicas, &views, mem).await;
        }
    }
    if mem.failed_checks < cfg.primary_failure_checks
        || mem.next_recovery.is_some_and(|t| Instant::now() < t)
    {
        return;
    }
    record_event(
        topo,
        &ks_shard,
        "OrcDeadPrimary",
        format!(
            "{what}; confirmed on {} consecutive checks, running an emergency reparent",
            mem.failed_checks
        ),
    )
    .await;
    let started = Instant::now();
    // A reparent by someone else since this round's read makes ours wrong.
    match topo.get_shard(&shard.keyspace, &shard.name).await {
        Ok(Some((now, _)))
            if now.primary_alias.as_ref() == Some(&primary.alias)
                && now.primary_term == shard.primary_term => {}
        Ok(_) => {
            record_event(
                topo,
                &ks_shard,
                "OrcRecoverDeadPrimary",
                "skipped: the shard's primary changed meanwhile",
            )
            .await;
            reset(mem);
            return;
        }
        Err(e) => {
            warn!(shard = %ks_shard, error = %e, "orc cannot re-read the shard");
            return;
        }
    }
    // The check above is only a hint: another orc may be reparenting right
    // now. The expectation is checked again under the shard lock, so the
    // loser of a race finds the winner's primary and does nothing.
    let expected = ExpectedPrimary {
        alias: primary.alias.clone(),
        term: shard.primary_term,
    };
    let detail = match emergency_reparent_shard(
        topo,
        &shard.keyspace,
        &shard.name,
        None,
        Some(&expected),
        DEFAULT_WAIT_TIMEOUT,
    )
    .await
    {
        Ok(o) if !o.changed => format!(
            "skipped: dead primary {} (term {}) was already replaced by {} (term {}) by someone else",
            primary.alias, shard.primary_term, o.new_primary, o.primary_term
        ),
        Ok(o) => format!(
            "replaced dead primary {} with {} (term {}) in {} ms{}",
            primary.alias,
            o.new_primary,
            o.primary_term,
            started.elapsed().as_millis(),
            if o.repoint_failures.is_empty() {
                String::new()
            } else {
                format!("; not repointed: {}", o.repoint_failures.join("; "))
            }
        ),
        Err(e) => {
            mem.failed_recoveries += 1;
            let pause = recovery_backoff(mem.failed_recoveries);
            mem.next_recovery = Some(Instant::now() + pause);
            record_event(
                topo,
                &ks_shard,
                "OrcRecoverDeadPrimary",
                format!(
                    "emergency reparent failed: {e:#}; next attempt in {} s at the earliest",
                    pause.as_secs()
                ),
            )
            .await;
            // The count stays: the primary is still dead, and the next
            // attempt needs no fresh detection.
            return;
        }
    };
    record_event(topo, &ks_shard, "OrcRecoverDeadPrimary", detail).await;
    reset(mem);
    mem.failed_recoveries = 0;
    mem.next_recovery = None;
}

/// Stops the IO threads of the replicas that lost the primary, in the
/// background: a semi-sync replica's stop waits up to a second on a source
/// that is cut off (see the tablet's mysqld settings), and started now that
/// second passes while orc confirms, instead of inside the emergency
/// reparent. It takes nothing away: those replicas receive nothing from the
/// primary they cannot reach.
async fn prefence(
    topo: &Topo,
    ks_shard: &str,
    replicas: &[&Tablet],
    views: &[ReplicaView],
    mem: &mut ShardMemory,
) {
    let lost: Vec<&Tablet> = replicas
        .iter()
        .zip(views)
        .filter(|(_, v)| matches!(v, ReplicaView::LostPrimary(_)))
        .map(|(t, _)| *t)
        .collect();
    if lost.is_empty() {
        return;
    }
    mem.prefenced = lost.iter().map(|t| t.alias.clone()).collect();
    record_event(
        topo,
        ks_shard,
        "OrcPrefence",
        format!(
            "stopping replication on {} while the failure is confirmed",
            mem.prefenced
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .await;
    for t in lost {
        let (alias, addr) = (t.alias.clone(), t.agent_addr.clone());
        tokio::spawn(async move {
            if let Err(e) = AgentClient::with_timeout(&addr, REPAIR_CALL_TIMEOUT)
                .stop_io_thread()
                .await
            {
                warn!(replica = %alias, error = %format!("{e:#}"), "could not stop replication on suspicion");
            }
        });
    }
}

/// 10 s after the first failed emergency reparent, doubling up to 5 min.
fn recovery_backoff(failures: u32) -> Duration {
    let secs = 10u64.saturating_mul(1 << failures.saturating_sub(1).min(5));
    Duration::from_secs(secs.min(300))
}

/// Makes a primary left read-only writable again, under the shard lock so
/// a planned reparent (which sets the old primary read-only on purpose) is
/// never undone: if the lock is busy orc waits for a later round, and
/// under the lock it looks again.
async fn fix_primary_read_only(topo: &Topo, shard: &Shard, primary: &Tablet) {
    let ks_shard = format!("{}/{}", shard.keyspace, shard.name);
    let guard = match topo
        .lock_shard(&shard.keyspace, &shard.name, LOCK_WAIT)
        .await
    {
        Ok(g) => g,
        Err(TopoError::LockTimeout(_)) => return,
        Err(e) => {
            warn!(shard = %ks_shard, error = %e, "orc cannot lock the shard");
            return;
        }
    };
    let client = AgentClient::with_timeout(&primary.agent_addr, REPAIR_CALL_TIMEOUT);
    let still = match topo.get_shard(&shard.keyspace, &shard.name).await {
        Ok(Some((now, _))) => {
            now.primary_alias.as_ref() == Some(&primary.alias)
                && now.primary_term == shard.primary_term
        }
        _ => false,
    };
    let still = still
        && matches!(client.health().await, Ok(h) if h.read_only && h.mysqld_running && h.tablet_type == TabletType::Primary);
    if still {
        record_event(
            topo,
            &ks_shard,
            "OrcPrimaryReadOnly",
            format!(
                "primary {} is read-only outside any reparent",
                primary.alias
            ),
        )
        .await;
        let detail = match client.set_read_only(false).await {
            Ok(h) if !h.read_only => format!("primary {} made writable again", primary.alias),
            Ok(_) => format!(
                "primary {} still reports read-only after the fix",
                primary.alias
            ),
            Err(e) => format!("could not make primary {} writable: {e:#}", primary.alias),
        };
        record_event(topo, &ks_shard, "OrcFixPrimaryReadOnly", detail).await;
    }
    if let Err(e) = guard.unlock().await {
        warn!(shard = %ks_shard, error = %e, "could not release the shard lock; it expires with its lease");
    }
}

async fn check_replica(
    topo: &Topo,
    shard: &Shard,
    primary: &Tablet,
    tablet: &Tablet,
    health: &TabletHealth,
    rm: &mut ReplicaMemory,
) {
    // Re-seeding is an operator's job; a fenced old primary's agent rejoins
    // by itself; a replica without mysqld is the agent's to restart.
    if tablet.needs_reseed || health.tablet_type == TabletType::Primary || !health.mysqld_running {
        return;
    }
    if replica_problem(health, primary).is_none() {
        *rm = ReplicaMemory::default();
        return;
    }
    rm.bad_rounds += 1;
    if rm.bad_rounds < REPLICA_CHECKS || rm.next_attempt.is_some_and(|t| Instant::now() < t) {
        return;
    }
    let ks_shard = format!("{}/{}", shard.keyspace, shard.name);
    let guard = match topo
        .lock_shard(&shard.keyspace, &shard.name, LOCK_WAIT)
        .await
    {
        Ok(g) => g,
        Err(TopoError::LockTimeout(_)) => return,
        Err(e) => {
            warn!(shard = %ks_shard, error = %e, "orc cannot lock the shard");
            return;
        }
    };
    // Under the lock, look again: a reparent may have just finished.
    let client = AgentClient::with_timeout(&tablet.agent_addr, REPAIR_CALL_TIMEOUT);
    let unchanged = matches!(
        topo.get_shard(&shard.keyspace, &shard.name).await,
        Ok(Some((now, _))) if now.primary_alias.as_ref() == Some(&primary.alias)
            && now.primary_term == shard.primary_term
    );
    let problem = match (unchanged, client.health().await) {
        (true, Ok(h)) if h.tablet_type != TabletType::Primary => replica_problem(&h, primary),
        _ => None,
    };
    if let Some(problem) = problem {
        record_event(
            topo,
            &ks_shard,
            "OrcReplicationBroken",
            format!("replica {}: {problem}", tablet.alias),
        )
        .await;
        let tablet_type = match tablet.tablet_type {
            TabletType::Rdonly => Some(TabletType::Rdonly),
            TabletType::Primary | TabletType::Replica => Some(TabletType::Replica),
            TabletType::Spare | TabletType::Drained => None,
        };
        let req = ReplicateFrom {
            primary_alias: primary.alias.clone(),
            host: primary.mysql_host.clone(),
            port: primary.mysql_port,
            tablet_type,
        };
        let detail = match client.replicate_from(&req).await {
            Ok(h) => match settled_problem(&client, h, primary).await {
                None => {
                    *rm = ReplicaMemory::default();
                    format!(
                        "replica {} repointed to primary {} at {}; replicating",
                        tablet.alias,
                        primary.alias,
                        primary.mysql_addr()
                    )
                }
                Some(still) => {
                    back_off(rm);
                    format!(
                        "replica {} repointed to primary {} but: {still}",
                        tablet.alias, primary.alias
                    )
                }
            },
            Err(e) => {
                back_off(rm);
                format!("could not repoint replica {}: {e:#}", tablet.alias)
            }
        };
        record_event(topo, &ks_shard, "OrcRepairReplica", detail).await;
    }
    if let Err(e) = guard.unlock().await {
        warn!(shard = %ks_shard, error = %e, "could not release the shard lock; it expires with its lease");
    }
}

/// What is still wrong with a just-repointed replica. Its IO thread may
/// still be connecting (not running, no error) when the repoint returns,
/// so that alone is looked at again for a moment before it counts.
async fn settled_problem(
    client: &AgentClient,
    mut health: TabletHealth,
    primary: &Tablet,
) -> Option<String> {
    for _ in 0..10 {
        let connecting = health
            .replication
            .as_ref()
            .is_some_and(|r| !r.io_running && r.last_io_error.is_empty() && r.sql_running);
        if !connecting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        match client.health().await {
            Ok(h) => health = h,
            Err(_) => break,
        }
    }
    replica_problem(&health, primary)
}

/// A replica that stays broken after a repair is retried ever more rarely,
/// so a persistent error (say, a duplicate key in the SQL thread) does not
/// turn into a repoint every second.
fn back_off(rm: &mut ReplicaMemory) {
    rm.attempts += 1;
    let pause =
        Duration::from_secs(2u64.saturating_pow(rm.attempts.min(6))).min(MAX_REPAIR_BACKOFF);
    rm.next_attempt = Some(Instant::now() + pause);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tablet(port: u16) -> Tablet {
        Tablet {
            format: 1,
            alias: TabletAlias::new("zone1", 100),
            hostname: "h".into(),
            keyspace: "ks".into(),
            shard: "0".into(),
            tablet_type: TabletType::Primary,
            mysql_host: "127.0.0.1".into(),
            mysql_port: port,
            agent_addr: "127.0.0.1:1".into(),
            db_name: "ks".into(),
            primary_term: 1,
            needs_reseed: false,
        }
    }

    /// Built from JSON so fields the agent adds later (all optional) do
    /// not break these tests.
    fn health(source_port: u16, io: bool, sql: bool, io_error: &str) -> TabletHealth {
        serde_json::from_value(serde_json::json!({
            "alias": "zone1-101",
            "keyspace": "ks",
            "shard": "0",
            "tablet_type": "replica",
            "serving": true,
            "mysqld_running": true,
            "read_only": true,
            "replication": {
                "source_host": "127.0.0.1",
                "source_port": source_port,
                "io_running": io,
                "sql_running": sql,
                "lag_seconds": null,
                "last_io_error": io_error,
                "last_sql_error": "",
            },
            "gtid_binlog_pos": "",
            "gtid_slave_pos": "",
            "gtid_current_pos": "",
            "error": null,
        }))
        .expect("health JSON")
    }

    #[test]
    fn a_majority_seeing_the_primary_vetoes_a_failover() {
        use ReplicaView::*;
        let lost = || LostPrimary("x".into());
        assert!(replicas_agree_primary_dead(&[lost(), lost()]));
        assert!(replicas_agree_primary_dead(&[lost(), NoOpinion]));
        assert!(replicas_agree_primary_dead(&[lost(), lost(), SeesPrimary]));
        assert!(!replicas_agree_primary_dead(&[lost(), SeesPrimary]));
        assert!(!replicas_agree_primary_dead(&[
            SeesPrimary,
            SeesPrimary,
            lost()
        ]));
        assert!(!replicas_agree_primary_dead(&[NoOpinion, NoOpinion]));
        assert!(!replicas_agree_primary_dead(&[]));
    }

    #[test]
    fn replica_views_and_problems() {
        let p = tablet(3306);
        let ok = health(3306, true, true, "");
        assert_eq!(replica_view(&ok, &p), ReplicaView::SeesPrimary);
        assert_eq!(replica_problem(&ok, &p), None);
        let connecting = health(3306, false, true, "error reconnecting to master");
        assert!(
            matches!(replica_view(&connecting, &p), ReplicaView::LostPrimary(e) if e.contains("reconnecting"))
        );
        let elsewhere = health(4000, true, true, "");
        assert_eq!(replica_view(&elsewhere, &p), ReplicaView::NoOpinion);
        assert!(
            replica_problem(&elsewhere, &p)
                .unwrap()
                .contains("127.0.0.1:4000")
        );
        let stopped = health(3306, false, false, "");
        assert_eq!(
            replica_problem(&stopped, &p).unwrap(),
            "IO thread stopped; SQL thread stopped"
        );
        let mut none = ok.clone();
        none.replication = None;
        assert_eq!(replica_view(&none, &p), ReplicaView::NoOpinion);
        assert!(replica_problem(&none, &p).is_some());
    }

    #[test]
    fn a_replica_agents_own_probe_outweighs_its_io_thread() {
        let p = tablet(3306);
        let connected: anyhow::Result<TabletHealth> = Ok(health(3306, true, true, ""));
        let probe = |reachable: bool| -> anyhow::Result<MysqldProbe> {
            Ok(MysqldProbe {
                reachable,
                elapsed_ms: reachable.then_some(3),
                error: (!reachable).then(|| "no answer within 300 ms".into()),
            })
        };
        // A silent partition: the IO thread still looks connected.
        assert!(matches!(
            replica_opinion(Some(&probe(false)), &connected, &p),
            ReplicaView::LostPrimary(why) if why.contains("300 ms") && why.contains("127.0.0.1:3306")
        ));
        // Only orc lost the primary: the replica reaches it.
        let stopped: anyhow::Result<TabletHealth> = Ok(health(3306, false, true, "x"));
        assert_eq!(
            replica_opinion(Some(&probe(true)), &stopped, &p),
            ReplicaView::SeesPrimary
        );
        // An agent that cannot be asked falls back on its replication view.
        let unasked: anyhow::Result<MysqldProbe> = Err(anyhow::anyhow!("404"));
        assert_eq!(
            replica_opinion(Some(&unasked), &connected, &p),
            ReplicaView::SeesPrimary
        );
        let gone: anyhow::Result<TabletHealth> = Err(anyhow::anyhow!("down"));
        assert_eq!(
            replica_opinion(Some(&unasked), &gone, &p),
            ReplicaView::NoOpinion
        );
    }

    #[test]
    fn primary_probes_are_short_but_not_too_short() {
        let at = |ms: u64| {
            OrcConfig {
                interval: Duration::from_millis(ms),
                ..OrcConfig::default()
            }
            .primary_probe_timeout()
            .as_millis()
        };
        assert_eq!(
            (at(100), at(500), at(1000), at(5000)),
            (250, 300, 600, 1000)
        );
    }

    #[test]
    fn repair_backoff_grows_and_is_capped() {
        let mut rm = ReplicaMemory::default();
        let mut pauses = Vec::new();
        for _ in 0..8 {
            let before = Instant::now();
            back_off(&mut rm);
            pauses.push((rm.next_attempt.unwrap() - before).as_secs());
        }
        assert_eq!(pauses, vec![2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn failed_recoveries_back_off_to_five_minutes() {
        let secs: Vec<u64> = (1..=7).map(|n| recovery_backoff(n).as_secs()).collect();
        assert_eq!(secs, vec![10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn bad_config_is_refused() {
        let mut c = OrcConfig::default();
        assert!(c.validate().is_ok());
        c.primary_failure_checks = 0;
        assert!(c.validate().is_err());
        c = OrcConfig {
            interval: Duration::ZERO,
            ..OrcConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("interval"));
    }
}
