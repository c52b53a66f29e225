//! Loss-less semi-sync on a real shard: a semi_sync keyspace's primary
//! bootstraps without blocking, turns semi-sync on once a replica is
//! attached, and every write it acknowledged survives a kill -9 of its
//! mysqld on some replica.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wait_for;
use mysql_async::prelude::Queryable;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tessera_tablet::api::{ExecuteRequest, ReplicateFrom, SemiSyncStatus};
use tessera_tablet::{AgentClient, TabletAgent};
use tessera_topo::{DurabilityPolicy, KeyRange, Keyspace, LocalStore, Shard, TabletType, Topo};

const KS: &str = "ledger";

fn sql(text: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: text.into(),
        db: None,
        skip_binlog: false,
    }
}

async fn topo_with_policy(dir: &std::path::Path, policy: DurabilityPolicy) -> Topo {
    let store = LocalStore::open(&dir.join("topo.redb")).expect("open local topo");
    let topo = Topo::new(Arc::new(store));
    topo.create_keyspace(&Keyspace {
        name: KS.into(),
        durability_policy: policy,
        ..Default::default()
    })
    .await
    .unwrap();
    topo.create_shard(&Shard {
        keyspace: KS.into(),
        name: "0".into(),
        key_range: KeyRange::default(),
        ..Default::default()
    })
    .await
    .unwrap();
    topo
}

async fn semi_sync(client: &AgentClient) -> Option<SemiSyncStatus> {
    client.health().await.ok()?.semi_sync
}

async fn ids(client: &AgentClient) -> BTreeSet<u64> {
    let r = client
        .execute(&sql("SELECT id FROM t"))
        .await
        .expect("reading ids");
    r.rows
        .iter()
        .map(|row| row[0].as_deref().unwrap().parse().unwrap())
        .collect()
}

async fn make_primary(topo: &Topo, agent: &TabletAgent, client: &AgentClient, term: u64) {
    client.promote(term).await.expect("promote");
    topo.update_shard(KS, "0", |s| {
        s.primary_alias = Some(agent.alias().clone());
        s.primary_term = term;
        Ok(())
    })
    .await
    .unwrap();
}

async fn replicate(client: &AgentClient, primary: &TabletAgent) {
    client
        .replicate_from(&ReplicateFrom {
            primary_alias: primary.alias().clone(),
            host: "127.0.0.1".into(),
            port: primary.mysql_port(),
            tablet_type: None,
        })
        .await
        .expect("replicate_from");
}

