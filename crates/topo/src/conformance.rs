//! The behaviour every `Store` backend must show, as one suite any backend's
//! tests run against a real instance. Failures panic with what differed.
//!
//! Every run works under names of its own, so the suite can run more than
//! once against one store (a shared etcd, say) without the runs colliding.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;

use crate::{
    CellInfo, DurabilityPolicy, Expect, KeyRange, Keyspace, Shard, ShardReference, SrvKeyspace,
    SrvPartition, Store, Tablet, TabletAlias, TabletType, Topo, TopoError, WatchEvent, WatchStream,
};

/// How long a watch event may take to arrive on a loaded machine.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a released lock may take to pass to a waiter.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs every check of the suite, one after another.
pub async fn run_all(store: Arc<dyn Store>) {
    let run = run_id();
    check_create_and_versions(&store, &run).await;
    check_bad_input(&store).await;
    check_list(&store, &run).await;
    check_watch(&store, &run).await;
    check_lock_excludes(&store, &run).await;
    check_dropped_lock_is_released(&store, &run).await;
    check_lock_outlives_ttl(&store, &run).await;
    check_topo_records(&store, &run).await;
    check_topo_concurrent_updates(&store, &run).await;
}

/// A name no earlier run in any process used.
fn run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "r{}x{}x{}",
        nanos,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Create, compare-and-swap and delete, with every failure mode.
pub async fn check_create_and_versions(store: &Arc<dyn Store>, run: &str) {
    let key = format!("/conformance/{run}/cas/node");
    assert_eq!(
        store.get(&key).await.unwrap(),
        None,
        "fresh key must be absent"
    );

    let v1 = store.put(&key, b"one", Expect::Absent).await.unwrap();
    assert!(v1 > 0, "versions are never 0");
    match store.put(&key, b"again", Expect::Absent).await {
        Err(TopoError::AlreadyExists(k)) => assert_eq!(k, key),
        other => panic!("second create must fail with AlreadyExists, got {other:?}"),
    }
    let read = store.get(&key).await.unwrap().expect("created node");
    assert_eq!(read.value, b"one");
    assert_eq!(read.version, v1);

    let v2 = store.put(&key, b"two", Expect::Version(v1)).await.unwrap();
    assert!(v2 > v1, "versions strictly increase: {v2} after {v1}");
    match store.put(&key, b"stale", Expect::Version(v1)).await {
        Err(TopoError::BadVersion {
            key: k,
            expected,
            found,
        }) => {
            assert_eq!(k, key);
            assert_eq!(expected, Some(v1));
            assert_eq!(found, Some(v2));
        }
        other => panic!("CAS with a stale version must fail with BadVersion, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, b"two");

    let v3 = store.put(&key, b"three", Expect::Any).await.unwrap();
    assert!(v3 > v2, "versions strictly increase: {v3} after {v2}");

    let missing = format!("/conformance/{run}/cas/missing");
    assert!(
        matches!(
            store.put(&missing, b"x", Expect::Version(v3)).await,
            Err(TopoError::NotFound(_))
        ),
        "CAS on a missing node must fail with NotFound"
    );
    assert!(
        matches!(
            store.put(&missing, b"x", Expect::Version(0)).await,
            Err(TopoError::NotFound(_))
        ),
        "version 0 never matches: a missing node is NotFound"
    );
    assert!(
        matches!(
            store.delete(&missing, Expect::Any).await,
            Err(TopoError::NotFound(_))
        ),
        "deleting a missing node must fail with NotFound"
    );
    assert!(
        matches!(
            store.delete(&missing, Expect::Version(1)).await,
            Err(TopoError::NotFound(_))
        ),
        "conditional delete of a missing node must fail with NotFound"
    );
    assert_eq!(
        store.get(&missing).await.unwrap(),
        None,
        "failed writes leave nothing"
    );

    assert!(
        matches!(
            store.delete(&key, Expect::Version(v2)).await,
            Err(TopoError::BadVersion { .. })
        ),
        "delete with a stale version must fail with BadVersion"
    );
    assert!(
        matches!(
            store.delete(&key, Expect::Absent).await,
            Err(TopoError::AlreadyExists(_))
        ),
        "delete expecting absence of an existing node must fail with AlreadyExists"
    );
    store.delete(&key, Expect::Version(v3)).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None, "deleted node is gone");

    let v4 = store.put(&key, b"reborn", Expect::Absent).await.unwrap();
    assert!(
        v4 > v3,
        "a recreated node never reuses a version: {v4} after {v3}"
    );
    store.delete(&key, Expect::Any).await.unwrap();

    let binary = format!("/conformance/{run}/cas/binary");
    let bytes: Vec<u8> = (0..=255u8).collect();
    store.put(&binary, &bytes, Expect::Absent).await.unwrap();
    assert_eq!(store.get(&binary).await.unwrap().unwrap().value, bytes);
    let empty = format!("/conformance/{run}/cas/empty");
    let v = store.put(&empty, b"", Expect::Absent).await.unwrap();
    assert_eq!(
        store.get(&empty).await.unwrap(),
        Some(crate::Versioned {
            value: Vec::new(),
            version: v
        }),
        "an empty value is still a node"
    );
}

/// Malformed keys are refused with an error, not a panic or a write.
pub async fn check_bad_input(store: &Arc<dyn Store>) {
    assert!(store.get("").await.is_err(), "empty key must be refused");
    assert!(
        store.put("relative/key", b"x", Expect::Any).await.is_err(),
        "a key not starting with / must be refused"
    );
    assert!(
        store.list("nope").await.is_err(),
        "a bad prefix must be refused"
    );
    assert!(
        store
            .lock("", Duration::from_secs(5), Duration::ZERO)
            .await
            .is_err(),
        "an empty lock name must be refused"
    );
    assert!(
        store
            .lock("conformance-zero-ttl", Duration::ZERO, Duration::ZERO)
            .await
            .is_err(),
        "a zero ttl must be refused"
    );
}

/// `list` returns exactly the nodes under a prefix, in key order.
pub async fn check_list(store: &Arc<dyn Store>, run: &str) {
    let base = format!("/conformance/{run}/list");
    for key in ["/p/b", "/p/a", "/p/c/d", "/pz", "/q/a"] {
        store
            .put(&format!("{base}{key}"), key.as_bytes(), Expect::Absent)
            .await
            .unwrap();
    }
    let under_p = store.list(&format!("{base}/p/")).await.unwrap();
    let keys: Vec<String> = under_p.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        vec![
            format!("{base}/p/a"),
            format!("{base}/p/b"),
            format!("{base}/p/c/d")
        ],
        "list returns only the prefix, in key order"
    );
    for (key, node) in &under_p {
        assert_eq!(
            node.value,
            &key.as_bytes()[base.len()..],
            "values come with their keys"
        );
        let got = store.get(key).await.unwrap().unwrap();
        assert_eq!(
            got.version, node.version,
            "list reports the same version as get"
        );
    }
    let bare = store.list(&format!("{base}/p")).await.unwrap();
    assert_eq!(
        bare.len(),
        4,
        "a prefix is a string prefix, so /p also matches /pz"
    );
    assert!(
        store
            .list(&format!("{base}/nothing/"))
            .await
            .unwrap()
            .is_empty(),
        "an empty prefix range lists nothing"
    );
    let all = store.list(&format!("{base}/")).await.unwrap();
    assert_eq!(all.len(), 5);
    let everything = store.list("").await.unwrap();
    assert!(
        everything.iter().any(|(k, _)| *k == format!("{base}/q/a")),
        "the empty prefix lists every node"
    );
}

