//! The lookup-vindex statements of `vindex::lookup_sql` run on a real
//! mariadbd: they parse, lock, compare by the column's collation, and their
//! answers decode to the keyspace ids that were written.

mod common;

use common::start_mysqld;
use tessera_gate::vindex::lookup_sql::{
    DuplicateResolution, LookupKind, MapPlan, consistent_statements, decode_map, delete_sql,
    insert_sql, map_plan, resolve_consistent_duplicate, update_sql,
};
use tessera_gate::vindex::{KeyspaceId, LookupParams, VindexValue};
use tessera_wire::backend::FLAVOUR_FLAGS;
use tessera_wire::{BackendConfig, BackendConn, QueryResult};

fn params(table: &str, from: &str) -> LookupParams {
    LookupParams {
        table: table.into(),
        from: vec![from.into()],
        to: "keyspace_id".into(),
        autocommit: false,
        multi_shard_autocommit: false,
        write_only: false,
        ignore_nulls: false,
        batch_lookup: false,
        no_verify: false,
        read_lock: None,
    }
}

async fn run(conn: &mut BackendConn, sql: &str) -> QueryResult {
    conn.query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn map_sql(plan: MapPlan) -> String {
    match plan {
        MapPlan::Query { sql } => sql,
        MapPlan::Known(d) => panic!("expected a query, got {d:?}"),
    }
}

#[tokio::test]
async fn lookup_statements_run_on_mariadb() {
    let dir = tempfile::Builder::new()
        .prefix("ls")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let mut mysqld = start_mysqld(dir.path().join("m"), 1, &["customer"]).await;
    let mut conn = BackendConn::connect(&BackendConfig {
        addr: format!("127.0.0.1:{}", mysqld.port()),
        user: "tessera_app".into(),
        password: "tessera_app_pw".into(),
        database: Some("customer".into()),
        capabilities: FLAVOUR_FLAGS,
    })
    .await
    .expect("backend connection");
    run(
        &mut conn,
        "CREATE TABLE email_lookup (email VARCHAR(64) COLLATE utf8mb4_general_ci, \
         keyspace_id VARBINARY(16), PRIMARY KEY (email))",
    )
    .await;
    run(
        &mut conn,
        "CREATE TABLE id_lookup (id BIGINT, keyspace_id VARBINARY(16), PRIMARY KEY (id, keyspace_id))",
    )
    .await;
    run(
        &mut conn,
        "CREATE TABLE customer (customer_id BIGINT PRIMARY KEY, email VARCHAR(64))",
    )
    .await;

    let unique = LookupKind::of("lookup_unique").unwrap();
    let p = params("customer.email_lookup", "email");
    let k1 = KeyspaceId(vec![0x16, 0x6b]);
    let k2 = KeyspaceId(vec![0x80, 0x00, 0x01]);
    let rows = vec![
        (vec![VindexValue::Bytes("zoë@x".as_bytes())], k2.clone()),
        (vec![VindexValue::Bytes(b"amy's@x")], k1.clone()),
    ];
    run(
        &mut conn,
        &insert_sql(&p, unique, &rows, false).unwrap().unwrap(),
    )
    .await;

    // Text values: attributed by position, compared by the column's
    // case-insensitive collation, inside a DML transaction with a lock.
    let values = [
        VindexValue::Bytes(b"AMY'S@X"),
        VindexValue::Bytes(b"nobody"),
        VindexValue::Bytes("ZOË@x".as_bytes()),
    ];
    run(&mut conn, "BEGIN").await;
    let answer = run(&mut conn, &map_sql(map_plan(&p, unique, &values, true))).await;
    run(&mut conn, "COMMIT").await;
    let destinations = decode_map(&p, unique, &values, &answer.rows).unwrap();
    use tessera_gate::vindex::lookup_sql::Destination;
    assert_eq!(
        destinations,
        vec![
            Destination::KeyspaceIds(vec![k1.clone()]),
            Destination::None,
            Destination::KeyspaceIds(vec![k2.clone()]),
        ]
    );

    // An update moves the entry; a delete removes it.
    for sql in update_sql(
        &p,
        unique,
        &[VindexValue::Bytes(b"amy's@x")],
        &[VindexValue::Bytes(b"amy@new")],
        &k1,
    )
    .unwrap()
    {
        run(&mut conn, &sql).await;
    }
    let values = [
        VindexValue::Bytes(b"amy's@x"),
        VindexValue::Bytes(b"amy@new"),
    ];
    let answer = run(&mut conn, &map_sql(map_plan(&p, unique, &values, false))).await;
    assert_eq!(
        decode_map(&p, unique, &values, &answer.rows).unwrap(),
        vec![
            Destination::None,
            Destination::KeyspaceIds(vec![k1.clone()])
        ]
    );
    for sql in delete_sql(&p, unique, &[vec![VindexValue::Bytes(b"amy@new")]], &k1).unwrap() {
        let done = run(&mut conn, &sql).await;
        assert_eq!(done.ok.unwrap().affected_rows, 1);
    }

    // Integer values of a non-unique lookup: one IN, several keyspace ids.
    let lookup = LookupKind::of("lookup").unwrap();
    let ip = params("id_lookup", "id");
    let rows = vec![
        (vec![VindexValue::Int(7)], k1.clone()),
        (vec![VindexValue::Int(7)], k2.clone()),
        (vec![VindexValue::UInt(9)], k2.clone()),
    ];
    run(
        &mut conn,
        &insert_sql(&ip, lookup, &rows, false).unwrap().unwrap(),
    )
    .await;
    let values = [
        VindexValue::Int(9),
        VindexValue::Int(8),
        VindexValue::UInt(7),
    ];
    let answer = run(&mut conn, &map_sql(map_plan(&ip, lookup, &values, false))).await;
    assert_eq!(
        decode_map(&ip, lookup, &values, &answer.rows).unwrap(),
        vec![
            Destination::KeyspaceIds(vec![k2.clone()]),
            Destination::None,
            Destination::KeyspaceIds(vec![k1.clone(), k2.clone()]),
        ]
    );
    // autocommit upserts: the same insert again is not a duplicate error.
    let mut auto = ip.clone();
    auto.autocommit = true;
    run(
        &mut conn,
        &insert_sql(&auto, lookup, &rows, false).unwrap().unwrap(),
    )
    .await;

    // A consistent lookup's duplicate whose owner row is gone is taken over.
    let consistent = LookupKind::of("consistent_lookup_unique").unwrap();
    let statements = consistent_statements(
        &p,
        consistent,
        "customer",
        &["email".to_string()],
        &[VindexValue::Bytes("zoë@x".as_bytes())],
        &k1,
    )
    .unwrap();
    run(&mut conn, "BEGIN").await;
    let locked = run(&mut conn, &statements.lock_lookup).await;
    let step = resolve_consistent_duplicate(&p, consistent, &locked.rows, None, &k1).unwrap();
    assert_eq!(step, DuplicateResolution::CheckOwner(k2.clone()));
    let owners = run(&mut conn, &statements.lock_owner).await;
    let step =
        resolve_consistent_duplicate(&p, consistent, &locked.rows, Some(owners.rows.len()), &k1)
            .unwrap();
    assert_eq!(step, DuplicateResolution::TakeOver);
    run(&mut conn, &statements.update_lookup).await;
    run(&mut conn, "COMMIT").await;
    let values = [VindexValue::Bytes("zoë@x".as_bytes())];
    let answer = run(&mut conn, &map_sql(map_plan(&p, unique, &values, false))).await;
    assert_eq!(
        decode_map(&p, unique, &values, &answer.rows).unwrap(),
        vec![Destination::KeyspaceIds(vec![k1.clone()])]
    );
    // With a live owner row the duplicate is real.
    run(
        &mut conn,
        "INSERT INTO customer VALUES (1, _utf8mb4 X'7A6FC3AB4078')",
    )
    .await;
    let owners = run(&mut conn, &statements.lock_owner).await;
    let locked = run(&mut conn, &statements.lock_lookup).await;
    assert_eq!(
        resolve_consistent_duplicate(&p, consistent, &locked.rows, Some(owners.rows.len()), &k2)
            .unwrap(),
        DuplicateResolution::Duplicate
    );
    // The single-row insert of a fresh value runs as generated.
    let fresh = consistent_statements(
        &p,
        consistent,
        "customer",
        &["email".to_string()],
        &[VindexValue::Bytes(b"new@x")],
        &k2,
    )
    .unwrap();
    run(&mut conn, &fresh.insert).await;
    mysqld.stop().await.ok();
}
