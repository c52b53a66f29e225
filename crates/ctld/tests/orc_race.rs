//! Two actors that detected the same dead primary must not both replace it:
//! two emergency reparents naming the same expected primary and term run at
//! once on real tablets (one wins, the other is a logged no-op), and then
//! two orc loops watch the same shard while its primary is killed (exactly
//! one new term).

mod common;

use std::time::{Duration, Instant};

use common::{call, free_port, start_ctld, topo_with_commerce, wait_for};
use tessera_ctld::events::{Event, list_events};
use tessera_ctld::orc::{Orc, OrcConfig};
use tessera_ctld::reparent::{DEFAULT_WAIT_TIMEOUT, ExpectedPrimary, emergency_reparent_shard};
use tessera_tablet::api::{AgentClient, ExecuteRequest};
use tessera_tablet::{TabletAgent, TabletConfig};
use tessera_topo::{TabletAlias, Topo};

const READY: Duration = Duration::from_secs(90);

fn execute(sql: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: sql.into(),
        db: None,
        skip_binlog: false,
    }
}

async fn events(topo: &Topo) -> Vec<Event> {
    list_events(topo).await.expect("event log readable")
}

fn log(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| e.line())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn term(topo: &Topo) -> (Option<TabletAlias>, u64) {
    let (s, _) = topo
        .get_shard("commerce", "0")
        .await
        .unwrap()
        .expect("shard");
    (s.primary_alias, s.primary_term)
}

/// Kills the tablet's mysqld with -9 and drops its agent: a dead host.
async fn kill_tablet(tablet: TabletAgent) {
    let pid = tablet.mysqld_pid().await.expect("mysqld runs");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(tablet);
}

