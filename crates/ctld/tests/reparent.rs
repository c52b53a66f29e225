//! Planned and emergency reparents of a shard of three real tablets under a
//! continuous writer: no acknowledged write is lost, writes pause briefly,
//! there is never more than one writable primary, and a returning old
//! primary comes back fenced and rejoins as a replica.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{free_port, start_ctld, topo_with_commerce, wait_for};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use tessera_ctld::cli::{CtlCommand, run_ctl_output};
use tessera_tablet::api::{AgentClient, ExecuteRequest};
use tessera_tablet::{Credentials, TabletAgent, TabletConfig};
use tessera_topo::{TabletAlias, TabletType, Topo};
use tokio::sync::Mutex;

const READY: Duration = Duration::from_secs(90);

fn config(dir: &std::path::Path, uid: u32) -> TabletConfig {
    TabletConfig::local(
        dir.join(format!("tablet-{uid}")),
        TabletAlias::new("zone1", uid),
        "commerce",
        "0",
        free_port(),
        0,
    )
}

async fn start(topo: &Topo, cfg: TabletConfig) -> TabletAgent {
    let uid = cfg.alias.uid;
    TabletAgent::start(cfg, topo.clone())
        .await
        .unwrap_or_else(|e| panic!("tablet {uid} starts: {e:#}"))
}

fn execute(sql: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: sql.into(),
        db: None,
        skip_binlog: false,
    }
}

/// Ids the writer had acknowledged, with when.
type Acks = Arc<Mutex<Vec<(u64, Instant)>>>;

/// The current primary's mysql port, from the Shard record.
async fn primary_port(topo: &Topo) -> Option<u16> {
    let (shard, _) = topo.get_shard("commerce", "0").await.ok()??;
    let (tablet, _) = topo.get_tablet(&shard.primary_alias?).await.ok()??;
    Some(tablet.mysql_port)
}

