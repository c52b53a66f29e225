//! Lookup vindexes through the gate, on the sharded_clients cluster:
//! `member.email` (lookup_unique, its table in the unsharded `commerce`) and
//! `morder.order_id` / `morder.sku` (consistent_lookup_unique /
//! consistent_lookup, their tables sharded in `customer` itself). Checks that
//! inserts, updates, deletes and rollbacks keep the lookup tables exact, that
//! reads are routed by the lookup (a planted row on the wrong shard stays
//! invisible), and the duplicate and stale-entry rules.

use mysql_async::prelude::*;
use mysql_async::{Conn, Error, Row};

use super::common::ctl;
use super::tutorial_cluster::{CUSTOMER_SHARDS, customer_shard, keyspace_id};
use super::{connect, ids_per_shard};

pub const COMMERCE_SCHEMA: &str = "
create table if not exists member_email_idx(email varchar(128) not null, keyspace_id varbinary(16), primary key(email));
create table if not exists moved(id bigint not null, label varchar(32), primary key(id));
";

pub const CUSTOMER_SCHEMA: &str = "
create table member(member_id bigint not null, email varchar(128), nick varchar(64), primary key(member_id));
create table morder(order_id bigint not null, member_id bigint not null, sku varchar(64), primary key(order_id));
create table morder_id_idx(order_id bigint not null, keyspace_id varbinary(16), primary key(order_id));
create table morder_sku_idx(sku varchar(64) not null, keyspace_id varbinary(16), primary key(sku, keyspace_id));
create table moved(id bigint not null, label varchar(32), primary key(id));
";

/// VSchema entries merged into the customer keyspace's.
pub const CUSTOMER_VINDEXES: &str = r#"
    "member_email": {
      "type": "lookup_unique",
      "params": { "table": "commerce.member_email_idx", "from": "email", "to": "keyspace_id" },
      "owner": "member"
    },
    "morder_id": {
      "type": "consistent_lookup_unique",
      "params": { "table": "customer.morder_id_idx", "from": "order_id", "to": "keyspace_id" },
      "owner": "morder"
    },
    "morder_sku": {
      "type": "consistent_lookup",
      "params": { "table": "customer.morder_sku_idx", "from": "sku", "to": "keyspace_id" },
      "owner": "morder"
    }"#;

pub const CUSTOMER_TABLES: &str = r#"
    "member": { "column_vindexes": [
      { "column": "member_id", "name": "xxhash" },
      { "column": "email", "name": "member_email" } ] },
    "morder": { "column_vindexes": [
      { "column": "member_id", "name": "xxhash" },
      { "column": "order_id", "name": "morder_id" },
      { "column": "sku", "name": "morder_sku" } ] },
    "morder_id_idx": { "column_vindexes": [{ "column": "order_id", "name": "hash" }] },
    "morder_sku_idx": { "column_vindexes": [{ "column": "sku", "name": "xxhash" }] },
    "moved": { "column_vindexes": [{ "column": "id", "name": "hash" }] }"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn member_ksid(member_id: i64) -> String {
    hex(keyspace_id("xxhash", member_id).as_bytes())
}

async fn pairs(conn: &mut Conn, sql: &str) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = conn
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.sort();
    rows
}

fn server_code(e: &Error) -> Option<u16> {
    match e {
        Error::Server(s) => Some(s.code),
        _ => None,
    }
}

async fn email_index(port: u16) -> Vec<(String, String)> {
    let mut commerce = connect(port, "commerce").await;
    let rows = pairs(
        &mut commerce,
        "SELECT email, hex(keyspace_id) FROM member_email_idx",
    )
    .await;
    commerce.disconnect().await.unwrap();
    rows
}

/// The expected email index of members `(id, email)`.
fn expected_index(members: &[(i64, String)]) -> Vec<(String, String)> {
    let mut want: Vec<(String, String)> = members
        .iter()
        .map(|(id, email)| (email.clone(), member_ksid(*id)))
        .collect();
    want.sort();
    want
}