async fn wait_semi_sync_on(client: &AgentClient, what: &str) -> SemiSyncStatus {
    wait_for(what, Duration::from_secs(90), || async {
        semi_sync(client)
            .await
            .filter(|s| s.primary_enabled && s.clients >= 1)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_killed_primary() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = topo_with_policy(dir.path(), DurabilityPolicy::SemiSync).await;
    let ((a, client_a), (b, client_b), (c, client_c)) = tokio::join!(
        common::start_agent(common::tablet_config(dir.path(), KS, 400), &topo),
        common::start_agent(common::tablet_config(dir.path(), KS, 401), &topo),
        common::start_agent(common::tablet_config(dir.path(), KS, 402), &topo),
    );

    // Bootstrap: a fresh primary with no replica attached must not block.
    make_primary(&topo, &a, &client_a, 1).await;
    let created = tokio::time::timeout(
        Duration::from_secs(30),
        client_a.execute(&sql(
            "CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY); INSERT INTO t VALUES (1)",
        )),
    )
    .await;
    assert!(
        matches!(created, Ok(Ok(_))),
        "bootstrap writes blocked or failed: {created:?}"
    );
    let before = semi_sync(&client_a).await.expect("semi-sync status");
    assert!(
        !before.primary_enabled,
        "no replica yet: semi-sync must still be off"
    );

    replicate(&client_b, &a).await;
    replicate(&client_c, &a).await;
    let on = wait_semi_sync_on(&client_a, "primary semi-sync on").await;
    let replica = wait_for("replica acknowledging", Duration::from_secs(60), || async {
        semi_sync(&client_b).await.filter(|s| s.replica_enabled)
    })
    .await;
    assert!(!replica.primary_enabled);

    for id in 2..=6 {
        client_a
            .execute(&sql(&format!("INSERT INTO t VALUES ({id})")))
            .await
            .unwrap();
    }
    let after = semi_sync(&client_a).await.unwrap();
    assert!(
        after.yes_tx >= on.yes_tx + 5,
        "acknowledged commits must grow: {on:?} -> {after:?}"
    );
    assert_eq!(after.no_tx, on.no_tx, "no commit went out unacknowledged");

    // rdonly tablets never acknowledge: the primary loses that client, and
    // gets it back when the tablet is a replica again.
    client_c.change_type(TabletType::Rdonly).await.unwrap();
    wait_for(
        "rdonly stops acknowledging",
        Duration::from_secs(60),
        || async {
            let replica = semi_sync(&client_c).await?;
            let primary = semi_sync(&client_a).await?;
            (!replica.replica_enabled && primary.clients == 1).then_some(())
        },
    )
    .await;
    client_c.change_type(TabletType::Replica).await.unwrap();
    wait_for(
        "replica acknowledges again",
        Duration::from_secs(60),
        || async {
            let replica = semi_sync(&client_c).await?;
            let primary = semi_sync(&client_a).await?;
            (replica.replica_enabled && primary.clients == 2).then_some(())
        },
    )
    .await;

    // With no replica receiving, a commit is not acknowledged (an
    // asynchronous primary would answer at once); it is once one is back.
    let (stop_b, stop_c) = tokio::join!(client_b.stop_io_thread(), client_c.stop_io_thread());
    stop_b.unwrap();
    stop_c.unwrap();
    let blocked = {
        let opts = a.config().mysqld.dba_opts(Some(KS));
        tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await?;
            conn.query_drop("INSERT INTO t VALUES (999)").await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !blocked.is_finished(),
        "a commit no replica received was acknowledged"
    );
    replicate(&client_b, &a).await;
    tokio::time::timeout(Duration::from_secs(60), blocked)
        .await
        .expect("commit acknowledged once a replica is back")
        .unwrap()
        .unwrap();
    assert!(ids(&client_b).await.contains(&999));
    replicate(&client_c, &a).await;
    wait_for(
        "both replicas attached",
        Duration::from_secs(60),
        || async { (semi_sync(&client_a).await?.clients == 2).then_some(()) },
    )
    .await;

    // A writer commits one row per statement; the ids it got an OK for are
    // the acknowledged ones.
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let writer = {
        let acked = acked.clone();
        let opts = a.config().mysqld.dba_opts(Some(KS));
        tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.expect("writer connects");
            for id in 1000u64.. {
                let insert = conn.exec_drop("INSERT INTO t VALUES (?)", (id,));
                match tokio::time::timeout(Duration::from_secs(60), insert).await {
                    Ok(Ok(())) => acked.lock().unwrap().push(id),
                    _ => return,
                }
            }
        })
    };
    wait_for("writer under way", Duration::from_secs(120), || async {
        (acked.lock().unwrap().len() >= 200).then_some(())
    })
    .await;
    let pid = a.mysqld_pid().await.expect("primary mysqld pid");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    // As an emergency reparent does: nothing more from the old primary
    // (its agent restarts mysqld within seconds).
    let (pos_b, pos_c) = tokio::join!(client_b.stop_io_thread(), client_c.stop_io_thread());
    let (pos_b, pos_c) = (pos_b.unwrap(), pos_c.unwrap());
    let _ = writer.await;
    let acked: BTreeSet<u64> = acked.lock().unwrap().iter().copied().collect();

    let mut on_replicas = BTreeSet::new();
    let mut best: Option<(usize, &TabletAgent, &AgentClient)> = None;
    for (agent, client, pos) in [(&b, &client_b, &pos_b), (&c, &client_c, &pos_c)] {
        let applied = client
            .wait_for_position(&pos.gtid_io_pos, Duration::from_secs(120))
            .await
            .unwrap();
        assert!(applied.reached, "replica applies what it received");
        let have = ids(client).await;
        if best.as_ref().is_none_or(|(n, _, _)| have.len() > *n) {
            best = Some((have.len(), agent, client));
        }
        on_replicas.extend(have);
    }
    let lost: Vec<_> = acked.difference(&on_replicas).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes of {} are on no replica: {lost:?}",
        lost.len(),
        acked.len()
    );
    eprintln!(
        "semi-sync: {} acknowledged writes before kill -9, all on a replica",
        acked.len()
    );

    // The most advanced replica becomes primary; it starts with semi-sync
    // off and turns it on once the other replica is attached again.
    let (_, new_primary, new_client) = best.unwrap();
    let other = if std::ptr::eq(new_primary, &b) {
        &client_c
    } else {
        &client_b
    };
    make_primary(&topo, new_primary, new_client, 2).await;
    let promoted = semi_sync(new_client).await.unwrap();
    assert!(!promoted.primary_enabled && !promoted.replica_enabled);
    assert!(acked.is_subset(&ids(new_client).await));
    replicate(other, new_primary).await;
    let on = wait_semi_sync_on(new_client, "new primary semi-sync on").await;
    new_client
        .execute(&sql("INSERT INTO t VALUES (7)"))
        .await
        .unwrap();
    let after = semi_sync(new_client).await.unwrap();
    assert!(after.yes_tx > on.yes_tx, "{on:?} -> {after:?}");

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    c.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_none_leaves_semi_sync_off() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = topo_with_policy(dir.path(), DurabilityPolicy::None).await;
    let ((a, client_a), (b, client_b)) = tokio::join!(
        common::start_agent(common::tablet_config(dir.path(), KS, 410), &topo),
        common::start_agent(common::tablet_config(dir.path(), KS, 411), &topo),
    );
    make_primary(&topo, &a, &client_a, 1).await;
    replicate(&client_b, &a).await;
    client_a
        .execute(&sql(
            "CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY); INSERT INTO t VALUES (1)",
        ))
        .await
        .unwrap();
    wait_for("row replicated", Duration::from_secs(60), || async {
        (ids(&client_b).await.len() == 1).then_some(())
    })
    .await;
    // Give the monitors a few ticks to (wrongly) act.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let primary = semi_sync(&client_a).await.unwrap();
    let replica = semi_sync(&client_b).await.unwrap();
    assert!(!primary.primary_enabled && primary.clients == 0 && primary.yes_tx == 0);
    assert!(!replica.replica_enabled);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
