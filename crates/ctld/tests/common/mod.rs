//! Helpers shared by ctld's integration tests: a topology on a real redb
//! file, free ports, polling, and raw HTTP calls to a running ctld.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_ctld::{Ctld, CtldConfig};
use tessera_topo::{KeyRange, Keyspace, LocalStore, Shard, Topo};

/// A topology in a fresh redb file under `dir`, holding keyspace `commerce`
/// with one shard `0`.
pub async fn topo_with_commerce(dir: &std::path::Path) -> Topo {
    let store = LocalStore::open(&dir.join("topo.redb")).expect("open local topology");
    let topo = Topo::new(Arc::new(store));
    topo.create_keyspace(&Keyspace {
        name: "commerce".into(),
        ..Default::default()
    })
    .await
    .expect("create keyspace");
    topo.create_shard(&Shard {
        keyspace: "commerce".into(),
        name: "0".into(),
        key_range: KeyRange::from_shard_name("0").unwrap(),
        ..Default::default()
    })
    .await
    .expect("create shard");
    topo
}

pub async fn start_ctld(topo: &Topo, read_only: bool) -> Ctld {
    Ctld::start(
        CtldConfig {
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cell: "zone1".into(),
            read_only,
        },
        topo.clone(),
    )
    .await
    .expect("start ctld")
}

/// A loopback port that was free a moment ago.
#[allow(unused_imports)] // not every test binary starts servers itself
pub use tessera_topo::testutil::free_port;

/// Polls `check` until it returns Some or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One raw HTTP call; returns the status and the body parsed as JSON.
pub async fn call(
    method: reqwest::Method,
    url: String,
    body: Option<String>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req.send().await.expect("ctld answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    (status, json)
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}
