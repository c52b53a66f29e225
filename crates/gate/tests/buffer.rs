//! Buffering during a primary change, with real tablet agents (primary +
//! replica) on etcd: a planned switch done by hand while a writer inserts
//! through the gate loses no acknowledged write and shows the client no
//! error; a primary that stays read-only makes clients fail with the
//! retryable 1105 once the window ends. On a semi_sync keyspace, writes
//! whose answers a relay in front of the old primary swallowed are settled
//! from their write markers on the new primary.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::{CELL, free_port};
use mysql_async::prelude::*;
use tessera_gate::{Gate, GateConfig};
use tessera_tablet::agent::{TabletAgent, TabletConfig};
use tessera_tablet::api::{AgentClient, ReplicateFrom};
use tessera_topo::testutil::EtcdServer;
use tessera_topo::{DurabilityPolicy, Keyspace, Shard, TabletAlias, TabletType, Topo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Cluster {
    _etcd: EtcdServer,
    topo: Topo,
    _dir: tempfile::TempDir,
    primary: Option<TabletAgent>,
    primary_alias: TabletAlias,
    replica: Option<TabletAgent>,
    replica_alias: TabletAlias,
    replica_port: u16,
}

impl Cluster {
    async fn start(prefix: &str) -> Cluster {
        Self::start_with(prefix, DurabilityPolicy::None).await
    }

    async fn start_with(prefix: &str, durability_policy: DurabilityPolicy) -> Cluster {
        let etcd = EtcdServer::start_async().await.expect("etcd starts");
        let store = tessera_topo::open_store(&etcd.topo_spec(prefix))
            .await
            .expect("etcd store");
        let topo = Topo::new(Arc::clone(&store));
        let dir = tempfile::Builder::new()
            .prefix("gb")
            .tempdir_in("/tmp")
            .unwrap();
        let primary_alias = TabletAlias::new(CELL, 200);
        let replica_alias = TabletAlias::new(CELL, 201);
        topo.create_keyspace(&Keyspace {
            name: "ks".into(),
            durability_policy,
            ..Default::default()
        })
        .await
        .unwrap();
        topo.create_shard(&Shard {
            keyspace: "ks".into(),
            name: "0".into(),
            primary_alias: Some(primary_alias.clone()),
            primary_term: 1,
            is_primary_serving: true,
            ..Default::default()
        })
        .await
        .unwrap();
        let cfg = |alias: &TabletAlias, sub: &str| {
            TabletConfig::local(
                dir.path().join(sub),
                alias.clone(),
                "ks",
                "0",
                free_port(),
                free_port(),
            )
        };
        let primary_cfg = cfg(&primary_alias, "t200");
        let primary = TabletAgent::start(primary_cfg, topo.clone())
            .await
            .expect("primary agent starts");
        let replica_cfg = cfg(&replica_alias, "t201");
        let replica_port = replica_cfg.mysqld.port;
        let replica = TabletAgent::start(replica_cfg, topo.clone())
            .await
            .expect("replica agent starts");
        Cluster {
            _etcd: etcd,
            topo,
            _dir: dir,
            primary: Some(primary),
            primary_alias,
            replica: Some(replica),
            replica_alias,
            replica_port,
        }
    }

    fn primary_client(&self) -> AgentClient {
        AgentClient::new(&self.primary.as_ref().unwrap().agent_addr().to_string())
    }

    fn replica_client(&self) -> AgentClient {
        AgentClient::new(&self.replica.as_ref().unwrap().agent_addr().to_string())
    }

    async fn start_gate(&self, window: Duration, max_queued: usize) -> Gate {
        let gate = Gate::start(
            GateConfig {
                cell: CELL.into(),
                mysql_listen: "127.0.0.1:0".parse().unwrap(),
                http_listen: "127.0.0.1:0".parse().unwrap(),
                health_interval: Duration::from_millis(500),
                pool_size: 8,
                buffer_window: window,
                buffer_max_queued: max_queued,
                ..Default::default()
            },
            self.topo.clone(),
        )
        .await
        .expect("gate starts");
        assert!(gate.wait_ready(Duration::from_secs(60)).await);
        gate
    }

    async fn stop(mut self) {
        for agent in [self.replica.take(), self.primary.take()]
            .into_iter()
            .flatten()
        {
            let _ = tokio::time::timeout(Duration::from_secs(60), agent.shutdown()).await;
        }
    }
}

fn opts(gate: &Gate) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(gate.mysql_addr().port())
        .user(Some("user"))
        .pass(Some(""))
        .db_name(Some("ks"))
        .prefer_socket(false)
        .into()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_switch_loses_no_acknowledged_write() {
    let cluster = Cluster::start("/buffertest").await;
    let gate = cluster.start_gate(Duration::from_secs(10), 1000).await;
    let mut setup = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    setup
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();

    // Two writers, one with prepared statements and one with text queries:
    // autocommit inserts one after another, each acknowledged id and each
    // error recorded, with the longest time one insert took.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [(0u32, true), (1_000_000, false)]
        .into_iter()
        .map(|(base, prepared)| {
            let stop = stop.clone();
            let opts = opts(&gate);
            tokio::spawn(async move {
                let mut conn = mysql_async::Conn::new(opts).await.unwrap();
                let (mut acked, mut errors) = (Vec::new(), Vec::new());
                let mut max_pause = Duration::ZERO;
                let mut id = base;
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    let started = Instant::now();
                    let result = if prepared {
                        conn.exec_drop("INSERT INTO t VALUES (?)", (id,)).await
                    } else {
                        conn.query_drop(format!("INSERT INTO t VALUES ({id})"))
                            .await
                    };
                    match result {
                        Ok(()) => acked.push(id),
                        Err(e) => errors.push(format!("id {id}: {e}")),
                    }
                    max_pause = max_pause.max(started.elapsed());
                }
                (acked, errors, max_pause)
            })
        })
        .collect();
    // A session with state on the old primary, and one with a transaction
    // open there: neither can move to the new primary.
    let mut reserved = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    reserved.query_drop("SET @x = 1").await.unwrap();
    let mut tx = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    tx.query_drop("BEGIN").await.unwrap();
    tx.query_drop("INSERT INTO t VALUES (2000000)")
        .await
        .unwrap();
    // Writes flow before the switch.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let old = cluster.primary_client();
    let new = cluster.replica_client();
    let switch_started = Instant::now();
    old.set_read_only(true)
        .await
        .expect("old primary read-only");
    let old_pos = old.health().await.unwrap().gtid_binlog_pos;
    eventually("the replica to catch up", || async {
        new.health()
            .await
            .is_ok_and(|h| h.gtid_current_pos == old_pos || h.gtid_slave_pos == old_pos)
    })
    .await;
    switch_to_replica(&cluster).await;
    let switch_took = switch_started.elapsed();
    old.replicate_from(&ReplicateFrom {
        primary_alias: cluster.replica_alias.clone(),
        host: "127.0.0.1".into(),
        port: cluster.replica_port,
        tablet_type: Some(TabletType::Replica),
    })
    .await
    .expect("repoint the old primary");

    // Writes flow after the switch, on the new primary.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut errors, mut max_pause) = (Vec::new(), Vec::new(), Duration::ZERO);
    for writer in writers {
        let (a, e, pause) = writer.await.unwrap();
        assert!(a.len() > 10, "too few writes: {}", a.len());
        acked.extend(a);
        errors.extend(e);
        max_pause = max_pause.max(pause);
    }
    println!(
        "planned switch: {} writes acknowledged, {} errors, switch took {switch_took:?}, max write pause {max_pause:?}",
        acked.len(),
        errors.len()
    );
    assert!(errors.is_empty(), "client errors: {errors:?}");

    let server_error = |r: Result<(), mysql_async::Error>| match r {
        Err(mysql_async::Error::Server(e)) => (e.code, e.message),
        other => panic!("expected a server error, got {other:?}"),
    };
    let (code, message) = server_error(reserved.query_drop("SELECT @x").await);
    assert_eq!(code, 1105, "{message}");
    assert!(
        message.contains("session state on the old primary") && message.ends_with("retry"),
        "{message}"
    );
    let port: Option<u16> = reserved.query_first("SELECT @@port").await.unwrap();
    assert_eq!(port, Some(cluster.replica_port), "the session moved on");
    let (code, message) = server_error(tx.query_drop("INSERT INTO t VALUES (2000001)").await);
    assert_eq!(
        (code, message.as_str()),
        (
            1105,
            "transaction aborted by a primary change; retry the transaction"
        )
    );
    tx.query_drop("INSERT INTO t VALUES (2000002)")
        .await
        .unwrap();

    let port: Option<u16> = setup.query_first("SELECT @@port").await.unwrap();
    assert_eq!(
        port,
        Some(cluster.replica_port),
        "writes go to the new primary"
    );
    let direct = mysql_async::Conn::new(
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(cluster.replica_port)
            .user(Some("tessera_app"))
            .pass(Some("tessera_app_pw"))
            .db_name(Some("ks"))
            .prefer_socket(false),
    )
    .await;
    // Read through the gate if the app user cannot log in directly.
    let present: Vec<u32> = match direct {
        Ok(mut c) => c.query("SELECT id FROM t ORDER BY id").await.unwrap(),
        Err(_) => setup.query("SELECT id FROM t ORDER BY id").await.unwrap(),
    };
    let present: std::collections::HashSet<u32> = present.into_iter().collect();
    let missing: Vec<u32> = acked
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(
        !present.contains(&2000000) && !present.contains(&2000001),
        "the aborted transaction left rows"
    );
    assert!(present.contains(&2000002));
    assert!(
        gate.metrics().buffered.get() > 0,
        "the switch was buffered, not missed"
    );
    assert_eq!(gate.metrics().buffer_timeouts.get(), 0);

    for c in [setup, reserved, tx] {
        c.disconnect().await.ok();
    }
    gate.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_ends_with_a_retryable_error() {
    let cluster = Cluster::start("/buffertimeout").await;
    let window = Duration::from_secs(1);
    // One statement may wait; a second one at the same time is refused.
    let gate = cluster.start_gate(window, 1).await;
    let mut conn = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();

    // A transaction open on the primary when it turns read-only.
    let mut tx = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    tx.query_drop("BEGIN").await.unwrap();
    tx.query_drop("INSERT INTO t VALUES (100)").await.unwrap();
    // Connected now: connecting later would itself wait in the buffer.
    let mut second = mysql_async::Conn::new(opts(&gate)).await.unwrap();

    cluster
        .primary_client()
        .set_read_only(true)
        .await
        .expect("primary read-only");
    let started = Instant::now();
    let first = tokio::spawn(async move {
        let result = conn.query_drop("INSERT INTO t VALUES (2)").await;
        (conn, result, started.elapsed())
    });
    eventually("the first insert to be buffered", || async {
        gate.metrics().buffered.get() >= 1
    })
    .await;
    let status: serde_json::Value =
        reqwest::get(format!("http://{}/debug/status", gate.http_addr()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let buffering = &status["buffering"][0];
    assert_eq!(buffering["keyspace"], "ks", "{status}");
    assert_eq!(buffering["shard"], "0", "{status}");
    assert_eq!(buffering["queued"], 1, "{status}");
    assert_eq!(buffering["failed_primary"], "zone1-0000000200", "{status}");
    let refused_at = Instant::now();
    let err = second
        .query_drop("INSERT INTO t VALUES (4)")
        .await
        .expect_err("the buffer is full");
    let refused_after = refused_at.elapsed();
    match &err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1105, "{e:?}");
            assert!(
                e.message
                    .starts_with("primary of ks/0 is changing and 1 queries already wait"),
                "{e:?}"
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(refused_after < window, "refused after {refused_after:?}");
    assert_eq!(gate.metrics().buffer_full.get(), 1);

    let (mut conn, result, waited) = first.await.unwrap();
    let err = result.expect_err("nobody was promoted");
    match &err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1105, "{e:?}");
            assert!(
                e.message.starts_with("primary of ks/0 is changing; retry"),
                "{e:?}"
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        waited >= window - Duration::from_millis(100) && waited < window * 5,
        "failed after {waited:?}"
    );
    println!("window {window:?}: the client got its error after {waited:?}");
    assert!(gate.metrics().buffer_timeouts.get() >= 1);

    let err = tx
        .query_drop("INSERT INTO t VALUES (101)")
        .await
        .expect_err("the transaction cannot go on");
    match &err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1105, "{e:?}");
            assert!(e.message.contains("transaction aborted"), "{e:?}");
        }
        other => panic!("unexpected error {other:?}"),
    }

    // Undoing read-only ends buffering without any promotion.
    cluster.primary_client().set_read_only(false).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = conn.query_drop("INSERT INTO t VALUES (3)").await {
        assert!(Instant::now() < deadline, "writes never worked again: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: Vec<u32> = conn.query("SELECT id FROM t ORDER BY id").await.unwrap();
    assert_eq!(ids, vec![1, 3], "the aborted transaction left nothing");

    for c in [conn, tx, second] {
        c.disconnect().await.ok();
    }
    gate.shutdown().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_crash_reads_wait_and_writes_are_never_doubled() {
    let cluster = Cluster::start("/buffercrash").await;
    let gate = cluster.start_gate(Duration::from_secs(30), 1000).await;
    let mut setup = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    setup
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let opts = opts(&gate);
        tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let (mut reads, mut errors) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match conn.query_first::<i64, _>("SELECT COUNT(*) FROM t").await {
                    Ok(_) => reads += 1,
                    Err(e) => errors.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (reads, errors)
        })
    };
    let writer = {
        let stop = stop.clone();
        let opts = opts(&gate);
        tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let (mut acked, mut errors) = (Vec::new(), Vec::new());
            let mut id = 0u32;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                match conn.exec_drop("INSERT INTO t VALUES (?)", (id,)).await {
                    Ok(()) => acked.push(id),
                    Err(e) => errors.push((id, e)),
                }
            }
            (acked, errors)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    let primary = cluster.primary.as_ref().unwrap();
    let old_pid = primary.mysqld_pid().await.expect("mysqld runs");
    let killed = std::process::Command::new("kill")
        .args(["-9", &old_pid.to_string()])
        .status()
        .expect("running kill");
    assert!(killed.success());
    let killed_at = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pid = primary.mysqld_pid().await;
        if pid.is_some_and(|p| p != old_pid) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never restarted mysqld"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Writes flow again on the restarted primary.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let buffered = gate.metrics().buffered.get();
    stop.store(true, Ordering::Relaxed);
    let (reads, read_errors) = reader.await.unwrap();
    let (acked, write_errors) = writer.await.unwrap();
    println!(
        "primary crash: mysqld back after {:?}; {reads} reads, {} writes acknowledged, write errors {:?}",
        killed_at.elapsed(),
        acked.len(),
        write_errors
            .iter()
            .map(|(id, e)| format!("id {id}: {e}"))
            .collect::<Vec<_>>()
    );
    assert!(read_errors.is_empty(), "reads failed: {read_errors:?}");
    assert!(buffered > 0, "statements were buffered");
    for (id, e) in &write_errors {
        // Only the insert in flight when mysqld died may fail, and only as
        // "outcome unknown": a replay would have shown as a duplicate key.
        match e {
            mysql_async::Error::Server(s) => {
                assert!(
                    s.code == 2013 || s.code == 1105,
                    "id {id}: unexpected error {s:?}"
                );
            }
            other => panic!("id {id}: unexpected error {other:?}"),
        }
    }
    // The one in flight, and at most one more if the gate sent it on a
    // pooled connection in the instant before it saw that connection close.
    assert!(write_errors.len() <= 2, "errors: {write_errors:?}");
    let present: Vec<u32> = setup.query("SELECT id FROM t ORDER BY id").await.unwrap();
    let present: std::collections::HashSet<u32> = present.into_iter().collect();
    let missing: Vec<u32> = acked
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(
        acked.last() > write_errors.last().map(|(id, _)| id),
        "writes went on after the crash"
    );

    setup.disconnect().await.ok();
    gate.shutdown().await;
    cluster.stop().await;
}