pub async fn owned_lookup_unique(port: u16) {
    let mut conn = connect(port, "customer").await;
    let mut members: Vec<(i64, String)> = (1..=20).map(|i| (i, format!("m{i}@x"))).collect();
    let values: Vec<String> = members[..16]
        .iter()
        .map(|(id, email)| format!("({id}, '{email}', 'n{id}')"))
        .collect();
    conn.query_drop(format!(
        "INSERT INTO member (member_id, email, nick) VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap();
    assert_eq!(conn.affected_rows(), 16);
    // Prepared inserts take the same path.
    for (id, email) in &members[16..] {
        conn.exec_drop(
            "INSERT INTO member (member_id, email, nick) VALUES (?, ?, 'p')",
            (id, email),
        )
        .await
        .unwrap();
    }
    assert_eq!(email_index(port).await, expected_index(&members));
    let by_shard = ids_per_shard(port, "member", "member_id").await;
    assert_eq!(by_shard.values().map(Vec::len).sum::<usize>(), 20);

    // Reads by email go where the lookup says: a row planted on the other
    // shard with the same email is never seen.
    let home = customer_shard("xxhash", 7);
    let other = CUSTOMER_SHARDS.iter().find(|s| **s != home).unwrap();
    let mut planted = connect(port, &format!("customer:{other}")).await;
    planted
        .query_drop("INSERT INTO member (member_id, email, nick) VALUES (7007, 'm7@x', 'planted')")
        .await
        .unwrap();
    let found: Vec<(i64, String)> = conn
        .query("SELECT member_id, nick FROM member WHERE email = 'm7@x'")
        .await
        .unwrap();
    assert_eq!(found, vec![(7, "n7".to_string())], "routed by the lookup");
    let found: Vec<i64> = conn
        .exec("SELECT member_id FROM member WHERE email = ?", ("m7@x",))
        .await
        .unwrap();
    assert_eq!(found, vec![7], "prepared, routed by the lookup");
    let found: Vec<i64> = conn
        .query("SELECT member_id FROM member WHERE email IN ('m3@x', 'm7@x', 'nobody@x') ORDER BY member_id")
        .await
        .unwrap();
    assert_eq!(found, vec![3, 7]);
    let plan: Vec<String> = conn
        .query("VEXPLAIN PLAN SELECT nick FROM member WHERE email = 'm7@x'")
        .await
        .unwrap();
    assert!(
        plan[0].contains("member_email (lookup_unique)"),
        "plan names the lookup: {plan:?}"
    );
    planted
        .query_drop("DELETE FROM member WHERE member_id = 7007")
        .await
        .unwrap();
    planted.disconnect().await.unwrap();

    // A duplicate email fails, and the member row is not written either.
    let err = conn
        .query_drop("INSERT INTO member (member_id, email) VALUES (21, 'm5@x')")
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(1062), "{err}");
    let count: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM member WHERE member_id = 21")
        .await
        .unwrap();
    assert_eq!(count, Some(0), "the failed insert left no row");
    assert_eq!(email_index(port).await, expected_index(&members));

    // Changing an email moves its entry; deleting by email removes it.
    conn.query_drop("UPDATE member SET email = 'new7@x', nick = 'moved' WHERE member_id = 7")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 1);
    members[6].1 = "new7@x".to_string();
    assert_eq!(email_index(port).await, expected_index(&members));
    let found: Vec<i64> = conn
        .query("SELECT member_id FROM member WHERE email = 'new7@x'")
        .await
        .unwrap();
    assert_eq!(found, vec![7]);
    conn.exec_drop(
        "UPDATE member SET email = ? WHERE email = ?",
        ("p8@x", "m8@x"),
    )
    .await
    .unwrap();
    members[7].1 = "p8@x".to_string();
    assert_eq!(email_index(port).await, expected_index(&members));
    conn.query_drop("DELETE FROM member WHERE email = 'new7@x'")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 1);
    members.remove(6);
    conn.query_drop("DELETE FROM member WHERE member_id IN (1, 2)")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 2);
    members.retain(|(id, _)| *id > 2);
    assert_eq!(email_index(port).await, expected_index(&members));

    // A rolled-back transaction leaves neither row nor entry; a committed
    // one leaves both.
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO member (member_id, email) VALUES (100, 'm100@x')")
        .await
        .unwrap();
    conn.query_drop("DELETE FROM member WHERE member_id = 3")
        .await
        .unwrap();
    conn.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(email_index(port).await, expected_index(&members));
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO member (member_id, email) VALUES (101, 'm101@x')")
        .await
        .unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    members.push((101, "m101@x".to_string()));
    assert_eq!(email_index(port).await, expected_index(&members));

    // What stays unsupported says so.
    let err = conn
        .query_drop("UPDATE member SET email = CONCAT(email, '.org') WHERE member_id = 4")
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(1235), "{err}");
    let err = conn
        .query_drop("INSERT IGNORE INTO member (member_id, email) VALUES (4, 'm4@x')")
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(1235), "{err}");
    conn.disconnect().await.unwrap();
}

/// A lookup table's (value, hex keyspace id) rows, sorted.
type Index = Vec<(String, String)>;

async fn order_indexes(conn: &mut Conn) -> (Index, Index) {
    let ids = pairs(
        conn,
        "SELECT CAST(order_id AS CHAR), hex(keyspace_id) FROM morder_id_idx",
    )
    .await;
    let skus = pairs(conn, "SELECT sku, hex(keyspace_id) FROM morder_sku_idx").await;
    (ids, skus)
}