/// Successful (changing) emergency reparents in the event log.
fn reparents(ev: &[Event]) -> Vec<&Event> {
    ev.iter()
        .filter(|e| e.action == "EmergencyReparentShard" && e.detail.contains(" -> "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_emergency_reparents_replace_a_dead_primary_once() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = topo_with_commerce(dir.path()).await;
    let starts = (0..3u32).map(|i| {
        let topo = topo.clone();
        let cfg = TabletConfig::local(
            dir.path().join(format!("tablet-{}", 100 + i)),
            TabletAlias::new("zone1", 100 + i),
            "commerce",
            "0",
            free_port(),
            0,
        );
        async move {
            TabletAgent::start(cfg, topo)
                .await
                .unwrap_or_else(|e| panic!("tablet {} starts: {e:#}", 100 + i))
        }
    });
    let mut tablets: Vec<Option<TabletAgent>> = futures::future::join_all(starts)
        .await
        .into_iter()
        .map(Some)
        .collect();
    tessera_ctld::ops::init_shard_primary(&topo, "commerce", "0", &TabletAlias::new("zone1", 100))
        .await
        .expect("init primary");
    let clients: Vec<AgentClient> = tablets
        .iter()
        .map(|t| AgentClient::new(&t.as_ref().unwrap().agent_addr().to_string()))
        .collect();
    clients[0]
        .execute(&execute("CREATE TABLE t (id BIGINT PRIMARY KEY)"))
        .await
        .unwrap();
    clients[0]
        .execute(&execute("INSERT INTO t VALUES (1)"))
        .await
        .unwrap();
    let (first, first_term) = term(&topo).await;
    assert_eq!(first, Some(TabletAlias::new("zone1", 100)));

    // Round 1: two direct calls that both saw zone1-100 die in its term.
    kill_tablet(tablets[0].take().unwrap()).await;
    let expected = ExpectedPrimary {
        alias: TabletAlias::new("zone1", 100),
        term: first_term,
    };
    let (a, b) = tokio::join!(
        emergency_reparent_shard(
            &topo,
            "commerce",
            "0",
            None,
            Some(&expected),
            DEFAULT_WAIT_TIMEOUT
        ),
        emergency_reparent_shard(
            &topo,
            "commerce",
            "0",
            None,
            Some(&expected),
            DEFAULT_WAIT_TIMEOUT
        ),
    );
    let (a, b) = (a.expect("first call"), b.expect("second call"));
    println!(
        "racing calls: changed {} / {}, terms {} / {}",
        a.changed, b.changed, a.primary_term, b.primary_term
    );
    assert!(
        a.changed != b.changed,
        "exactly one of the two calls reparents: {a:?} {b:?}"
    );
    let (winner, loser) = if a.changed { (a, b) } else { (b, a) };
    assert_eq!(winner.primary_term, first_term + 1);
    assert_eq!(
        loser.new_primary, winner.new_primary,
        "the loser reports the winner's primary"
    );
    assert_eq!(loser.primary_term, first_term + 1);
    let (now, now_term) = term(&topo).await;
    assert_eq!(now_term, first_term + 1, "one new term, not two");
    assert_eq!(now.as_ref(), Some(&winner.new_primary));
    let ev = events(&topo).await;
    assert_eq!(reparents(&ev).len(), 1, "{}", log(&ev));
    let skipped: Vec<&Event> = ev
        .iter()
        .filter(|e| e.action == "EmergencyReparentShard" && e.detail.starts_with("skipped"))
        .collect();
    assert_eq!(skipped.len(), 1, "{}", log(&ev));
    assert!(
        skipped[0].detail.contains("zone1-0000000100")
            && skipped[0].detail.contains(&winner.new_primary.to_string()),
        "{}",
        skipped[0].line()
    );

    // A late caller with the same stale view is a no-op too, and the HTTP
    // API refuses half an expectation.
    let late = emergency_reparent_shard(
        &topo,
        "commerce",
        "0",
        None,
        Some(&expected),
        DEFAULT_WAIT_TIMEOUT,
    )
    .await
    .unwrap();
    assert!(!late.changed);
    assert_eq!(term(&topo).await.1, first_term + 1);
    let ctld = start_ctld(&topo, false).await;
    let (status, body) = call(
        reqwest::Method::POST,
        format!(
            "http://{}/api/shards/commerce/0/emergency-reparent",
            ctld.http_addr()
        ),
        Some(r#"{"expected_primary": "zone1-100"}"#.into()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("expected_term"), "{body}");
    let (status, body) = call(
        reqwest::Method::POST,
        format!(
            "http://{}/api/shards/commerce/0/emergency-reparent",
            ctld.http_addr()
        ),
        Some(r#"{"expected_primary": "zone1-100", "expected_term": 1}"#.into()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], false, "{body}");
    assert_eq!(term(&topo).await.1, first_term + 1);
    ctld.shutdown().await;

    // Round 2: two orc loops watch the shard; its primary dies.
    let cfg = OrcConfig {
        interval: Duration::from_millis(500),
        primary_failure_checks: 2,
        enabled_keyspaces: Some(vec!["commerce".into()]),
    };
    let orcs = [
        Orc::start(cfg.clone(), topo.clone()),
        Orc::start(cfg, topo.clone()),
    ];
    let second = winner.new_primary.clone();
    let second_idx = (second.uid - 100) as usize;
    let survivor_idx = 3 - second_idx;
    // The survivor follows the new primary before orc starts judging it.
    wait_for("the other replica to follow", READY, || async {
        let h = clients[survivor_idx].health().await.ok()?;
        h.replication
            .as_ref()
            .is_some_and(|r| r.io_running && r.sql_running)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ev = events(&topo).await;
    assert_eq!(
        reparents(&ev).len(),
        1,
        "orc acted on a healthy shard: {}",
        log(&ev)
    );

    let killed_at = Instant::now();
    kill_tablet(tablets[second_idx].take().unwrap()).await;
    let third = wait_for("an orc to replace the second primary", READY, || async {
        let (p, t) = term(&topo).await;
        (t > first_term + 1).then_some(p)
    })
    .await;
    let failover = killed_at.elapsed();
    // Give the slower orc every chance to act on its stale view.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for orc in orcs {
        orc.shutdown().await;
    }
    let (now, now_term) = term(&topo).await;
    let ev = events(&topo).await;
    println!(
        "two orcs: {} promoted after {failover:?}; event log:\n{}",
        now.as_ref().unwrap(),
        log(&ev)
    );
    assert_eq!(now_term, first_term + 2, "exactly one more term");
    assert_eq!(now, third);
    assert_eq!(
        now,
        Some(TabletAlias::new("zone1", 100 + survivor_idx as u32))
    );
    assert_eq!(reparents(&ev).len(), 2, "{}", log(&ev));
    let recovered = ev
        .iter()
        .filter(|e| e.action == "OrcRecoverDeadPrimary" && e.detail.starts_with("replaced"))
        .count();
    assert_eq!(recovered, 1, "{}", log(&ev));
    for t in tablets.into_iter().flatten() {
        t.shutdown().await.unwrap();
    }
}