/// Inserts ids as fast as it can through whatever mysqld the Shard record
/// names as primary, as the application user; reconnects on any error.
fn spawn_writer(topo: Topo, acks: Acks, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let creds = Credentials::default();
        let mut next_id = 1u64;
        let mut conn: Option<Conn> = None;
        while !stop.load(Ordering::SeqCst) {
            if conn.is_none() {
                let Some(port) = primary_port(&topo).await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let opts = OptsBuilder::default()
                    .ip_or_hostname("127.0.0.1")
                    .tcp_port(port)
                    .user(Some(creds.app_user.clone()))
                    .pass(Some(creds.app_password.clone()))
                    .db_name(Some("commerce"));
                match tokio::time::timeout(Duration::from_secs(2), Conn::new(opts)).await {
                    Ok(Ok(c)) => conn = Some(c),
                    _ => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                }
            }
            let c = conn.as_mut().expect("connected");
            // Every attempt takes a fresh id: a failed insert may still
            // have committed.
            let id = next_id;
            next_id += 1;
            let insert = c.exec_drop("INSERT INTO acked (id) VALUES (?)", (id,));
            match tokio::time::timeout(Duration::from_secs(5), insert).await {
                Ok(Ok(())) => acks.lock().await.push((id, Instant::now())),
                _ => {
                    conn = None;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        next_id - 1
    })
}

/// Every acknowledged id must be on the tablet.
async fn assert_has_every_ack(agent: &AgentClient, acks: &Acks, what: &str) {
    let acked: Vec<u64> = acks.lock().await.iter().map(|(id, _)| *id).collect();
    assert!(!acked.is_empty(), "the writer never got an acknowledgement");
    let result = agent
        .execute(&execute("SELECT id FROM acked ORDER BY id"))
        .await
        .unwrap();
    let present: std::collections::HashSet<u64> = result
        .rows
        .iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect();
    let missing: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {} acknowledged ids are missing, first {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
}

/// The longest gap between consecutive acknowledgements inside a window:
/// the writer's pause across one reparent.
fn longest_gap(acks: &[(u64, Instant)], from: Instant, to: Instant) -> Option<Duration> {
    let before = acks.iter().rev().find(|(_, t)| *t <= from).map(|(_, t)| *t);
    let mut times: Vec<Instant> = before.into_iter().collect();
    times.extend(
        acks.iter()
            .map(|(_, t)| *t)
            .filter(|t| *t > from && *t <= to),
    );
    times.windows(2).map(|w| w[1] - w[0]).max()
}

async fn writable_tablets(agents: &[&AgentClient]) -> usize {
    let mut writable = 0;
    for a in agents {
        if let Ok(h) = a.health().await
            && h.mysqld_running
            && !h.read_only
        {
            writable += 1;
        }
    }
    writable
}

async fn setup(dir: &std::path::Path) -> (Topo, Vec<TabletAgent>) {
    let topo = topo_with_commerce(dir).await;
    let (a, b, c) = tokio::join!(
        start(&topo, config(dir, 100)),
        start(&topo, config(dir, 101)),
        start(&topo, config(dir, 102))
    );
    tessera_ctld::ops::init_shard_primary(&topo, "commerce", "0", &TabletAlias::new("zone1", 100))
        .await
        .expect("init primary");
    AgentClient::new(&a.agent_addr().to_string())
        .execute(&execute(
            "CREATE TABLE acked (id BIGINT PRIMARY KEY) ENGINE=InnoDB",
        ))
        .await
        .unwrap();
    (topo, vec![a, b, c])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_planned_reparents_under_a_writer_lose_nothing() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, tablets) = setup(dir.path()).await;
    let ctld = start_ctld(&topo, false).await;
    let server = ctld.http_addr().to_string();
    let agents: Vec<AgentClient> = tablets
        .iter()
        .map(|t| AgentClient::new(&t.agent_addr().to_string()))
        .collect();

    let acks: Acks = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(topo.clone(), acks.clone(), stop.clone());
    wait_for("first acknowledged write", READY, || async {
        (!acks.lock().await.is_empty()).then_some(())
    })
    .await;

    let mut pauses = Vec::new();
    let mut reported = Vec::new();
    for round in 0..20u64 {
        let (before, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
        let started = Instant::now();
        let out = run_ctl_output(
            &server,
            CtlCommand::PlannedReparentShard {
                keyspace_shard: "commerce/0".into(),
                new_primary: None,
                avoid_primary: None,
                wait_replicas_timeout: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("reparent {round}: {e:#}"));
        let (after, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
        assert_eq!(after.primary_term, before.primary_term + 1, "{out}");
        assert_ne!(after.primary_alias, before.primary_alias, "{out}");
        assert!(out.contains("writes paused"), "{out}");
        reported.push(
            out.split("writes paused ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap(),
        );
        // Wait for the writer to get through to the new primary.
        let done = Instant::now();
        wait_for("a write on the new primary", READY, || async {
            acks.lock()
                .await
                .last()
                .is_some_and(|(_, t)| *t > done)
                .then_some(())
        })
        .await;
        let acks_now = acks.lock().await.clone();
        let gap = longest_gap(&acks_now, started, Instant::now()).unwrap();
        pauses.push(gap);
        assert_eq!(
            writable_tablets(&agents.iter().collect::<Vec<_>>()).await,
            1,
            "exactly one writable mysqld after reparent {round}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let attempts = writer.await.unwrap();

    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    let primary = shard.primary_alias.unwrap();
    let idx = tablets.iter().position(|t| t.alias() == &primary).unwrap();
    assert_has_every_ack(&agents[idx], &acks, "final primary").await;
    let mut sorted = pauses.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut reported_sorted = reported.clone();
    reported_sorted.sort();
    println!(
        "20 planned reparents: {} acked of {attempts} attempted writes; writer pause min {:.0} ms, median {:.0} ms, max {:.0} ms; ctld-measured read-only window min {} ms, median {} ms, max {} ms",
        acks.lock().await.len(),
        ms(sorted[0]),
        ms(sorted[sorted.len() / 2]),
        ms(sorted[sorted.len() - 1]),
        reported_sorted[0],
        reported_sorted[reported_sorted.len() / 2],
        reported_sorted[reported_sorted.len() - 1],
    );
    assert!(
        sorted[sorted.len() / 2] < Duration::from_secs(10),
        "median pause {:?}",
        sorted[sorted.len() / 2]
    );

    // Every reparent is in the event log.
    let events = run_ctl_output(&server, CtlCommand::Events).await.unwrap();
    assert_eq!(
        events
            .lines()
            .filter(|l| l.contains(" commerce/0 PlannedReparentShard "))
            .count(),
        20,
        "{events}"
    );

    ctld.shutdown().await;
    for t in tablets {
        t.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_reparent_after_primary_dies_and_old_primary_rejoins_fenced() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, mut tablets) = setup(dir.path()).await;
    let ctld = start_ctld(&topo, false).await;
    let server = ctld.http_addr().to_string();

    let acks: Acks = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(topo.clone(), acks.clone(), stop.clone());
    wait_for("200 acknowledged writes", READY, || async {
        (acks.lock().await.len() >= 200).then_some(())
    })
    .await;

    // Durability is asynchronous (no semi-sync yet): stop the writer so
    // the kill does not race the last acknowledgement's shipment, then
    // kill the primary hard without waiting for anything.
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let old = tablets.remove(0);
    let old_cfg = old.config().clone();
    let pid = old.mysqld_pid().await.expect("primary mysqld runs");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(old);

    let out = run_ctl_output(
        &server,
        CtlCommand::EmergencyReparentShard {
            keyspace_shard: "commerce/0".into(),
            new_primary: None,
            wait_replicas_timeout: None,
            expected_primary: None,
            expected_term: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("ERS: {e:#}"));
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_term, 2, "{out}");
    let new_primary = shard.primary_alias.clone().unwrap();
    assert_ne!(new_primary, TabletAlias::new("zone1", 100));
    assert!(
        out.starts_with(&format!("{new_primary} is primary of commerce/0 (term 2)")),
        "{out}"
    );
    let agents: Vec<AgentClient> = tablets
        .iter()
        .map(|t| AgentClient::new(&t.agent_addr().to_string()))
        .collect();
    let new_idx = tablets
        .iter()
        .position(|t| t.alias() == &new_primary)
        .unwrap();
    assert_has_every_ack(&agents[new_idx], &acks, "elected primary").await;
    assert_eq!(
        writable_tablets(&agents.iter().collect::<Vec<_>>()).await,
        1
    );
    let other = &agents[1 - new_idx];
    wait_for(
        "the other replica to follow the new primary",
        READY,
        || async {
            let h = other.health().await.ok()?;
            (h.serving
                && h.replication.as_ref()?.source_port == tablets[new_idx].mysql_port()
                && h.replication.as_ref()?.io_running)
                .then_some(())
        },
    )
    .await;
    // The dead primary's record no longer claims the role.
    let (rec, _) = topo
        .get_tablet(&TabletAlias::new("zone1", 100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.tablet_type, TabletType::Replica);

    // Writes go on at the new primary.
    agents[new_idx]
        .execute(&execute("INSERT INTO acked (id) VALUES (1000000)"))
        .await
        .unwrap();

    // The old primary returns: fenced, then a replica of the new primary
    // with everything.
    let returned = start(&topo, old_cfg).await;
    let h = returned.health().await;
    assert!(h.read_only, "returning old primary must start read-only");
    assert_eq!(h.tablet_type, TabletType::Replica);
    let back = AgentClient::new(&returned.agent_addr().to_string());
    wait_for(
        "the old primary to catch up as a replica",
        READY,
        || async {
            let r = back
                .execute(&execute("SELECT COUNT(*) FROM acked WHERE id = 1000000"))
                .await
                .ok()?;
            (r.rows[0][0].as_deref() == Some("1")).then_some(())
        },
    )
    .await;
    let h = back.health().await.unwrap();
    assert!(h.serving && h.read_only, "{h:?}");
    assert_eq!(
        h.replication.unwrap().source_port,
        tablets[new_idx].mysql_port()
    );
    let mut all: Vec<&AgentClient> = agents.iter().collect();
    all.push(&back);
    assert_eq!(writable_tablets(&all).await, 1);
    let (rec, _) = topo
        .get_tablet(&TabletAlias::new("zone1", 100))
        .await
        .unwrap()
        .unwrap();
    assert!(!rec.needs_reseed);

    let events = run_ctl_output(&server, CtlCommand::Events).await.unwrap();
    assert!(
        events.contains(" commerce/0 EmergencyReparentShard zone1-0000000100 -> "),
        "{events}"
    );

    ctld.shutdown().await;
    returned.shutdown().await.unwrap();
    for t in tablets {
        t.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_primary_with_errant_transaction_returns_needing_reseed() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, mut tablets) = setup(dir.path()).await;
    let ctld = start_ctld(&topo, false).await;
    let server = ctld.http_addr().to_string();
    let agents: Vec<AgentClient> = tablets
        .iter()
        .map(|t| AgentClient::new(&t.agent_addr().to_string()))
        .collect();
    agents[0]
        .execute(&execute("INSERT INTO acked (id) VALUES (1), (2)"))
        .await
        .unwrap();
    for a in &agents[1..] {
        wait_for("replica has both rows", READY, || async {
            let r = a
                .execute(&execute("SELECT COUNT(*) FROM acked"))
                .await
                .ok()?;
            (r.rows[0][0].as_deref() == Some("2")).then_some(())
        })
        .await;
        a.stop_io_thread().await.unwrap();
    }
    // A write nobody receives, then the primary dies.
    agents[0]
        .execute(&execute("INSERT INTO acked (id) VALUES (3)"))
        .await
        .unwrap();
    let old = tablets.remove(0);
    let old_cfg = old.config().clone();
    let pid = old.mysqld_pid().await.unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    drop(old);

    run_ctl_output(
        &server,
        CtlCommand::EmergencyReparentShard {
            keyspace_shard: "commerce/0".into(),
            new_primary: Some("zone1-102".into()),
            wait_replicas_timeout: Some(Duration::from_secs(20)),
            expected_primary: None,
            expected_term: None,
        },
    )
    .await
    .unwrap();
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_alias, Some(TabletAlias::new("zone1", 102)));

    let returned = start(&topo, old_cfg).await;
    let h = returned.health().await;
    assert!(h.read_only, "{h:?}");
    assert!(!h.serving, "{h:?}");
    assert!(h.replication.is_none(), "{h:?}");
    let (rec, _) = topo
        .get_tablet(&TabletAlias::new("zone1", 100))
        .await
        .unwrap()
        .unwrap();
    assert!(rec.needs_reseed);
    assert_eq!(rec.tablet_type, TabletType::Replica);

    // It can be neither promoted nor chosen.
    let err = run_ctl_output(
        &server,
        CtlCommand::PlannedReparentShard {
            keyspace_shard: "commerce/0".into(),
            new_primary: Some("zone1-100".into()),
            avoid_primary: None,
            wait_replicas_timeout: None,
        },
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("re-seeded"), "{err:#}");
    let out = run_ctl_output(
        &server,
        CtlCommand::PlannedReparentShard {
            keyspace_shard: "commerce/0".into(),
            new_primary: None,
            avoid_primary: Some("zone1-102".into()),
            wait_replicas_timeout: None,
        },
    )
    .await
    .unwrap();
    assert!(
        out.starts_with("zone1-0000000101 is primary of commerce/0 (term 3)"),
        "{out}"
    );

    ctld.shutdown().await;
    returned.shutdown().await.unwrap();
    for t in tablets {
        t.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tablet_type_actions_drain_and_external_reparent() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, tablets) = setup(dir.path()).await;
    let ctld = start_ctld(&topo, false).await;
    let server = ctld.http_addr().to_string();
    let type_of = async |uid: u32| {
        topo.get_tablet(&TabletAlias::new("zone1", uid))
            .await
            .unwrap()
            .unwrap()
            .0
            .tablet_type
    };
    let ctl = async |cmd: CtlCommand| run_ctl_output(&server, cmd).await;

    let out = ctl(CtlCommand::ChangeTabletType {
        alias: "zone1-102".into(),
        tablet_type: TabletType::Rdonly,
        dry_run: false,
    })
    .await
    .unwrap();
    assert_eq!(out, "zone1-0000000102 is rdonly\n");
    assert_eq!(type_of(102).await, TabletType::Rdonly);

    // Neither the primary nor "primary" are type changes.
    let err = ctl(CtlCommand::ChangeTabletType {
        alias: "zone1-100".into(),
        tablet_type: TabletType::Replica,
        dry_run: false,
    })
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("is primary"), "{err:#}");
    let err = ctl(CtlCommand::ChangeTabletType {
        alias: "zone1-101".into(),
        tablet_type: TabletType::Primary,
        dry_run: false,
    })
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("reparent"), "{err:#}");

    // An rdonly tablet is never promoted.
    let err = ctl(CtlCommand::PlannedReparentShard {
        keyspace_shard: "commerce/0".into(),
        new_primary: Some("zone1-102".into()),
        avoid_primary: None,
        wait_replicas_timeout: None,
    })
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("only replicas"), "{err:#}");
    let out = ctl(CtlCommand::PlannedReparentShard {
        keyspace_shard: "commerce/0".into(),
        new_primary: None,
        avoid_primary: None,
        wait_replicas_timeout: None,
    })
    .await
    .unwrap();
    assert!(out.starts_with("zone1-0000000101 is primary"), "{out}");
    // Avoiding a tablet that is not primary changes nothing.
    let out = ctl(CtlCommand::PlannedReparentShard {
        keyspace_shard: "commerce/0".into(),
        new_primary: None,
        avoid_primary: Some("zone1-100".into()),
        wait_replicas_timeout: None,
    })
    .await
    .unwrap();
    assert!(out.contains("nothing to do"), "{out}");

    // Draining the primary moves the role away first.
    let out = ctl(CtlCommand::Drain {
        alias: "zone1-101".into(),
    })
    .await
    .unwrap();
    assert_eq!(out, "zone1-0000000101 is drained\n");
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_alias, Some(TabletAlias::new("zone1", 100)));
    assert_eq!(shard.primary_term, 3);
    let h101 = AgentClient::new(&tablets[1].agent_addr().to_string())
        .health()
        .await
        .unwrap();
    assert_eq!(h101.tablet_type, TabletType::Drained);
    assert!(h101.read_only && !h101.serving);
    let out = ctl(CtlCommand::Undrain {
        alias: "zone1-101".into(),
    })
    .await
    .unwrap();
    assert_eq!(out, "zone1-0000000101 is replica\n");
    let err = ctl(CtlCommand::Undrain {
        alias: "zone1-101".into(),
    })
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("not drained"), "{err:#}");

    // An operator made 101 primary by hand: ctld records it and repoints.
    let out = ctl(CtlCommand::TabletExternallyReparented {
        alias: "zone1-101".into(),
    })
    .await
    .unwrap();
    assert_eq!(out, "zone1-0000000101 is primary of commerce/0 (term 4)\n");
    let a101 = AgentClient::new(&tablets[1].agent_addr().to_string());
    a101.execute(&execute("INSERT INTO acked (id) VALUES (7)"))
        .await
        .unwrap();
    for t in [&tablets[0], &tablets[2]] {
        let a = AgentClient::new(&t.agent_addr().to_string());
        wait_for("row 7 replicated from 101", READY, || async {
            let r = a
                .execute(&execute("SELECT COUNT(*) FROM acked WHERE id = 7"))
                .await
                .ok()?;
            (r.rows[0][0].as_deref() == Some("1")).then_some(())
        })
        .await;
    }
    assert_eq!(type_of(100).await, TabletType::Replica);
    assert_eq!(type_of(102).await, TabletType::Rdonly);

    // Bad input is refused clearly.
    let err = ctl(CtlCommand::PlannedReparentShard {
        keyspace_shard: "commerce/9".into(),
        new_primary: None,
        avoid_primary: None,
        wait_replicas_timeout: None,
    })
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
    let err = ctl(CtlCommand::Drain {
        alias: "nonsense".into(),
    })
    .await
    .unwrap_err();
    assert!(!format!("{err:#}").is_empty());

    let events = ctl(CtlCommand::Events).await.unwrap();
    for action in [
        "commerce/0 InitShardPrimary zone1-0000000100 is primary",
        "ChangeTabletType zone1-0000000102: replica -> rdonly",
        "PlannedReparentShard",
        "TabletExternallyReparented zone1-0000000101 is primary (term 4)",
    ] {
        assert!(events.contains(action), "{action} missing in\n{events}");
    }

    ctld.shutdown().await;
    for t in tablets {
        t.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_reparent_refuses_and_skips_a_replica_with_errant_gtids() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, mut tablets) = setup(dir.path()).await;
    let ctld = start_ctld(&topo, false).await;
    let server = ctld.http_addr().to_string();
    let agents: Vec<AgentClient> = tablets
        .iter()
        .map(|t| AgentClient::new(&t.agent_addr().to_string()))
        .collect();
    agents[0]
        .execute(&execute("INSERT INTO acked (id) VALUES (1), (2)"))
        .await
        .unwrap();
    for a in &agents[1..] {
        wait_for("replica has both rows", READY, || async {
            let r = a
                .execute(&execute("SELECT COUNT(*) FROM acked"))
                .await
                .ok()?;
            (r.rows[0][0].as_deref() == Some("2")).then_some(())
        })
        .await;
    }
    // A write made on replica 101 directly (the dba bypasses read_only):
    // a transaction no primary ever had.
    agents[1]
        .execute(&execute("INSERT INTO acked (id) VALUES (500)"))
        .await
        .unwrap();
    let old = tablets.remove(0);
    let pid = old.mysqld_pid().await.unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    drop(old);

    let ers = |new_primary: Option<&str>| CtlCommand::EmergencyReparentShard {
        keyspace_shard: "commerce/0".into(),
        new_primary: new_primary.map(str::to_string),
        wait_replicas_timeout: Some(Duration::from_secs(20)),
        expected_primary: None,
        expected_term: None,
    };
    let err = run_ctl_output(&server, ers(Some("zone1-101")))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("errant GTIDs"), "{err:#}");
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_term, 1, "a refused ERS changes nothing");

    let out = run_ctl_output(&server, ers(None)).await.unwrap();
    assert!(
        out.starts_with("zone1-0000000102 is primary of commerce/0 (term 2)"),
        "{out}"
    );
    assert!(
        out.contains("zone1-0000000101: errant GTIDs 0-101-"),
        "{out}"
    );
    let (rec, _) = topo
        .get_tablet(&TabletAlias::new("zone1", 101))
        .await
        .unwrap()
        .unwrap();
    assert!(rec.needs_reseed);
    assert_eq!(
        agents[1]
            .health()
            .await
            .unwrap()
            .replication
            .map(|r| r.io_running),
        Some(false),
        "the errant replica is left stopped, not pointed at the new primary"
    );

    ctld.shutdown().await;
    for t in tablets {
        t.shutdown().await.unwrap();
    }
}