/// (order_id, member_id, sku) of the orders expected to exist.
fn expected_orders(orders: &[(i64, i64, String)]) -> (Index, Index) {
    let mut ids: Index = orders
        .iter()
        .map(|(o, m, _)| (o.to_string(), member_ksid(*m)))
        .collect();
    ids.sort();
    let mut skus: Index = orders
        .iter()
        .map(|(_, m, s)| (s.clone(), member_ksid(*m)))
        .collect();
    skus.sort();
    skus.dedup();
    (ids, skus)
}

pub async fn consistent_lookups(port: u16) {
    let mut conn = connect(port, "customer").await;
    // Each member's orders have distinct skus; some skus are shared by
    // members on both shards.
    let mut orders: Vec<(i64, i64, String)> = (1..=12)
        .map(|o| (o, o % 6 + 1, format!("sku-{}", o % 4)))
        .collect();
    let values: Vec<String> = orders
        .iter()
        .map(|(o, m, s)| format!("({o}, {m}, '{s}')"))
        .collect();
    conn.query_drop(format!(
        "INSERT INTO morder (order_id, member_id, sku) VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap();
    assert_eq!(order_indexes(&mut conn).await, expected_orders(&orders));

    let found: Vec<(i64, String)> = conn
        .query("SELECT member_id, sku FROM morder WHERE order_id = 5")
        .await
        .unwrap();
    assert_eq!(found, vec![(6, "sku-1".to_string())]);
    let found: Vec<i64> = conn
        .query("SELECT order_id FROM morder WHERE sku = 'sku-2' ORDER BY order_id")
        .await
        .unwrap();
    assert_eq!(found, vec![2, 6, 10]);
    let count: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM morder WHERE sku IN ('sku-0', 'sku-3')")
        .await
        .unwrap();
    assert_eq!(count, Some(6));

    // A stale entry (its row never committed) is taken over by a new row.
    let stale_ksid = member_ksid(999);
    let mut raw: Conn = connect(port, "customer").await;
    raw.query_drop(format!(
        "INSERT INTO morder_id_idx (order_id, keyspace_id) VALUES (500, X'{stale_ksid}')"
    ))
    .await
    .unwrap();
    raw.disconnect().await.unwrap();
    conn.query_drop("INSERT INTO morder (order_id, member_id, sku) VALUES (500, 3, 'sku-x')")
        .await
        .unwrap();
    orders.push((500, 3, "sku-x".to_string()));
    assert_eq!(order_indexes(&mut conn).await, expected_orders(&orders));

    // The same order id for a member on the other shard: the entry's row
    // exists, so it is a duplicate.
    let holder = 5_i64; // order 4's member
    let holder_shard = customer_shard("xxhash", holder);
    let elsewhere = (1..100)
        .find(|m| customer_shard("xxhash", *m) != holder_shard)
        .unwrap();
    let err = conn
        .query_drop(format!(
            "INSERT INTO morder (order_id, member_id, sku) VALUES (4, {elsewhere}, 'sku-dup')"
        ))
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(1062), "{err}");

    // Deleting and updating keep both lookup tables exact (deletes of
    // entries run after the commit).
    conn.query_drop("DELETE FROM morder WHERE order_id = 5")
        .await
        .unwrap();
    orders.retain(|(o, _, _)| *o != 5);
    conn.query_drop("UPDATE morder SET sku = 'sku-new' WHERE order_id = 8")
        .await
        .unwrap();
    for o in &mut orders {
        if o.0 == 8 {
            o.2 = "sku-new".to_string();
        }
    }
    conn.query_drop("DELETE FROM morder WHERE sku = 'sku-2'")
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 3);
    orders.retain(|(_, _, s)| s != "sku-2");
    assert_eq!(order_indexes(&mut conn).await, expected_orders(&orders));
    let rows: Vec<Row> = conn
        .query("SELECT order_id FROM morder WHERE order_id = 5")
        .await
        .unwrap();
    assert!(rows.is_empty());
    conn.disconnect().await.unwrap();
}

fn apply_rules(ctld_port: u16, json: &str) -> std::process::Output {
    ctl(ctld_port, &["apply-routing-rules", "--rules", json])
}