/// Statements running on a primary when the topology names another one are
/// ended at once instead of waiting for the old primary's answer (which a
/// host cut off the network never sends): a read in autocommit runs again
/// on the new primary, a write reports "outcome unknown" (2013), a
/// statement inside a transaction a retryable 1105.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_in_flight_end_when_the_primary_moves() {
    let cluster = Cluster::start("/bufferdeposed").await;
    let gate = cluster.start_gate(Duration::from_secs(10), 1000).await;
    let mut setup = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    setup
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    setup
        .query_drop("INSERT INTO t VALUES (1, 0)")
        .await
        .unwrap();
    let new = cluster.replica_client();
    eventually("the replica to have the row", || async {
        new.execute(&tessera_tablet::api::ExecuteRequest {
            sql: "SELECT COUNT(*) FROM t".into(),
            db: None,
            skip_binlog: false,
        })
        .await
        .is_ok_and(|r| r.rows.first().and_then(|r| r[0].clone()).as_deref() == Some("1"))
    })
    .await;

    // Each statement sleeps far longer on the old primary than it may take.
    let timed = |sql: &'static str, in_tx: bool| {
        let opts = opts(&gate);
        tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            if in_tx {
                conn.query_drop("BEGIN").await.unwrap();
                conn.query_drop("INSERT INTO t VALUES (2, 0)")
                    .await
                    .unwrap();
            }
            let outcome = conn.query_first::<i64, _>(sql).await;
            (outcome, Instant::now())
        })
    };
    let read = timed("SELECT SLEEP(3) + @@server_id", false);
    let write = timed("UPDATE t SET v = v + 1 + SLEEP(8) WHERE id = 1", false);
    let in_tx = timed("SELECT SLEEP(8)", true);
    tokio::time::sleep(Duration::from_millis(700)).await;

    switch_to_replica(&cluster).await;
    let switched = Instant::now();

    let (read, read_at) = read.await.unwrap();
    let (write, write_at) = write.await.unwrap();
    let (in_tx, in_tx_at) = in_tx.await.unwrap();
    println!(
        "deposed primary: read {read:?} after {:?}; write {write:?} after {:?}; in a transaction {in_tx:?} after {:?}",
        read_at - switched,
        write_at - switched,
        in_tx_at - switched
    );
    // The read's sleep restarted on the new primary (server id 201).
    assert_eq!(read.expect("the read succeeds"), Some(201));
    let code = |r: &Result<Option<i64>, mysql_async::Error>| match r {
        Err(mysql_async::Error::Server(s)) => Some((s.code, s.message.clone())),
        _ => None,
    };
    let (write_code, write_msg) = code(&write).expect("the write fails");
    assert_eq!(write_code, 2013, "{write_msg}");
    assert!(
        write_msg.contains("stopped being the shard's primary"),
        "{write_msg}"
    );
    let (tx_code, tx_msg) = code(&in_tx).expect("the statement in the transaction fails");
    assert_eq!(tx_code, 1105, "{tx_msg}");
    assert!(tx_msg.contains("retry the transaction"), "{tx_msg}");
    // Well before the old primary would have answered (8 s of sleep).
    for (what, at) in [("write", write_at), ("transaction", in_tx_at)] {
        assert!(
            at - switched < Duration::from_secs(4),
            "the {what} waited for the old primary: {:?}",
            at - switched
        );
    }

    setup.disconnect().await.ok();
    gate.shutdown().await;
    cluster.stop().await;
}

