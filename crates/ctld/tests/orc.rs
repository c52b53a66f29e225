//! orc against real tablets (mariadbd under TabletAgent, topology in a redb
//! file): a killed primary is replaced, a replica stopped by hand is
//! repaired, a primary made read-only by hand is made writable, and one
//! failed look at the primary does not cause a failover.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, topo_with_commerce, wait_for};
use tessera_ctld::events::{Event, list_events};
use tessera_ctld::orc::{Orc, OrcConfig};
use tessera_tablet::api::{AgentClient, ExecuteRequest, TabletHealth};
use tessera_tablet::{TabletAgent, TabletConfig};
use tessera_topo::{TabletAlias, Topo};

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

fn execute(sql: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: sql.into(),
        db: None,
        skip_binlog: false,
    }
}

fn orc_config() -> OrcConfig {
    OrcConfig {
        interval: Duration::from_secs(1),
        primary_failure_checks: 3,
        enabled_keyspaces: Some(vec!["commerce".into()]),
    }
}

/// `n` tablets of commerce/0, uid 100 the primary, a table `t` with a row
/// that every replica has applied.
async fn setup(dir: &std::path::Path, n: u32) -> (Topo, Vec<TabletAgent>, Vec<AgentClient>) {
    let topo = topo_with_commerce(dir).await;
    let starts = (0..n).map(|i| {
        let topo = topo.clone();
        let cfg = config(dir, 100 + i);
        async move {
            TabletAgent::start(cfg, topo)
                .await
                .unwrap_or_else(|e| panic!("tablet {} starts: {e:#}", 100 + i))
        }
    });
    let tablets = futures::future::join_all(starts).await;
    tessera_ctld::ops::init_shard_primary(&topo, "commerce", "0", &TabletAlias::new("zone1", 100))
        .await
        .expect("init primary");
    let clients: Vec<AgentClient> = tablets
        .iter()
        .map(|t| AgentClient::new(&t.agent_addr().to_string()))
        .collect();
    clients[0]
        .execute(&execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY) ENGINE=InnoDB",
        ))
        .await
        .unwrap();
    clients[0]
        .execute(&execute("INSERT INTO t VALUES (1)"))
        .await
        .unwrap();
    for c in &clients[1..] {
        wait_for_row(c, 1).await;
    }
    (topo, tablets, clients)
}

async fn wait_for_row(c: &AgentClient, id: u64) {
    wait_for(&format!("row {id} replicated"), READY, || async {
        let r = c
            .execute(&execute(&format!("SELECT id FROM t WHERE id = {id}")))
            .await
            .ok()?;
        (!r.rows.is_empty()).then_some(())
    })
    .await
}

async fn events(topo: &Topo) -> Vec<Event> {
    list_events(topo).await.expect("event log readable")
}

fn has_event(events: &[Event], action: &str) -> bool {
    events.iter().any(|e| e.action == action)
}

fn log(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| e.line())
        .collect::<Vec<_>>()
        .join("\n")
}

fn replicating_from(h: &TabletHealth, port: u16) -> bool {
    h.replication
        .as_ref()
        .is_some_and(|r| r.io_running && r.sql_running && r.source_port == port)
}