fn apply_rules_ok(ctld_port: u16, json: &str) {
    let out = apply_rules(ctld_port, json);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A statement run again and again until a routing rule disables its table.
enum Probe<'a> {
    Text(&'a str),
    Prepared(&'a mysql_async::Statement),
}

/// Runs `probe` on `conn` until it fails with 1105 "… disabled …" (gates
/// pick routing rules up on their next topology refresh).
async fn until_disabled(conn: &mut Conn, probe: Probe<'_>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let outcome = match &probe {
            Probe::Text(sql) => conn.query_drop(*sql).await,
            Probe::Prepared(stmt) => conn.exec_drop(*stmt, (0,)).await,
        };
        match outcome {
            Err(e) if server_code(&e) == Some(1105) => {
                assert!(e.to_string().contains("disabled"), "{e}");
                return;
            }
            other => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "never disabled: {other:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

/// Polls `sql` in `conn` until it answers `want` (gates pick routing rules
/// up on their next topology refresh).
async fn eventually_label(conn: &mut Conn, sql: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got: Result<Option<String>, _> = conn.query_first(sql).await;
        match got {
            Ok(Some(label)) if label == want => return,
            other if std::time::Instant::now() > deadline => {
                panic!("{sql}: wanted {want}, still {other:?}")
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

/// Vitess routing rules: a table moved from unsharded `commerce` to sharded
/// `customer` is read from its new home by sessions of either keyspace;
/// a disabled name fails clearly; clearing the rules restores the old route.
pub async fn routing_rules(port: u16, ctld_port: u16) {
    let mut customer = connect(port, "customer").await;
    customer
        .query_drop("INSERT INTO moved (id, label) VALUES (1, 'sharded'), (2, 'sharded'), (3, 'sharded'), (4, 'sharded'), (5, 'sharded')")
        .await
        .unwrap();
    // Prepared before any rule: planned again when the rules change.
    let count_moved = customer
        .prep("SELECT COUNT(*) FROM moved WHERE id > ?")
        .await
        .unwrap();
    let count: Option<i64> = customer.exec_first(&count_moved, (0,)).await.unwrap();
    assert_eq!(count, Some(5));
    let mut commerce = connect(port, "commerce").await;
    commerce
        .query_drop("INSERT INTO moved (id, label) VALUES (1, 'unsharded'), (2, 'unsharded')")
        .await
        .unwrap();
    let label: Option<String> = commerce
        .query_first("SELECT label FROM moved WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(label.as_deref(), Some("unsharded"), "before any rule");

    let bad = apply_rules(
        ctld_port,
        r#"{"rules": [{"from_table": "moved", "to_tables": ["nowhere.moved"]}]}"#,
    );
    assert!(
        !bad.status.success(),
        "a rule into a missing keyspace is refused"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nowhere"));

    let rules = r#"{"rules": [
        {"from_table": "moved", "to_tables": ["customer.moved"]},
        {"from_table": "commerce.moved", "to_tables": ["customer.moved"]}]}"#;
    apply_rules_ok(ctld_port, rules);
    eventually_label(
        &mut commerce,
        "SELECT label FROM moved WHERE id = 1",
        "sharded",
    )
    .await;
    let count: Option<i64> = commerce
        .query_first("SELECT COUNT(*) FROM moved")
        .await
        .unwrap();
    assert_eq!(count, Some(5), "the scatter over the table's new home");
    let rows: Vec<(i64, String)> = commerce
        .exec("SELECT id, label FROM moved WHERE id = ?", (4,))
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![(4, "sharded".to_string())],
        "prepared, through the rule"
    );
    let seq: Option<i64> = commerce
        .query_first("SELECT COUNT(*) FROM item_seq")
        .await
        .unwrap();
    assert_eq!(
        seq,
        Some(1),
        "other tables of the session's keyspace are untouched"
    );

    apply_rules_ok(
        ctld_port,
        r#"{"rules": [{"from_table": "commerce.moved", "to_tables": []}]}"#,
    );
    until_disabled(
        &mut commerce,
        Probe::Text("SELECT label FROM moved WHERE id = 1"),
    )
    .await;
    // A statement prepared in the customer session before its own table
    // was disabled does not run on its old plan.
    apply_rules_ok(
        ctld_port,
        r#"{"rules": [{"from_table": "customer.moved", "to_tables": []}]}"#,
    );
    // (The statement prepared before the rule is planned again.)
    until_disabled(&mut customer, Probe::Prepared(&count_moved)).await;
    apply_rules_ok(ctld_port, r#"{"rules": []}"#);
    eventually_label(
        &mut commerce,
        "SELECT label FROM moved WHERE id = 1",
        "unsharded",
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match customer.exec_first::<i64, _, _>(&count_moved, (0,)).await {
            Ok(count) => {
                assert_eq!(count, Some(5), "planned again once the rule is gone");
                break;
            }
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "still refused after the rules were cleared: {e}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    commerce.disconnect().await.unwrap();
    customer.disconnect().await.unwrap();
}
