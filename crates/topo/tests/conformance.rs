//! Runs the shared store conformance suite on both backends against real
//! instances: a redb file in a temporary directory and an etcd this test
//! starts itself.

use std::sync::Arc;
use std::time::Duration;

use tessera_topo::testutil::EtcdServer;
use tessera_topo::{
    EtcdStore, Expect, Keyspace, LocalStore, Store, Topo, TopoError, conformance, open_store,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("topo.redb")).unwrap();
    conformance::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_store_conforms() {
    let etcd = EtcdServer::start_async()
        .await
        .expect("this test needs a real etcd");
    let store = EtcdStore::connect(&[etcd.endpoint()], "/tessera-test")
        .await
        .unwrap();
    assert_eq!(store.root(), "/tessera-test");
    conformance::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/topo.redb");
    let (version, deleted_version) = {
        let store = LocalStore::open(&path).unwrap();
        let topo = Topo::new(Arc::new(store.clone()));
        topo.create_keyspace(&Keyspace {
            name: "commerce".to_string(),
            ..Keyspace::default()
        })
        .await
        .unwrap();
        let gone = store.put("/gone", b"x", Expect::Absent).await.unwrap();
        store.delete("/gone", Expect::Any).await.unwrap();
        let v = store.put("/kept", b"value", Expect::Absent).await.unwrap();
        (v, gone)
    };
    // Every handle is dropped: the file is closed and must reopen with the data.
    let store = LocalStore::open(&path).unwrap();
    let kept = store
        .get("/kept")
        .await
        .unwrap()
        .expect("data survives reopen");
    assert_eq!(kept.value, b"value");
    assert_eq!(kept.version, version);
    assert_eq!(store.get("/gone").await.unwrap(), None);
    let topo = Topo::new(Arc::new(store.clone()));
    assert_eq!(
        topo.get_keyspace("commerce").await.unwrap().unwrap().name,
        "commerce"
    );
    // The revision counter survives too, so versions keep growing.
    let next = store.put("/gone", b"y", Expect::Absent).await.unwrap();
    assert!(next > version && next > deleted_version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_is_shared_within_a_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topo.redb");
    let first = LocalStore::open(&path).unwrap();
    // A second spelling of the same file gets the same store, locks included.
    let second = LocalStore::open(&dir.path().join(".").join("topo.redb")).unwrap();
    second.put("/a", b"1", Expect::Absent).await.unwrap();
    assert_eq!(first.get("/a").await.unwrap().unwrap().value, b"1");
    let guard = first
        .lock("shared", Duration::from_secs(10), Duration::ZERO)
        .await
        .unwrap();
    assert!(matches!(
        second
            .lock("shared", Duration::from_secs(10), Duration::ZERO)
            .await,
        Err(TopoError::LockTimeout(_))
    ));
    guard.unlock().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_store_parses_specs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.redb");
    let local = open_store(&format!("local:{}", path.display()))
        .await
        .unwrap();
    local.put("/x", b"1", Expect::Absent).await.unwrap();
    assert!(path.exists());

    for bad in [
        "",
        "local:",
        "zookeeper:127.0.0.1:2181",
        "etcd:",
        "etcd:?root=/x",
        "etcd:http://127.0.0.1:1?colour=red",
    ] {
        let err = open_store(bad).await.err().expect("bad spec must fail");
        assert!(
            err.to_string().contains("bad topology spec"),
            "{bad:?}: unclear error {err}"
        );
    }

    let etcd = EtcdServer::start_async()
        .await
        .expect("this test needs a real etcd");
    let store = open_store(&etcd.topo_spec("/specroot")).await.unwrap();
    store.put("/k", b"v", Expect::Absent).await.unwrap();
    let plain = EtcdStore::connect(&[etcd.endpoint()], "").await.unwrap();
    assert_eq!(
        plain.get("/specroot/k").await.unwrap().unwrap().value,
        b"v",
        "the root prefixes every key"
    );
    let default_root = open_store(&format!("etcd:{}", etcd.endpoint()))
        .await
        .unwrap();
    default_root.put("/d", b"1", Expect::Absent).await.unwrap();
    assert!(plain.get("/tessera/d").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_unreachable_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let err = EtcdStore::connect(std::slice::from_ref(&endpoint), "/x")
        .await
        .err()
        .expect("nothing listens there");
    assert!(matches!(err, TopoError::Backend(_)));
    assert!(
        err.to_string().contains(&endpoint),
        "error names the endpoint: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_outage_ends_watches_and_fails_requests() {
    let mut etcd = EtcdServer::start_async()
        .await
        .expect("this test needs a real etcd");
    let store = EtcdStore::connect(&[etcd.endpoint()], "/t").await.unwrap();
    let mut watch = store.watch("/w/").await.unwrap();
    etcd.kill();
    use futures::StreamExt;
    let ended = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("a watch notices the outage");
    assert!(matches!(ended, Some(Err(TopoError::Backend(_))) | None));
    let failed = tokio::time::timeout(Duration::from_secs(60), store.get("/w/x"))
        .await
        .expect("requests fail rather than hang");
    assert!(matches!(failed, Err(TopoError::Backend(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_lock_of_a_dead_holder_expires() {
    let etcd = EtcdServer::start_async()
        .await
        .expect("this test needs a real etcd");
    let store = EtcdStore::connect(&[etcd.endpoint()], "/dead")
        .await
        .unwrap();
    // What a crashed holder leaves behind: the lock key on a lease nobody renews.
    let mut raw = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .unwrap();
    let lease = raw.lease_grant(2, None).await.unwrap().id();
    raw.put(
        "/dead/locks/shard",
        "crashed",
        Some(etcd_client::PutOptions::new().with_lease(lease)),
    )
    .await
    .unwrap();
    assert!(matches!(
        store
            .lock("shard", Duration::from_secs(5), Duration::from_millis(200))
            .await,
        Err(TopoError::LockTimeout(_))
    ));
    let started = std::time::Instant::now();
    let guard = store
        .lock("shard", Duration::from_secs(5), Duration::from_secs(30))
        .await
        .expect("the dead holder's lease runs out");
    assert!(started.elapsed() >= Duration::from_millis(500));
    guard.unlock().await.unwrap();
    assert!(
        raw.get("/dead/locks/shard", None)
            .await
            .unwrap()
            .kvs()
            .is_empty(),
        "unlock deletes the lock key"
    );
}
