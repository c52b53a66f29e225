//! Helpers shared by the tablet crate's integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

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

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

use std::path::Path;
use std::sync::Arc;

use tessera_tablet::{AgentClient, TabletAgent, TabletConfig};
use tessera_topo::{KeyRange, Keyspace, LocalStore, Shard, TabletAlias, Topo};

/// A topology in `dir` holding keyspace `ks` with the one unsharded shard `0`.
pub async fn topo_with_shard(dir: &Path, ks: &str) -> Topo {
    let store = LocalStore::open(&dir.join("topo.redb")).expect("open local topo");
    let topo = Topo::new(Arc::new(store));
    topo.create_keyspace(&Keyspace {
        name: ks.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    topo.create_shard(&Shard {
        keyspace: ks.into(),
        name: "0".into(),
        key_range: KeyRange::default(),
        ..Default::default()
    })
    .await
    .unwrap();
    topo
}

/// A tablet config for shard `0` of `ks` with fresh ports under `dir`.
pub fn tablet_config(dir: &Path, ks: &str, uid: u32) -> TabletConfig {
    TabletConfig::local(
        dir.join(format!("t{uid}")),
        TabletAlias::new("zone1", uid),
        ks,
        "0",
        free_port(),
        0,
    )
}

pub async fn start_agent(cfg: TabletConfig, topo: &Topo) -> (TabletAgent, AgentClient) {
    let agent = TabletAgent::start(cfg, topo.clone())
        .await
        .expect("agent starts");
    let client = AgentClient::new(&agent.agent_addr().to_string());
    (agent, client)
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