/// A TCP relay in front of a mysqld that can stop delivering in one
/// direction, as a network that goes silent would.
struct Relay {
    port: u16,
    mode: Arc<AtomicU8>,
}

const RELAY_PASSES: u8 = 0;
const RELAY_DROPS_ANSWERS: u8 = 1;
const RELAY_DROPS_REQUESTS: u8 = 2;

impl Relay {
    async fn start(target_port: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(RELAY_PASSES));
        let modes = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = modes.clone();
                tokio::spawn(async move {
                    let Ok(server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                    else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        Self::pipe(
                            client_read,
                            server_write,
                            mode.clone(),
                            RELAY_DROPS_REQUESTS
                        ),
                        Self::pipe(server_read, client_write, mode, RELAY_DROPS_ANSWERS),
                    );
                });
            }
        });
        Relay { port, mode }
    }

    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mode: Arc<AtomicU8>,
        dropped_in: u8,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if mode.load(Ordering::SeqCst) == dropped_in {
                continue;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// A semi_sync cluster whose primary the gate reaches through a relay, with
/// rows (1, 0), (2, 0) in `t`, and a session holding an open transaction
/// that added 10 to row 2.
async fn marker_setup(prefix: &str) -> (Cluster, Relay, Gate, mysql_async::Conn) {
    let cluster = Cluster::start_with(prefix, DurabilityPolicy::SemiSync).await;
    let primary_port = cluster.primary.as_ref().unwrap().mysql_port();
    let relay = Relay::start(primary_port).await;
    cluster
        .topo
        .update_tablet(&cluster.primary_alias, |t| {
            t.mysql_port = relay.port;
            Ok(())
        })
        .await
        .unwrap();
    let gate = cluster.start_gate(Duration::from_secs(10), 1000).await;
    let mut setup = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    setup
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    setup
        .query_drop("INSERT INTO t VALUES (1, 0), (2, 0)")
        .await
        .unwrap();
    setup.disconnect().await.unwrap();
    let replica = cluster.replica_client();
    eventually("the replica to have the rows", || async {
        replica_values(&replica).await == Some(vec!["0".into(), "0".into()])
    })
    .await;
    let mut tx = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    tx.query_drop("BEGIN").await.unwrap();
    tx.query_drop("UPDATE t SET v = v + 10 WHERE id = 2")
        .await
        .unwrap();
    (cluster, relay, gate, tx)
}

/// `v` of rows 1 and 2 on the replica.
async fn replica_values(replica: &AgentClient) -> Option<Vec<String>> {
    let result = replica
        .execute(&tessera_tablet::api::ExecuteRequest {
            sql: "SELECT v FROM t ORDER BY id".into(),
            db: None,
            skip_binlog: false,
        })
        .await
        .ok()?;
    result.rows.into_iter().map(|r| r[0].clone()).collect()
}

/// Promotes the replica and names it primary in the topology (term 2), as
/// a reparent would once the old primary can no longer commit anything.
async fn switch_to_replica(cluster: &Cluster) {
    cluster
        .replica_client()
        .promote(2)
        .await
        .expect("promote the replica");
    cluster
        .topo
        .update_shard("ks", "0", |s| {
            s.primary_alias = Some(cluster.replica_alias.clone());
            s.primary_term = 2;
            Ok(())
        })
        .await
        .unwrap();
}

/// Runs `sql` in the background; its outcome with the affected-row count.
fn spawn_statement(
    mut conn: mysql_async::Conn,
    sql: &'static str,
) -> tokio::task::JoinHandle<Outcome> {
    tokio::spawn(async move {
        conn.query_drop(sql).await?;
        Ok(conn.affected_rows())
    })
}

type Outcome = Result<u64, mysql_async::Error>;

/// The outcomes of the autocommit write and the COMMIT, each within 20 s.
async fn answers(
    write: tokio::task::JoinHandle<Outcome>,
    commit: tokio::task::JoinHandle<Outcome>,
) -> (Outcome, Outcome) {
    let within = |what: &'static str, task: tokio::task::JoinHandle<Outcome>| async move {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .unwrap_or_else(|_| panic!("the {what} is answered"))
            .unwrap()
    };
    (within("write", write).await, within("commit", commit).await)
}