async fn next_event(watch: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended early"),
        Err(_) => panic!("no watch event within {}s", EVENT_TIMEOUT.as_secs()),
    }
}

/// A watch sees the puts and deletes under its prefix, in order, and nothing
/// else.
pub async fn check_watch(store: &Arc<dyn Store>, run: &str) {
    let base = format!("/conformance/{run}/watch");
    let before = format!("{base}/in/before");
    store.put(&before, b"old", Expect::Absent).await.unwrap();

    let mut watch = store.watch(&format!("{base}/in/")).await.unwrap();
    let x = format!("{base}/in/x");
    let y = format!("{base}/in/y");
    let vx = store.put(&x, b"x1", Expect::Absent).await.unwrap();
    store
        .put(&format!("{base}/out/x"), b"elsewhere", Expect::Absent)
        .await
        .unwrap();
    let vx2 = store.put(&x, b"x2", Expect::Version(vx)).await.unwrap();
    store.delete(&x, Expect::Any).await.unwrap();
    store.delete(&before, Expect::Any).await.unwrap();
    let vy = store.put(&y, b"y1", Expect::Any).await.unwrap();

    let expected = vec![
        WatchEvent::Put {
            key: x.clone(),
            value: crate::Versioned {
                value: b"x1".to_vec(),
                version: vx,
            },
        },
        WatchEvent::Put {
            key: x.clone(),
            value: crate::Versioned {
                value: b"x2".to_vec(),
                version: vx2,
            },
        },
        WatchEvent::Delete { key: x.clone() },
        WatchEvent::Delete {
            key: before.clone(),
        },
        WatchEvent::Put {
            key: y.clone(),
            value: crate::Versioned {
                value: b"y1".to_vec(),
                version: vy,
            },
        },
    ];
    for want in expected {
        let got = next_event(&mut watch).await;
        assert_eq!(
            got, want,
            "watch events arrive in commit order, only for the prefix"
        );
    }

    // A second watcher on the same prefix sees the same later changes.
    let mut second = store.watch(&format!("{base}/in/")).await.unwrap();
    store.delete(&y, Expect::Any).await.unwrap();
    for w in [&mut watch, &mut second] {
        assert_eq!(next_event(w).await, WatchEvent::Delete { key: y.clone() });
    }

    // Dropping a watcher must not disturb writes or other watchers.
    drop(second);
    let z = format!("{base}/in/z");
    let vz = store.put(&z, b"z", Expect::Absent).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        WatchEvent::Put {
            key: z,
            value: crate::Versioned {
                value: b"z".to_vec(),
                version: vz
            }
        }
    );
}