async fn shutdown_all(orc: Orc, tablets: Vec<TabletAgent>) {
    orc.shutdown().await;
    for t in tablets {
        t.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_replaced_by_a_replica() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, mut tablets, clients) = setup(dir.path(), 3).await;
    let orc = Orc::start(orc_config(), topo.clone());
    // Let orc look at the healthy shard first: nothing to do there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        events(&topo)
            .await
            .iter()
            .all(|e| !e.action.starts_with("Orc")),
        "orc acted on a healthy shard:\n{}",
        log(&events(&topo).await)
    );

    let old = tablets.remove(0);
    let pid = old.mysqld_pid().await.expect("primary mysqld runs");
    let killed_at = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(old);

    let shard = wait_for("orc's emergency reparent", READY, || async {
        let (s, _) = topo.get_shard("commerce", "0").await.ok()??;
        (s.primary_term == 2).then_some(s)
    })
    .await;
    let failover = killed_at.elapsed();
    println!(
        "orc: primary killed -> new primary {} recorded in {} ms (interval 1 s, 3 checks)",
        shard.primary_alias.as_ref().unwrap(),
        failover.as_millis()
    );
    assert!(
        failover < Duration::from_secs(45),
        "failover took {failover:?}"
    );
    let new_alias = shard.primary_alias.clone().unwrap();
    assert_ne!(new_alias.uid, 100);
    let new_idx = (new_alias.uid - 100) as usize;
    let (new_client, other_client) = (&clients[new_idx], &clients[3 - new_idx]);
    let new_port = tablets[new_idx - 1].mysql_port();

    // The new primary takes writes, the other replica follows it.
    let h = new_client.health().await.unwrap();
    assert!(!h.read_only, "new primary is read-only: {h:?}");
    new_client
        .execute(&execute("INSERT INTO t VALUES (2)"))
        .await
        .expect("new primary takes a write");
    wait_for_row(other_client, 2).await;
    let h = other_client.health().await.unwrap();
    assert!(replicating_from(&h, new_port), "{h:?}");

    let ev = events(&topo).await;
    for action in [
        "OrcDeadPrimarySuspected",
        "OrcDeadPrimary",
        "EmergencyReparentShard",
        "OrcRecoverDeadPrimary",
    ] {
        assert!(
            has_event(&ev, action),
            "no {action} event in:\n{}",
            log(&ev)
        );
    }
    let recovered = ev
        .iter()
        .find(|e| e.action == "OrcRecoverDeadPrimary")
        .unwrap();
    assert!(
        recovered
            .detail
            .contains("replaced dead primary zone1-0000000100")
            && recovered.detail.contains(&new_alias.to_string()),
        "{}",
        recovered.line()
    );
    let suspected = ev
        .iter()
        .find(|e| e.action == "OrcDeadPrimarySuspected")
        .unwrap();
    assert!(
        suspected.detail.contains("check 1/3"),
        "{}",
        suspected.line()
    );
    // One failover only, although orc kept looking afterwards.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ev = events(&topo).await;
    assert_eq!(
        ev.iter()
            .filter(|e| e.action == "EmergencyReparentShard")
            .count(),
        1,
        "{}",
        log(&ev)
    );
    shutdown_all(orc, tablets).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopped_by_hand_is_restarted() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, tablets, clients) = setup(dir.path(), 2).await;
    let primary_port = tablets[0].mysql_port();
    let orc = Orc::start(orc_config(), topo.clone());

    clients[1].execute(&execute("STOP SLAVE")).await.unwrap();
    let h = clients[1].health().await.unwrap();
    assert!(
        !replicating_from(&h, primary_port),
        "STOP SLAVE had no effect: {h:?}"
    );

    wait_for("orc to repair the replica", READY, || async {
        let ev = events(&topo).await;
        ev.iter()
            .any(|e| e.action == "OrcRepairReplica" && e.detail.contains("replicating"))
            .then_some(())
    })
    .await;
    let h = clients[1].health().await.unwrap();
    assert!(replicating_from(&h, primary_port), "{h:?}");
    clients[0]
        .execute(&execute("INSERT INTO t VALUES (2)"))
        .await
        .unwrap();
    wait_for_row(&clients[1], 2).await;

    let ev = events(&topo).await;
    let broken = ev
        .iter()
        .find(|e| e.action == "OrcReplicationBroken")
        .unwrap_or_else(|| panic!("no OrcReplicationBroken event:\n{}", log(&ev)));
    assert!(
        broken.detail.contains("zone1-0000000101") && broken.detail.contains("IO thread stopped"),
        "{}",
        broken.line()
    );
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_term, 1, "no reparent for a broken replica");
    shutdown_all(orc, tablets).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_made_read_only_by_hand_is_made_writable() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, tablets, clients) = setup(dir.path(), 2).await;
    let orc = Orc::start(orc_config(), topo.clone());

    clients[0]
        .execute(&execute("SET GLOBAL read_only = 1"))
        .await
        .unwrap();
    wait_for("orc to make the primary writable", READY, || async {
        let h = clients[0].health().await.ok()?;
        let ev = events(&topo).await;
        (!h.read_only && has_event(&ev, "OrcFixPrimaryReadOnly")).then_some(())
    })
    .await;
    let ev = events(&topo).await;
    let detected = ev
        .iter()
        .find(|e| e.action == "OrcPrimaryReadOnly")
        .unwrap_or_else(|| panic!("no OrcPrimaryReadOnly event:\n{}", log(&ev)));
    assert!(
        detected.detail.contains("zone1-0000000100"),
        "{}",
        detected.line()
    );
    let fixed = ev
        .iter()
        .find(|e| e.action == "OrcFixPrimaryReadOnly")
        .unwrap();
    assert!(fixed.detail.contains("made writable"), "{}", fixed.line());
    // The replica stays read-only: orc only touches the primary.
    assert!(clients[1].health().await.unwrap().read_only);
    shutdown_all(orc, tablets).await;
}

/// Sends SIGCONT on drop, so a failing test does not leave mysqld stopped.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_check_does_not_fail_over() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, tablets, clients) = setup(dir.path(), 3).await;
    let primary = TabletAlias::new("zone1", 100);
    let real_agent_addr = tablets[0].agent_addr().to_string();
    let orc = Orc::start(orc_config(), topo.clone());

    // Make the primary look dead for one look, for real: orc cannot reach
    // its agent (the record names a closed port), its mysqld is frozen
    // (SIGSTOP: it accepts connections but never greets) and the replicas'
    // IO threads are stopped. Each step alone is not a dead primary.
    let closed = format!("127.0.0.1:{}", free_port());
    topo.update_tablet(&primary, |t| {
        t.agent_addr = closed.clone();
        Ok(())
    })
    .await
    .unwrap();
    let pid = tablets[0].mysqld_pid().await.expect("primary mysqld runs");
    let resume = Resume(pid);
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    for c in &clients[1..] {
        c.execute(&execute("STOP SLAVE IO_THREAD")).await.unwrap();
    }
    wait_for("orc's first failed check", READY, || async {
        has_event(&events(&topo).await, "OrcDeadPrimarySuspected").then_some(())
    })
    .await;
    topo.update_tablet(&primary, |t| {
        t.agent_addr = real_agent_addr.clone();
        Ok(())
    })
    .await
    .unwrap();
    drop(resume);

    wait_for("orc to see the primary again", READY, || async {
        has_event(&events(&topo).await, "OrcPrimaryReachable").then_some(())
    })
    .await;
    // Several more rounds than the three checks a failover needs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ev = events(&topo).await;
    assert!(
        !has_event(&ev, "OrcDeadPrimary") && !has_event(&ev, "EmergencyReparentShard"),
        "a transient failure caused a failover:\n{}",
        log(&ev)
    );
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_alias, Some(primary));
    assert_eq!(shard.primary_term, 1);
    assert!(!clients[0].health().await.unwrap().read_only);
    // orc restarts the IO threads stopped above, towards the same primary.
    let port = tablets[0].mysql_port();
    for c in &clients[1..] {
        wait_for("replica repaired", READY, || async {
            replicating_from(&c.health().await.ok()?, port).then_some(())
        })
        .await;
    }
    shutdown_all(orc, tablets).await;
}
