//! The gate with real tablet agents (primary + replica replicating from it)
//! and a real etcd topology: health comes from the agents, replica reads see
//! primary writes, and when etcd dies the gate keeps serving its last table.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{CELL, free_port};
use mysql_async::prelude::*;
use tessera_gate::{Gate, GateConfig};
use tessera_tablet::agent::{TabletAgent, TabletConfig};
use tessera_topo::testutil::EtcdServer;
use tessera_topo::{Keyspace, Shard, TabletAlias, Topo};

async fn status(gate: &Gate) -> serde_json::Value {
    reqwest::get(format!("http://{}/debug/status", gate.http_addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `check` until it holds or `what` times out.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_health_replica_reads_and_store_outage() {
    let mut etcd = EtcdServer::start_async().await.expect("etcd starts");
    let store = tessera_topo::open_store(&etcd.topo_spec("/gatetest"))
        .await
        .expect("etcd store");
    let topo = Topo::new(Arc::clone(&store));
    let dir = tempfile::Builder::new()
        .prefix("ga")
        .tempdir_in("/tmp")
        .unwrap();

    let primary_alias = TabletAlias::new(CELL, 100);
    topo.create_keyspace(&Keyspace {
        name: "ks".into(),
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

    let primary_cfg = TabletConfig::local(
        dir.path().join("t100"),
        primary_alias.clone(),
        "ks",
        "0",
        free_port(),
        free_port(),
    );
    let primary_port = primary_cfg.mysqld.port;
    let primary = TabletAgent::start(primary_cfg, topo.clone())
        .await
        .expect("primary agent starts");
    let replica_cfg = TabletConfig::local(
        dir.path().join("t101"),
        TabletAlias::new(CELL, 101),
        "ks",
        "0",
        free_port(),
        free_port(),
    );
    let replica_port = replica_cfg.mysqld.port;
    let replica = TabletAgent::start(replica_cfg, topo.clone())
        .await
        .expect("replica agent starts");

    let gate = Gate::start(
        GateConfig {
            cell: CELL.into(),
            mysql_listen: "127.0.0.1:0".parse().unwrap(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            health_interval: Duration::from_millis(300),
            pool_size: 8,
            ..Default::default()
        },
        topo.clone(),
    )
    .await
    .expect("gate starts");
    assert!(gate.wait_ready(Duration::from_secs(60)).await);
    eventually("both tablets serving", || async {
        let s = status(&gate).await;
        let tablets = &s["keyspaces"][0]["shards"][0]["tablets"];
        tablets[0]["health"] == "serving" && tablets[1]["health"] == "serving"
    })
    .await;

    // The default user: "user" with an empty password.
    let opts = |db: &str| {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(gate.mysql_addr().port())
            .user(Some("user"))
            .pass(Some(""))
            .db_name(Some(db.to_string()))
            .prefer_socket(false)
    };
    let mut w = mysql_async::Conn::new(opts("ks")).await.unwrap();
    let port: Option<u16> = w.query_first("SELECT @@port").await.unwrap();
    assert_eq!(port, Some(primary_port));
    w.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
        .await
        .unwrap();
    w.query_drop("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        .await
        .unwrap();

    let mut r = mysql_async::Conn::new(opts("ks@replica")).await.unwrap();
    let port: Option<u16> = r.query_first("SELECT @@port").await.unwrap();
    assert_eq!(port, Some(replica_port));
    let mut seen = 0;
    for _ in 0..150 {
        match r.query_first::<i64, _>("SELECT COUNT(*) FROM t").await {
            Ok(Some(n)) if n == 2 => {
                seen = n;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert_eq!(seen, 2, "the replica never caught up");
    // The replica is read-only for the application user.
    let err = r
        .query_drop("INSERT INTO t VALUES (3, 'c')")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, mysql_async::Error::Server(e) if e.code == 1290),
        "{err:?}"
    );

    // etcd goes away: the gate keeps routing with what it knew.
    etcd.kill();
    eventually("the gate to notice the store outage", || async {
        !status(&gate).await["store_error"].is_null()
    })
    .await;
    let v: Option<String> = w.query_first("SELECT v FROM t WHERE id = 2").await.unwrap();
    assert_eq!(v.as_deref(), Some("b"));
    let mut fresh = mysql_async::Conn::new(opts("ks")).await.unwrap();
    let n: Option<i64> = fresh.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(2));
    let n: Option<i64> = r.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(2));
    assert!(gate.routing_table().all_primaries_routable());

    for c in [w, r, fresh] {
        c.disconnect().await.ok();
    }
    gate.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(60), replica.shutdown()).await;
    let _ = tokio::time::timeout(Duration::from_secs(60), primary.shutdown()).await;
}