async fn lock_within(
    store: &Arc<dyn Store>,
    name: &str,
    ttl: Duration,
    wait: Duration,
) -> Box<dyn crate::LockGuard> {
    match store.lock(name, ttl, wait).await {
        Ok(guard) => guard,
        Err(e) => panic!("lock {name} should have been granted: {e}"),
    }
}

/// A lock excludes a second locker until it is released, then passes on.
pub async fn check_lock_excludes(store: &Arc<dyn Store>, run: &str) {
    let name = format!("conformance/{run}/exclusive");
    let ttl = Duration::from_secs(10);
    let first = lock_within(store, &name, ttl, Duration::from_secs(5)).await;
    assert_eq!(first.name(), name);

    let started = Instant::now();
    match store.lock(&name, ttl, Duration::from_millis(300)).await {
        Err(TopoError::LockTimeout(n)) => assert_eq!(n, name),
        Err(e) => panic!("a held lock must time out for a second locker, got error {e}"),
        Ok(_) => panic!("a held lock was granted twice"),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the second locker must wait before giving up"
    );
    match store.lock(&name, ttl, Duration::ZERO).await {
        Err(TopoError::LockTimeout(_)) => {}
        other => panic!(
            "a zero wait on a held lock must time out, got {:?}",
            other.map(|_| ())
        ),
    }

    let other = lock_within(store, &format!("{name}-other"), ttl, Duration::from_secs(5)).await;

    let waiter = {
        let store = store.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let guard = store.lock(&name, ttl, HANDOVER_TIMEOUT).await;
            (guard, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter must block while the lock is held"
    );
    let released_at = Instant::now();
    first.unlock().await.unwrap();
    let (second, granted_at) = waiter.await.unwrap();
    let second = second.expect("the waiter gets the lock after unlock");
    assert!(granted_at >= released_at);
    second.unlock().await.unwrap();
    other.unlock().await.unwrap();

    let again = lock_within(store, &name, ttl, Duration::ZERO).await;
    again.unlock().await.unwrap();
}

/// A holder that drops its guard without unlocking frees the lock.
pub async fn check_dropped_lock_is_released(store: &Arc<dyn Store>, run: &str) {
    let name = format!("conformance/{run}/dropped");
    let ttl = Duration::from_secs(30);
    let guard = lock_within(store, &name, ttl, Duration::from_secs(5)).await;
    drop(guard);
    // Well inside the ttl, so only the drop can have freed it.
    let started = Instant::now();
    let next = lock_within(store, &name, ttl, HANDOVER_TIMEOUT).await;
    assert!(
        started.elapsed() < ttl,
        "a dropped guard must release the lock before its lease runs out"
    );
    next.unlock().await.unwrap();
}

/// A held lock is renewed in the background, so it outlives its ttl.
pub async fn check_lock_outlives_ttl(store: &Arc<dyn Store>, run: &str) {
    let name = format!("conformance/{run}/renewed");
    let ttl = Duration::from_secs(2);
    let guard = lock_within(store, &name, ttl, Duration::from_secs(5)).await;
    tokio::time::sleep(ttl * 2).await;
    assert!(
        matches!(
            store.lock(&name, ttl, Duration::from_millis(200)).await,
            Err(TopoError::LockTimeout(_))
        ),
        "a lock held past its ttl must still exclude others while its guard lives"
    );
    guard.unlock().await.unwrap();
}

fn tablet(alias: TabletAlias, ks: &str, shard: &str, tablet_type: TabletType) -> Tablet {
    Tablet {
        format: crate::FORMAT_VERSION,
        hostname: "localhost".to_string(),
        keyspace: ks.to_string(),
        shard: shard.to_string(),
        tablet_type,
        mysql_host: "127.0.0.1".to_string(),
        mysql_port: 3306 + (alias.uid % 1000) as u16,
        agent_addr: format!("127.0.0.1:{}", 15100 + alias.uid % 1000),
        db_name: format!("vt_{ks}"),
        primary_term: 0,
        needs_reseed: false,
        alias,
    }
}

/// The typed wrapper round-trips every record kind.
pub async fn check_topo_records(store: &Arc<dyn Store>, run: &str) {
    let topo = Topo::new(store.clone());
    let cell_a = format!("{run}a");
    let cell_b = format!("{run}b");
    for cell in [&cell_a, &cell_b] {
        let info = CellInfo {
            format: crate::FORMAT_VERSION,
            name: cell.clone(),
            server_address: String::new(),
            root: format!("/cells/{cell}"),
        };
        topo.create_cell(&info).await.unwrap();
        assert_eq!(topo.get_cell(cell).await.unwrap(), Some(info));
    }
    let cells = topo.list_cells().await.unwrap();
    assert!(cells.iter().any(|c| c.name == cell_a) && cells.iter().any(|c| c.name == cell_b));

    let ks_name = format!("ks{run}");
    let ks = Keyspace {
        format: crate::FORMAT_VERSION,
        name: ks_name.clone(),
        sharded: true,
        durability_policy: DurabilityPolicy::SemiSync,
    };
    topo.create_keyspace(&ks).await.unwrap();
    assert!(
        matches!(
            topo.create_keyspace(&ks).await,
            Err(TopoError::AlreadyExists(_))
        ),
        "a keyspace is created once"
    );
    assert_eq!(topo.get_keyspace(&ks_name).await.unwrap(), Some(ks.clone()));
    assert!(topo.list_keyspaces().await.unwrap().contains(&ks));
    assert_eq!(
        topo.get_keyspace(&format!("{ks_name}-missing"))
            .await
            .unwrap(),
        None
    );

    for name in ["-80", "80-"] {
        let shard = Shard {
            format: crate::FORMAT_VERSION,
            keyspace: ks_name.clone(),
            name: name.to_string(),
            key_range: KeyRange::from_shard_name(name).unwrap(),
            primary_alias: None,
            primary_term: 0,
            primary_term_start_ms: 0,
            is_primary_serving: false,
        };
        topo.create_shard(&shard).await.unwrap();
    }
    let shards = topo.list_shards(&ks_name).await.unwrap();
    assert_eq!(
        shards.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["-80", "80-"]
    );
    let (before, version_before) = topo.get_shard(&ks_name, "-80").await.unwrap().unwrap();
    let primary = TabletAlias::new(cell_a.clone(), 100);
    let updated = topo
        .update_shard(&ks_name, "-80", |s| {
            s.primary_alias = Some(primary.clone());
            s.primary_term += 1;
            s.is_primary_serving = true;
            Ok(())
        })
        .await
        .unwrap();
    let (after, version_after) = topo.get_shard(&ks_name, "-80").await.unwrap().unwrap();
    assert_eq!(after, updated);
    assert_eq!(after.primary_alias, Some(primary.clone()));
    assert_eq!(after.primary_term, before.primary_term + 1);
    assert!(version_after > version_before);
    assert!(
        matches!(
            topo.update_shard(&ks_name, "c0-", |_| Ok(())).await,
            Err(TopoError::NotFound(_))
        ),
        "updating a missing shard fails with NotFound"
    );
    let refused = topo
        .update_shard(&ks_name, "-80", |_| {
            Err(TopoError::Backend("refused by the caller".to_string()))
        })
        .await;
    assert!(matches!(refused, Err(TopoError::Backend(m)) if m == "refused by the caller"));
    assert_eq!(
        topo.get_shard(&ks_name, "-80").await.unwrap().unwrap().1,
        version_after,
        "a refused update writes nothing"
    );

    let tablets = [
        tablet(primary.clone(), &ks_name, "-80", TabletType::Primary),
        tablet(
            TabletAlias::new(cell_a.clone(), 101),
            &ks_name,
            "-80",
            TabletType::Replica,
        ),
        tablet(
            TabletAlias::new(cell_b.clone(), 200),
            &ks_name,
            "-80",
            TabletType::Rdonly,
        ),
        tablet(
            TabletAlias::new(cell_b.clone(), 201),
            &ks_name,
            "80-",
            TabletType::Primary,
        ),
    ];
    for t in tablets.iter().rev() {
        topo.put_tablet(t).await.unwrap();
    }
    let (read, _) = topo.get_tablet(&primary).await.unwrap().unwrap();
    assert_eq!(read, tablets[0]);
    let in_a = topo.list_tablets(Some(&cell_a)).await.unwrap();
    assert_eq!(
        in_a,
        tablets[..2].to_vec(),
        "tablets of one cell, in alias order"
    );
    let everywhere: Vec<Tablet> = topo
        .list_tablets(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.alias.cell == cell_a || t.alias.cell == cell_b)
        .collect();
    assert_eq!(
        everywhere,
        tablets.to_vec(),
        "tablets of every cell, in alias order"
    );
    let shard_tablets = topo.list_shard_tablets(&ks_name, "-80").await.unwrap();
    assert_eq!(shard_tablets, tablets[..3].to_vec());

    let changed = topo
        .update_tablet(&tablets[1].alias, |t| {
            t.tablet_type = TabletType::Spare;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(changed.tablet_type, TabletType::Spare);
    assert_eq!(
        topo.get_tablet(&tablets[1].alias)
            .await
            .unwrap()
            .unwrap()
            .0
            .tablet_type,
        TabletType::Spare
    );
    topo.delete_tablet(&tablets[1].alias).await.unwrap();
    assert_eq!(topo.get_tablet(&tablets[1].alias).await.unwrap(), None);
    assert!(matches!(
        topo.delete_tablet(&tablets[1].alias).await,
        Err(TopoError::NotFound(_))
    ));
    assert_eq!(topo.list_tablets(Some(&cell_a)).await.unwrap().len(), 1);

    let vschema = r#"{"sharded": true, "vindexes": {"hash": {"type": "hash"}}}"#;
    topo.put_vschema(&ks_name, vschema).await.unwrap();
    assert_eq!(
        topo.get_vschema(&ks_name).await.unwrap().as_deref(),
        Some(vschema)
    );
    assert_eq!(
        topo.get_vschema(&format!("{ks_name}-missing"))
            .await
            .unwrap(),
        None
    );

    let srv = SrvKeyspace {
        format: crate::FORMAT_VERSION,
        partitions: vec![SrvPartition {
            tablet_type: TabletType::Primary,
            shards: vec![
                ShardReference {
                    name: "-80".to_string(),
                    key_range: KeyRange::from_shard_name("-80").unwrap(),
                },
                ShardReference {
                    name: "80-".to_string(),
                    key_range: KeyRange::from_shard_name("80-").unwrap(),
                },
            ],
        }],
    };
    topo.put_srv_keyspace(&cell_a, &ks_name, &srv)
        .await
        .unwrap();
    assert_eq!(
        topo.get_srv_keyspace(&cell_a, &ks_name).await.unwrap(),
        Some(srv)
    );
    assert_eq!(
        topo.get_srv_keyspace(&cell_b, &ks_name).await.unwrap(),
        None
    );

    // A record that is not valid JSON is reported, not mistaken for absent.
    let broken = format!("ks{run}-broken");
    store
        .put(
            &crate::topo::keyspace_key(&broken),
            b"{not json",
            Expect::Absent,
        )
        .await
        .unwrap();
    assert!(matches!(
        topo.get_keyspace(&broken).await,
        Err(TopoError::Decode { .. })
    ));

    let lock = topo
        .lock_shard(&ks_name, "-80", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(
        topo.lock_shard(&ks_name, "-80", Duration::from_millis(100))
            .await,
        Err(TopoError::LockTimeout(_))
    ));
    lock.unlock().await.unwrap();
}

/// Racing read-modify-writes lose nothing: 10 writers x 20 increments = 200.
pub async fn check_topo_concurrent_updates(store: &Arc<dyn Store>, run: &str) {
    const WRITERS: u64 = 10;
    const INCREMENTS: u64 = 20;
    let topo = Topo::new(store.clone());
    let ks = format!("race{run}");
    topo.create_shard(&Shard {
        keyspace: ks.clone(),
        name: "0".to_string(),
        ..Shard::default()
    })
    .await
    .unwrap();
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let topo = topo.clone();
        let ks = ks.clone();
        writers.spawn(async move {
            for _ in 0..INCREMENTS {
                topo.update_shard(&ks, "0", |s| {
                    s.primary_term += 1;
                    Ok(())
                })
                .await
                .expect("an update survives contention");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer task");
    }
    let (shard, _) = topo.get_shard(&ks, "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_term, WRITERS * INCREMENTS);
}