/// (id, v, server id) of every row of `t`, read through the gate.
async fn rows_and_server(gate: &Gate) -> Vec<(i32, i32, u32)> {
    let mut check = mysql_async::Conn::new(opts(gate)).await.unwrap();
    let values = check
        .query("SELECT id, v, @@server_id FROM t ORDER BY id")
        .await
        .unwrap();
    check.disconnect().await.ok();
    values
}

/// The old primary committed an autocommit write and a transaction, and
/// replicated them, but their answers never reached the gate: the gate
/// answers both from their markers on the new primary without running
/// anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_of_committed_writes_come_from_their_markers() {
    let (cluster, relay, gate, tx) = marker_setup("/markerscommitted").await;
    let mut writer = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    // A marked write that answers with rows (MariaDB's RETURNING), text and
    // prepared: the rows come through, the status shows no transaction.
    let returned: Vec<(i32, i32)> = writer
        .query("INSERT INTO t VALUES (3, 7) RETURNING id, v")
        .await
        .unwrap();
    assert_eq!(returned, vec![(3, 7)]);
    let returned: Vec<(i32, i32)> = writer
        .exec("DELETE FROM t WHERE id = ? RETURNING id, v", (3,))
        .await
        .unwrap();
    assert_eq!(returned, vec![(3, 7)]);
    let in_tx: Option<i32> = writer.query_first("SELECT @@in_transaction").await.unwrap();
    assert_eq!(in_tx, Some(0));
    // An error inside the gate's transaction reaches the client as is.
    let dup = writer
        .query_drop("INSERT INTO t VALUES (1, 0)")
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("1062"), "{dup}");
    relay.set(RELAY_DROPS_ANSWERS);
    let write = spawn_statement(writer, "UPDATE t SET v = v + 1 WHERE id = 1");
    let commit = spawn_statement(tx, "COMMIT");
    let replica = cluster.replica_client();
    eventually("both commits to reach the replica", || async {
        replica_values(&replica).await == Some(vec!["1".into(), "10".into()])
    })
    .await;
    assert!(
        !write.is_finished() && !commit.is_finished(),
        "no answer got through the relay"
    );
    let resolved_before = gate.metrics().marked_writes_resolved.get();
    switch_to_replica(&cluster).await;
    let (write, commit) = answers(write, commit).await;
    println!("committed, answers lost: write {write:?}, commit {commit:?}");
    assert_eq!(write.expect("the write succeeds"), 1, "affected rows");
    commit.expect("the commit succeeds");
    assert_eq!(
        gate.metrics().marked_writes_resolved.get() - resolved_before,
        2
    );
    // Nothing ran twice on the new primary.
    assert_eq!(
        rows_and_server(&gate).await,
        vec![(1, 1, 201), (2, 10, 201)]
    );
    gate.shutdown().await;
    cluster.stop().await;
}

/// The requests never reached the old primary: the autocommit write runs on
/// the new primary (once), the transaction is reported rolled back with the
/// retryable error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_lost_on_the_way_run_again_and_transactions_abort() {
    let (cluster, relay, gate, tx) = marker_setup("/markerslost").await;
    let writer = mysql_async::Conn::new(opts(&gate)).await.unwrap();
    relay.set(RELAY_DROPS_REQUESTS);
    let write = spawn_statement(writer, "UPDATE t SET v = v + 1 WHERE id = 1");
    let commit = spawn_statement(tx, "COMMIT");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !write.is_finished() && !commit.is_finished(),
        "nothing got through the relay"
    );
    switch_to_replica(&cluster).await;
    let (write, commit) = answers(write, commit).await;
    println!("requests lost: write {write:?}, commit {commit:?}");
    assert_eq!(write.expect("the write succeeds"), 1, "affected rows");
    match commit {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1105, "{e:?}");
            assert!(e.message.contains("retry the transaction"), "{e:?}");
        }
        other => panic!("the commit must fail as rolled back: {other:?}"),
    }
    assert_eq!(rows_and_server(&gate).await, vec![(1, 1, 201), (2, 0, 201)]);
    gate.shutdown().await;
    cluster.stop().await;
}
