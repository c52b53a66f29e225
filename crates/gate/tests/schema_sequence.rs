//! Schema tracking and sequences against real mariadbd processes: the
//! schema read from information_schema, the tracker fed by a running gate's
//! routing table, and sequence blocks reserved by one and by two gates.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{CELL, free_port, start_mysqld, tablet};
use mysql_async::prelude::Queryable;
use tessera_gate::metrics::PoolMetrics;
use tessera_gate::pool::{PoolSettings, TabletPool};
use tessera_gate::schema::{SchemaTracker, load_keyspace_schema};
use tessera_gate::sequence::{SequenceError, Sequences, parse_select_next};
use tessera_gate::{Gate, GateConfig};
use tessera_tablet::mysqld::Mysqld;
use tessera_topo::{KeyRange, Keyspace, LocalStore, Shard, TabletAlias, TabletType, Topo};
use tessera_wire::backend::FLAVOUR_FLAGS;
use tessera_wire::{BackendConfig, BackendConn};

const APP_USER: &str = "tessera_app";
const APP_PASSWORD: &str = "tessera_app_pw";

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ss")
        .tempdir_in("/tmp")
        .expect("tempdir")
}

async fn exec(mysqld: &Mysqld, statements: &[&str]) {
    let mut conn = mysqld.dba_conn().await.expect("dba connection");
    for sql in statements {
        conn.query_drop(*sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.disconnect().await.ok();
}

async fn next_id_in_table(mysqld: &Mysqld, table: &str) -> i64 {
    let mut conn = mysqld.dba_conn().await.expect("dba connection");
    let value: Option<i64> = conn
        .query_first(format!("SELECT next_id FROM {table} WHERE id = 0"))
        .await
        .expect("reading next_id");
    conn.disconnect().await.ok();
    value.expect("sequence row")
}

fn pool_for(uid: u32, mysqld: &Mysqld, db: &str) -> Arc<TabletPool> {
    TabletPool::new(
        TabletAlias::new(CELL, uid),
        format!("127.0.0.1:{}", mysqld.port()),
        db.to_string(),
        &PoolSettings {
            user: APP_USER.into(),
            password: APP_PASSWORD.into(),
            max_connections: 8,
            wait_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
        },
        PoolMetrics::default(),
    )
}

#[tokio::test]
async fn schema_is_read_from_information_schema() {
    let dir = tempdir();
    let mut mysqld = start_mysqld(dir.path().join("m"), 1, &["commerce", "empty"]).await;
    exec(
        &mysqld,
        &[
            "CREATE TABLE commerce.customer (customer_id BIGINT NOT NULL AUTO_INCREMENT, \
             email VARBINARY(128), name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, \
             PRIMARY KEY (customer_id))",
            "CREATE TABLE commerce.corder (region INT UNSIGNED NOT NULL, order_id BIGINT NOT NULL, \
             sku VARCHAR(32) CHARACTER SET latin1, price DECIMAL(10,2), \
             PRIMARY KEY (order_id, region))",
            // No primary key: the unique NOT NULL key must not count as one.
            "CREATE TABLE commerce.uniq (code CHAR(4) NOT NULL, note TEXT, UNIQUE KEY (code))",
            // Table names are case-sensitive on this server.
            // (and its column, named as customer's key, is not a key).
            "CREATE TABLE commerce.Customer (customer_id INT)",
        ],
    )
    .await;
    let mut conn = BackendConn::connect(&BackendConfig {
        addr: format!("127.0.0.1:{}", mysqld.port()),
        user: APP_USER.into(),
        password: APP_PASSWORD.into(),
        database: Some("commerce".into()),
        capabilities: FLAVOUR_FLAGS,
    })
    .await
    .expect("backend connection");

    let schema = load_keyspace_schema(&mut conn, "commerce")
        .await
        .expect("schema");
    assert!(!schema.fold_case, "lower_case_table_names is 0 on Linux");
    assert_eq!(
        schema.tables.keys().collect::<Vec<_>>(),
        vec!["Customer", "corder", "customer", "uniq"]
    );
    assert!(schema.table("CUSTOMER").is_none());
    let upper = schema.table("Customer").unwrap();
    assert_eq!(upper.columns.len(), 1);
    assert!(upper.primary_key().is_empty(), "{upper:?}");

    let customer = schema.table("customer").unwrap();
    let names: Vec<&str> = customer.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["customer_id", "email", "name"]);
    let id = &customer.columns[0];
    assert_eq!(
        (id.data_type.as_str(), id.column_type.as_str()),
        ("bigint", "bigint(20)")
    );
    assert!(id.primary_key && !id.nullable && id.collation.is_none());
    let email = &customer.columns[1];
    assert_eq!(email.data_type, "varbinary");
    assert!(email.nullable && !email.primary_key && email.collation.is_none());
    let name = &customer.columns[2];
    assert_eq!(name.column_type, "varchar(64)");
    assert_eq!(name.collation.as_deref(), Some("utf8mb4_bin"));

    let corder = schema.table("corder").unwrap();
    assert_eq!(corder.primary_key(), vec!["region", "order_id"]);
    assert_eq!(corder.columns[0].column_type, "int(10) unsigned");
    assert_eq!(
        corder.columns[2].collation.as_deref(),
        Some("latin1_swedish_ci")
    );
    assert_eq!(corder.columns[3].column_type, "decimal(10,2)");

    let uniq = schema.table("uniq").unwrap();
    assert!(uniq.primary_key().is_empty(), "{uniq:?}");
    assert_eq!(uniq.columns[1].data_type, "text");

    // A database without tables, or none at all, is an empty schema.
    assert!(
        load_keyspace_schema(&mut conn, "empty")
            .await
            .unwrap()
            .tables
            .is_empty()
    );
    assert!(
        load_keyspace_schema(&mut conn, "no_such_db")
            .await
            .unwrap()
            .tables
            .is_empty()
    );
    let err = load_keyspace_schema(&mut conn, "bad\\name")
        .await
        .unwrap_err();
    assert!(err.contains("backslash"), "{err}");
    // The connection is still good after a refused name.
    assert_eq!(
        load_keyspace_schema(&mut conn, "commerce")
            .await
            .unwrap()
            .tables
            .len(),
        4
    );
    mysqld.stop().await.ok();
}

/// A gate whose topology has unsharded `commerce` and `customer` sharded in
/// two, each shard's primary a database of its own on one mysqld.
async fn start_gate(topo: Topo, mysqld: &Mysqld) -> Gate {
    let port = mysqld.port();
    let commerce = tablet(100, "commerce", TabletType::Primary, port, "commerce");
    common::add_keyspace(&topo, "commerce", &commerce, &[]).await;
    topo.create_keyspace(&Keyspace {
        name: "customer".into(),
        sharded: true,
        ..Default::default()
    })
    .await
    .expect("create keyspace");
    // Created high shard first: "first shard" must mean key-range order.
    for (uid, shard, db) in [(201, "80-", "customer_hi"), (200, "-80", "customer_lo")] {
        let mut t = tablet(uid, "customer", TabletType::Primary, port, db);
        t.shard = shard.into();
        topo.create_shard(&Shard {
            keyspace: "customer".into(),
            name: shard.into(),
            key_range: KeyRange::from_shard_name(shard).unwrap(),
            primary_alias: Some(t.alias.clone()),
            primary_term: 1,
            is_primary_serving: true,
            ..Default::default()
        })
        .await
        .expect("create shard");
        topo.put_tablet(&t).await.expect("put tablet");
    }
    let gate = Gate::start(
        GateConfig {
            cell: CELL.into(),
            mysql_listen: "127.0.0.1:0".parse().unwrap(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            backend_user: APP_USER.into(),
            backend_password: APP_PASSWORD.into(),
            health_interval: Duration::from_millis(500),
            pool_size: 4,
            ..Default::default()
        },
        topo,
    )
    .await
    .expect("gate starts");
    assert!(
        gate.wait_ready(Duration::from_secs(60)).await,
        "gate never saw every primary"
    );
    gate
}

async fn poll<F: Fn() -> bool>(what: &str, timeout: Duration, check: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_follows_the_routing_table_and_ddl() {
    let dir = tempdir();
    let mut mysqld = start_mysqld(
        dir.path().join("m"),
        1,
        &["commerce", "customer_lo", "customer_hi"],
    )
    .await;
    exec(
        &mysqld,
        &[
            "CREATE TABLE commerce.product (sku VARBINARY(128), price BIGINT, PRIMARY KEY (sku))",
            "CREATE TABLE customer_lo.customer (customer_id BIGINT, email VARCHAR(64), PRIMARY KEY (customer_id))",
            "CREATE TABLE customer_hi.only_in_high_shard (a INT)",
        ],
    )
    .await;
    let store = LocalStore::open(&dir.path().join("topo.redb")).expect("open local store");
    let gate = start_gate(Topo::new(Arc::new(store)), &mysqld).await;
    let routing = gate.routing_table();
    let tracker = Arc::new(SchemaTracker::new());

    // The sharded keyspace is read from its first shard in key-range order.
    tracker
        .refresh_keyspace(&routing, "customer")
        .await
        .expect("refresh customer");
    assert_eq!(tracker.tables("customer"), vec!["customer"]);
    let customer = tracker.table("customer", "customer").unwrap();
    assert_eq!(customer.primary_key(), vec!["customer_id"]);
    assert_eq!(customer.columns[1].data_type, "varchar");
    assert!(tracker.table("customer", "only_in_high_shard").is_none());

    let err = tracker
        .refresh_keyspace(&routing, "nope")
        .await
        .unwrap_err();
    assert!(err.contains("unknown keyspace 'nope'"), "{err}");

    // The background loop reads every keyspace at start...
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let live = Arc::new(arc_swap::ArcSwap::from(routing.clone()));
    let handle = tracker.spawn_refresher(live, Duration::from_secs(3600), stop_rx);
    poll("commerce's first read", Duration::from_secs(30), || {
        tracker.table("commerce", "product").is_some()
    })
    .await;

    // ...and a poked keyspace at once, long before the hour is up.
    exec(
        &mysqld,
        &["CREATE TABLE commerce.corder (order_id BIGINT PRIMARY KEY)"],
    )
    .await;
    tracker.poke("commerce");
    poll("the poked re-read", Duration::from_secs(30), || {
        tracker.table("commerce", "corder").is_some()
    })
    .await;

    // refresh_now: the session's own DDL is visible when it returns, also
    // when several sessions ask at once.
    exec(
        &mysqld,
        &["ALTER TABLE commerce.product ADD COLUMN name VARCHAR(10) COLLATE utf8mb4_unicode_ci"],
    )
    .await;
    let (a, b, c) = tokio::join!(
        tracker.refresh_now(&routing, "commerce"),
        tracker.refresh_now(&routing, "commerce"),
        tracker.refresh_now(&routing, "commerce"),
    );
    a.and(b).and(c).expect("refresh_now");
    let product = tracker.table("commerce", "product").unwrap();
    let name = product.column("NAME").expect("the new column");
    assert_eq!(name.collation.as_deref(), Some("utf8mb4_unicode_ci"));
    exec(&mysqld, &["DROP TABLE commerce.corder"]).await;
    tracker.refresh_now(&routing, "commerce").await.unwrap();
    assert_eq!(tracker.tables("commerce"), vec!["product"]);

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .expect("the refresher stops")
        .expect("the refresher did not panic");
    gate.shutdown().await;
    mysqld.stop().await.ok();
}

#[tokio::test]
async fn sequence_blocks_follow_vitess() {
    let dir = tempdir();
    let mut mysqld = start_mysqld(dir.path().join("m"), 1, &["commerce"]).await;
    exec(
        &mysqld,
        &[
            "CREATE TABLE commerce.customer_seq (id INT, next_id BIGINT, cache BIGINT, PRIMARY KEY (id)) COMMENT 'vitess_sequence'",
            "INSERT INTO commerce.customer_seq VALUES (0, 1000, 100)",
        ],
    )
    .await;
    let pool = pool_for(100, &mysqld, "commerce");
    let seq = Sequences::new();
    let table = "commerce.customer_seq";

    // The first id reserves one block of `cache`.
    assert_eq!(
        seq.next_ids("commerce", "customer_seq", 1, &pool)
            .await
            .unwrap(),
        vec![1000]
    );
    assert_eq!(next_id_in_table(&mysqld, table).await, 1100);
    // The rest of the block comes from memory, ascending.
    let mut handed: Vec<i64> = vec![1000];
    for _ in 0..99 {
        handed.extend(
            seq.next_ids("commerce", "customer_seq", 1, &pool)
                .await
                .unwrap(),
        );
    }
    assert_eq!(handed, (1000..1100).collect::<Vec<_>>());
    assert_eq!(next_id_in_table(&mysqld, table).await, 1100);
    // Crossing the block's end reserves the next one.
    assert_eq!(
        seq.next_ids("commerce", "customer_seq", 1, &pool)
            .await
            .unwrap(),
        vec![1100]
    );
    assert_eq!(next_id_in_table(&mysqld, table).await, 1200);

    // More ids than the cache at once: consecutive, the block extended by
    // whole cache steps (1101 + 250 needs up to 1351: 1200 + 2 * 100).
    let many = seq
        .next_ids("commerce", "customer_seq", 250, &pool)
        .await
        .unwrap();
    assert_eq!(many, (1101..1351).collect::<Vec<_>>());
    assert_eq!(next_id_in_table(&mysqld, table).await, 1400);

    // Another gate reserving meanwhile: this gate drops the rest of its
    // block when it next has to reserve, and ids never repeat.
    let other = Sequences::new();
    let theirs = other
        .next_ids("commerce", "customer_seq", 1, &pool)
        .await
        .unwrap();
    assert_eq!(theirs, vec![1400]);
    let ours = seq
        .next_ids("commerce", "customer_seq", 49, &pool)
        .await
        .unwrap();
    assert_eq!(ours, (1351..1400).collect::<Vec<_>>());
    let ours = seq
        .next_ids("commerce", "customer_seq", 1, &pool)
        .await
        .unwrap();
    assert_eq!(ours, vec![1500], "this gate's block starts after theirs");
    assert_eq!(next_id_in_table(&mysqld, table).await, 1600);

    // A new primary: the unused ids of the old primary's block are skipped.
    let new_primary = pool_for(101, &mysqld, "commerce");
    let after = seq
        .next_ids("commerce", "customer_seq", 1, &new_primary)
        .await
        .unwrap();
    assert_eq!(after, vec![1600], "1501..1599 are skipped, not reused");
    assert_eq!(next_id_in_table(&mysqld, table).await, 1700);

    // The table going back (a reservation lost in a failover) never makes
    // this gate hand out an id twice; the table is moved up again.
    seq.next_ids("commerce", "customer_seq", 99, &new_primary)
        .await
        .unwrap();
    exec(
        &mysqld,
        &["UPDATE commerce.customer_seq SET next_id = 500 WHERE id = 0"],
    )
    .await;
    let after = seq
        .next_ids("commerce", "customer_seq", 1, &new_primary)
        .await
        .unwrap();
    assert_eq!(after, vec![1700]);
    assert_eq!(next_id_in_table(&mysqld, table).await, 1800);
    // reset forgets that: a recreated sequence starts where its table says.
    exec(
        &mysqld,
        &["UPDATE commerce.customer_seq SET next_id = 5 WHERE id = 0"],
    )
    .await;
    seq.reset("commerce", "customer_seq");
    let range = seq
        .next_range("commerce", "customer_seq", 3, &new_primary)
        .await
        .unwrap();
    assert_eq!(range, 5..8);
    assert_eq!(next_id_in_table(&mysqld, table).await, 105);

    mysqld.stop().await.ok();
}

#[tokio::test]
async fn sequence_errors_are_clear() {
    let dir = tempdir();
    let mut mysqld = start_mysqld(dir.path().join("m"), 1, &["commerce"]).await;
    exec(
        &mysqld,
        &[
            "CREATE TABLE commerce.zero_cache (id INT, next_id BIGINT, cache BIGINT, PRIMARY KEY (id))",
            "INSERT INTO commerce.zero_cache VALUES (0, 1, 0)",
            "CREATE TABLE commerce.no_row (id INT, next_id BIGINT, cache BIGINT, PRIMARY KEY (id))",
            "CREATE TABLE commerce.ok_seq (id INT, next_id BIGINT, cache BIGINT, PRIMARY KEY (id))",
            "INSERT INTO commerce.ok_seq VALUES (0, 1, 10)",
        ],
    )
    .await;
    let pool = pool_for(100, &mysqld, "commerce");
    let seq = Sequences::new();

    let err = seq
        .next_ids("commerce", "missing_seq", 1, &pool)
        .await
        .unwrap_err();
    let (code, state, message) = err.to_mysql();
    assert_eq!((code, state.as_str()), (1146, "42S02"), "{message}");
    assert!(message.contains("missing_seq"), "{message}");

    let err = seq
        .next_ids("commerce", "zero_cache", 1, &pool)
        .await
        .unwrap_err();
    assert!(matches!(err, SequenceError::InvalidCache { .. }), "{err:?}");
    assert_eq!(err.to_mysql().0, 1105);
    // The refused reservation was rolled back, not left holding the lock.
    assert_eq!(next_id_in_table(&mysqld, "commerce.zero_cache").await, 1);

    let err = seq
        .next_ids("commerce", "no_row", 1, &pool)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SequenceError::MissingRow { rows: 0, .. }),
        "{err:?}"
    );

    let err = seq
        .next_ids("commerce", "ok_seq", 0, &pool)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid increment for sequence ok_seq: 0"),
        "{err}"
    );
    let err = seq
        .next_ids("commerce", "ok_seq", u64::MAX, &pool)
        .await
        .unwrap_err();
    assert!(matches!(err, SequenceError::TooMany { .. }), "{err:?}");
    let err = seq
        .next_range("commerce", "ok_seq", u64::MAX, &pool)
        .await
        .unwrap_err();
    assert!(matches!(err, SequenceError::InvalidCount { .. }), "{err:?}");

    // After all that, the pool still serves a working sequence.
    assert_eq!(
        seq.next_ids("commerce", "ok_seq", 3, &pool).await.unwrap(),
        vec![1, 2, 3]
    );
    let (open, _) = pool.counts();
    assert!(open >= 1);

    // A tablet nobody listens on: a connection error, not a panic.
    let dead = TabletPool::new(
        TabletAlias::new(CELL, 999),
        format!("127.0.0.1:{}", free_port()),
        "commerce".into(),
        &PoolSettings {
            user: APP_USER.into(),
            password: APP_PASSWORD.into(),
            max_connections: 1,
            wait_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        },
        PoolMetrics::default(),
    );
    let err = seq
        .next_ids("commerce", "ok_seq", 1, &dead)
        .await
        .unwrap_err();
    assert!(matches!(err, SequenceError::Pool(_)), "{err:?}");

    // The Vitess syntax the planner recognises, run end to end.
    let (name, count) = parse_select_next("SELECT NEXT 4 VALUES FROM ok_seq").unwrap();
    let range = seq
        .next_range("commerce", &name, count, &pool)
        .await
        .unwrap();
    // Asking through another tablet's pool meant a new primary: the rest of
    // the block reserved on the first (4..10) is skipped, never reused.
    assert_eq!(range, 11..15);
    mysqld.stop().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gates_hand_out_unique_ids_concurrently() {
    let dir = tempdir();
    let mut mysqld = start_mysqld(dir.path().join("m"), 1, &["commerce"]).await;
    exec(
        &mysqld,
        &[
            "CREATE TABLE commerce.customer_seq (id INT, next_id BIGINT, cache BIGINT, PRIMARY KEY (id)) COMMENT 'vitess_sequence'",
            // A small cache: many reservations contend for the row lock.
            "INSERT INTO commerce.customer_seq VALUES (0, 1, 7)",
        ],
    )
    .await;
    let gates = [Arc::new(Sequences::new()), Arc::new(Sequences::new())];
    // Each gate with its own pool, as two gate processes would have.
    let pools = [
        pool_for(100, &mysqld, "commerce"),
        pool_for(100, &mysqld, "commerce"),
    ];
    let mut tasks = Vec::new();
    for (gate, pool) in gates.iter().zip(&pools) {
        for task in 0..8u64 {
            let gate = gate.clone();
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                while ids.len() < 200 {
                    // Mostly single ids, some multi-row inserts' worth.
                    let want = if ids.len() % 50 == 0 { 1 + task % 4 } else { 1 };
                    let want = want.min(200 - ids.len() as u64);
                    let got = gate
                        .next_ids("commerce", "customer_seq", want, &pool)
                        .await
                        .expect("ids");
                    assert_eq!(got.len() as u64, want);
                    ids.extend(got);
                }
                ids
            }));
        }
    }
    let mut all = HashSet::new();
    let mut max = 0;
    for task in tasks {
        let ids = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("tasks finish")
            .expect("task did not panic");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "one task's ids ascend");
        for id in ids {
            assert!(all.insert(id), "id {id} handed out twice");
            max = max.max(id);
        }
    }
    assert_eq!(all.len(), 3200);
    assert!(next_id_in_table(&mysqld, "commerce.customer_seq").await > max);
    mysqld.stop().await.ok();
}
