//! Real clients through the gate against a sharded keyspace (`customer` in
//! `-80` and `80-`, sequences in the unsharded `commerce`): concurrent inserts
//! taking sequence ids, prepared statements in the binary protocol (relayed,
//! merged and re-encoded, split inserts) compared with the same statements
//! as text, PyMySQL CRUD, the errors the planner gives, and transactions
//! spanning both shards.
//!
//! One cluster serves every scenario; each scenario runs to the end even
//! when an earlier one failed, and the test fails listing all that did.

mod common;
mod lookup;
#[path = "tutorial/cluster.rs"]
mod tutorial_cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::time::Instant;

use common::LocalCluster;
use mysql_async::consts::ColumnType;
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder, Row, Value};
use tutorial_cluster::{CUSTOMER_SHARDS, apply_schema_sql, apply_vschema_text, customer_shard};

const COMMERCE_SCHEMA: &str = "
create table if not exists item_seq(id int, next_id bigint, cache bigint, primary key(id)) comment 'vitess_sequence';
insert into item_seq(id, next_id, cache) values (0, 1, 10);
create table if not exists py_item_seq(id int, next_id bigint, cache bigint, primary key(id)) comment 'vitess_sequence';
insert into py_item_seq(id, next_id, cache) values (0, 1, 5);
";

const COMMERCE_VSCHEMA: &str = r#"{
  "tables": {
    "item_seq": { "type": "sequence" },
    "py_item_seq": { "type": "sequence" },
    "member_email_idx": {},
    "moved": {}
  }
}"#;

const CUSTOMER_SCHEMA: &str = "
create table item(id bigint not null, client int not null, n int not null, primary key(id));
create table person(person_id bigint not null, email varchar(128), born date, note varchar(64), primary key(person_id));
create table customer(customer_id bigint not null, email varchar(128), primary key(customer_id));
create table corder(order_id bigint not null, customer_id bigint, sku varchar(128), price bigint, primary key(order_id));
create table py_item(id bigint not null, name varchar(64), qty int, primary key(id));
create table tx_item(id bigint not null, label varchar(32), primary key(id));
create table py_note(id bigint not null, label varchar(32), primary key(id));
create table session_item(id bigint not null, label varchar(32), primary key(id));
";

const CUSTOMER_VSCHEMA: &str = r#"{
  "sharded": true,
  "vindexes": {
    "xxhash": { "type": "xxhash" },
    "hash": { "type": "hash" },
    @VINDEXES@
  },
  "tables": {
    "item": {
      "column_vindexes": [{ "column": "id", "name": "hash" }],
      "auto_increment": { "column": "id", "sequence": "item_seq" }
    },
    "person": { "column_vindexes": [{ "column": "person_id", "name": "xxhash" }] },
    "customer": { "column_vindexes": [{ "column": "customer_id", "name": "xxhash" }] },
    "corder": { "column_vindexes": [{ "column": "customer_id", "name": "xxhash" }] },
    "py_item": {
      "column_vindexes": [{ "column": "id", "name": "hash" }],
      "auto_increment": { "column": "id", "sequence": "py_item_seq" }
    },
    "tx_item": { "column_vindexes": [{ "column": "id", "name": "xxhash" }] },
    "py_note": { "column_vindexes": [{ "column": "id", "name": "xxhash" }] },
    "session_item": { "column_vindexes": [{ "column": "id", "name": "xxhash" }] },
    @TABLES@
  }
}"#;

const CLIENTS: i64 = 8;
/// The gate's --max-memory-rows in this cluster: below item's row count.
const GATHER_LIMIT: usize = 500;
const INSERTS_PER_CLIENT: i64 = 100;

fn opts(port: u16, db: &str) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("user"))
        .pass(Some(""))
        // Empty: no database selected.
        .db_name((!db.is_empty()).then_some(db))
        .prefer_socket(false)
}

async fn connect(port: u16, db: &str) -> Conn {
    Conn::new(opts(port, db))
        .await
        .unwrap_or_else(|e| panic!("connect to the gate as {db:?}: {e}"))
}

/// A value as text, whichever protocol carried it: the binary protocol's
/// typed values printed as MariaDB prints them in the text protocol.
fn as_text(value: &Value, column_type: ColumnType) -> Option<String> {
    Some(match value {
        Value::NULL => return None,
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Date(y, m, d, h, mi, s, us) => {
            if column_type == ColumnType::MYSQL_TYPE_DATE {
                format!("{y:04}-{m:02}-{d:02}")
            } else if *us == 0 {
                format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            } else {
                format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
            }
        }
        Value::Time(neg, d, h, mi, s, us) => {
            let sign = if *neg { "-" } else { "" };
            let hours = *d as u64 * 24 + *h as u64;
            if *us == 0 {
                format!("{sign}{hours:02}:{mi:02}:{s:02}")
            } else {
                format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}")
            }
        }
    })
}

type TextRow = Vec<Option<String>>;

fn text_rows(rows: &[Row]) -> Vec<TextRow> {
    rows.iter()
        .map(|row| {
            let columns = row.columns_ref();
            (0..row.len())
                .map(|i| as_text(row.as_ref(i).unwrap(), columns[i].column_type()))
                .collect()
        })
        .collect()
}

fn column_types(rows: &[Row]) -> Vec<ColumnType> {
    rows.first()
        .map(|r| r.columns_ref().iter().map(|c| c.column_type()).collect())
        .unwrap_or_default()
}

/// Every id of `table`'s `column` on each customer shard, read through
/// shard-targeted connections.
async fn ids_per_shard(port: u16, table: &str, column: &str) -> BTreeMap<&'static str, Vec<i64>> {
    let mut by_shard = BTreeMap::new();
    for shard in CUSTOMER_SHARDS {
        let mut conn = connect(port, &format!("customer:{shard}")).await;
        let ids: Vec<i64> = conn
            .query(format!("SELECT {column} FROM {table}"))
            .await
            .unwrap_or_else(|e| panic!("reading {table} on {shard}: {e}"));
        conn.disconnect().await.unwrap();
        by_shard.insert(shard, ids);
    }
    by_shard
}

/// Asserts every id on a shard is one vindex `kind` maps there.
fn assert_placed(kind: &str, table: &str, by_shard: &BTreeMap<&'static str, Vec<i64>>) {
    for (shard, ids) in by_shard {
        for id in ids {
            assert_eq!(
                customer_shard(kind, *id),
                *shard,
                "{table} row {id} is on {shard}, but {kind} maps it elsewhere"
            );
        }
    }
}

/// 8 clients x 100 inserts, single- and multi-row, into a table whose ids
/// come from a sequence with a small cache (many block refills under
/// contention).
async fn concurrent_sequence_inserts(port: u16) {
    let began = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(port, "customer").await;
            // (client, n of the first row, LAST_INSERT_ID the OK carried)
            let mut firsts = Vec::new();
            for i in 0..INSERTS_PER_CLIENT {
                let n = i * 10;
                let rows = if i % 3 == 0 { 3 } else { 1 };
                let values: Vec<String> = (0..rows)
                    .map(|k| format!("({client}, {})", n + k))
                    .collect();
                let sql = format!("INSERT INTO item (client, n) VALUES {}", values.join(", "));
                conn.query_drop(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("client {client}: {sql}: {e}"));
                assert_eq!(conn.affected_rows(), rows as u64, "{sql}");
                firsts.push((client, n, conn.last_insert_id().unwrap_or(0)));
            }
            conn.disconnect().await.unwrap();
            firsts
        }));
    }
    let mut firsts = Vec::new();
    for task in tasks {
        firsts.extend(task.await.expect("an inserting client panicked"));
    }
    println!("{} inserts in {:?}", firsts.len(), began.elapsed());

    let per_client: i64 = (0..INSERTS_PER_CLIENT)
        .map(|i| if i % 3 == 0 { 3 } else { 1 })
        .sum();
    let expected_rows = (CLIENTS * per_client) as usize;

    let mut conn = connect(port, "customer").await;
    let rows: Vec<(i64, i64, i64)> = conn.query("SELECT id, client, n FROM item").await.unwrap();
    assert_eq!(
        rows.len(),
        expected_rows,
        "rows after the concurrent inserts"
    );
    let ids: BTreeSet<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(ids.len(), expected_rows, "sequence ids handed out twice");
    assert!(ids.iter().all(|id| *id >= 1), "ids start at next_id 1");
    let by_key: BTreeMap<(i64, i64), i64> = rows.iter().map(|r| ((r.1, r.2), r.0)).collect();
    assert_eq!(by_key.len(), expected_rows, "every (client, n) stored once");
    for (client, n, last_insert_id) in &firsts {
        assert_eq!(
            by_key.get(&(*client, *n)).copied().map(|id| id as u64),
            Some(*last_insert_id),
            "LAST_INSERT_ID of client {client}'s insert of n={n} is its first row's id"
        );
    }
    let count: Option<i64> = conn.query_first("SELECT COUNT(*) FROM item").await.unwrap();
    assert_eq!(count, Some(expected_rows as i64), "merged COUNT(*)");
    conn.disconnect().await.unwrap();

    let by_shard = ids_per_shard(port, "item", "id").await;
    assert_placed("hash", "item", &by_shard);
    let on_shards: BTreeSet<i64> = by_shard.values().flatten().copied().collect();
    assert_eq!(
        by_shard.values().map(Vec::len).sum::<usize>(),
        expected_rows,
        "rows on the shards"
    );
    assert_eq!(
        on_shards, ids,
        "the shards hold exactly the rows the gate reads"
    );
    assert!(
        by_shard.values().all(|ids| !ids.is_empty()),
        "both shards got rows"
    );

    let mut commerce = connect(port, "commerce").await;
    let next_id: Option<i64> = commerce
        .query_first("SELECT next_id FROM item_seq WHERE id = 0")
        .await
        .unwrap();
    let max_id = *ids.last().unwrap();
    assert!(
        next_id.unwrap() > max_id,
        "item_seq.next_id {next_id:?} must be past every id handed out ({max_id})"
    );
    commerce.disconnect().await.unwrap();
}

/// A statement run as text and as a prepared statement (binary protocol):
/// the same rows, the same column types.
async fn same_both_ways(
    conn: &mut Conn,
    text_sql: &str,
    prepared_sql: &str,
    params: Vec<Value>,
) -> (Vec<TextRow>, Vec<Row>) {
    let text: Vec<Row> = conn
        .query(text_sql)
        .await
        .unwrap_or_else(|e| panic!("text {text_sql}: {e}"));
    let binary: Vec<Row> = conn
        .exec(prepared_sql, params.clone())
        .await
        .unwrap_or_else(|e| panic!("prepared {prepared_sql} with {params:?}: {e}"));
    assert_eq!(
        text_rows(&binary),
        text_rows(&text),
        "prepared {prepared_sql} ({params:?}) and text {text_sql} differ"
    );
    assert_eq!(
        column_types(&binary),
        column_types(&text),
        "column types of {prepared_sql} and {text_sql}"
    );
    (text_rows(&text), binary)
}

/// Prepared statements through the sharded keyspace: an INSERT split by
/// vindex with NULL, string and date parameters, point selects, scatters
/// with merged ORDER BY/LIMIT and aggregates.
async fn prepared_statements(port: u16) {
    let mut conn = connect(port, "customer").await;
    // (person_id, email, born as (year, month, day), note)
    type Person = (i64, String, (u16, u8, u8), Option<String>);
    let people: Vec<Person> = (1..=12)
        .map(|i| {
            let note = (i % 2 == 0).then(|| format!("note é'{i}"));
            (
                i,
                format!("p{i:02}@example.com"),
                (1980 + (i % 4) as u16, (i % 12 + 1) as u8, (i + 10) as u8),
                note,
            )
        })
        .collect();
    for chunk in people.chunks(3) {
        let mut params = Vec::new();
        for (id, email, (y, m, d), note) in chunk {
            params.push(Value::Int(*id));
            params.push(Value::Bytes(email.clone().into_bytes()));
            params.push(Value::Date(*y, *m, *d, 0, 0, 0, 0));
            params.push(
                note.clone()
                    .map_or(Value::NULL, |n| Value::Bytes(n.into_bytes())),
            );
        }
        conn.exec_drop(
            "INSERT INTO person (person_id, email, born, note) VALUES (?, ?, ?, ?), (?, ?, ?, ?), (?, ?, ?, ?)",
            params,
        )
        .await
        .expect("prepared multi-row INSERT");
        assert_eq!(conn.affected_rows(), 3, "rows of one prepared INSERT");
    }
    let by_shard = ids_per_shard(port, "person", "person_id").await;
    assert_placed("xxhash", "person", &by_shard);
    assert_eq!(by_shard.values().map(Vec::len).sum::<usize>(), 12);

    let expected_row = |id: i64| -> TextRow {
        let (_, email, (y, m, d), note) = &people[(id - 1) as usize];
        vec![
            Some(id.to_string()),
            Some(email.clone()),
            Some(format!("{y:04}-{m:02}-{d:02}")),
            note.clone(),
        ]
    };

    // Point selects by the vindex column: one shard, relayed.
    let plan: Option<String> = conn
        .query_first("VEXPLAIN PLAN SELECT * FROM person WHERE person_id = 3")
        .await
        .unwrap();
    let plan = plan.unwrap_or_default();
    assert!(
        !plan.contains("Scatter"),
        "a point select by vindex scatters: {plan}"
    );
    let point = "SELECT person_id, email, born, note FROM person WHERE person_id = ?";
    for id in [1, 2, 7, 12] {
        let text =
            format!("SELECT person_id, email, born, note FROM person WHERE person_id = {id}");
        let (rows, binary) = same_both_ways(&mut conn, &text, point, vec![Value::Int(id)]).await;
        assert_eq!(rows, vec![expected_row(id)], "person {id}");
        // Binary rows carry typed values: the id as an integer, the date as a date.
        let values = binary[0].clone().unwrap();
        assert_eq!(values[0], Value::Int(id), "binary BIGINT");
        assert!(
            matches!(values[2], Value::Date(..)),
            "binary DATE: {values:?}"
        );
    }
    let none: Vec<Row> = conn.exec(point, vec![Value::NULL]).await.unwrap();
    assert!(none.is_empty(), "person_id = NULL matches nothing");

    // A string parameter on a non-vindex column: scatter.
    let (rows, _) = same_both_ways(
        &mut conn,
        "SELECT person_id, note FROM person WHERE email = 'p08@example.com'",
        "SELECT person_id, note FROM person WHERE email = ?",
        vec![Value::Bytes(b"p08@example.com".to_vec())],
    )
    .await;
    assert_eq!(rows, vec![vec![Some("8".into()), Some("note é'8".into())]]);

    // Scatter with ORDER BY on several keys and LIMIT, a date parameter.
    let (rows, _) = same_both_ways(
        &mut conn,
        "SELECT person_id, born FROM person WHERE born >= '1981-01-01' ORDER BY born DESC, person_id LIMIT 5",
        "SELECT person_id, born FROM person WHERE born >= ? ORDER BY born DESC, person_id LIMIT 5",
        vec![Value::Date(1981, 1, 1, 0, 0, 0, 0)],
    )
    .await;
    let mut want: Vec<TextRow> = (1..=12)
        .map(expected_row)
        .filter(|r| r[2].as_deref().unwrap() >= "1981-01-01")
        .map(|r| vec![r[0].clone(), r[2].clone()])
        .collect();
    want.sort_by(|a, b| {
        b[1].cmp(&a[1]).then_with(|| {
            let id = |r: &TextRow| r[0].as_ref().unwrap().parse::<i64>().unwrap();
            id(a).cmp(&id(b))
        })
    });
    want.truncate(5);
    assert_eq!(rows, want, "merged ORDER BY born DESC, person_id LIMIT 5");

    // Aggregates merged across shards, re-encoded in binary.
    let (rows, binary) = same_both_ways(
        &mut conn,
        "SELECT COUNT(*), COUNT(note), SUM(person_id), MIN(born), MAX(email) FROM person WHERE person_id > 2",
        "SELECT COUNT(*), COUNT(note), SUM(person_id), MIN(born), MAX(email) FROM person WHERE person_id > ?",
        vec![Value::Int(2)],
    )
    .await;
    let min_born = (3..=12)
        .map(|i| expected_row(i)[2].clone().unwrap())
        .min()
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            Some("10".into()),
            Some("5".into()),
            Some("75".into()),
            Some(min_born),
            Some("p12@example.com".into()),
        ]]
    );
    let values = binary[0].clone().unwrap();
    assert_eq!(values[0], Value::Int(10), "binary COUNT(*) is an integer");

    // Queries answered over rows the gate gathers (a derived table that
    // needs every shard's rows; a select list the merge cannot compute),
    // with parameters both in the gathering query and in the rest.
    let max_born = (3..=12)
        .map(|i| expected_row(i)[2].clone().unwrap())
        .max()
        .unwrap();
    let (rows, binary) = same_both_ways(
        &mut conn,
        "SELECT d.n, IFNULL(d.latest, 'never') FROM (SELECT COUNT(*) AS n, MAX(born) AS latest FROM person WHERE person_id > 2) AS d",
        "SELECT d.n, IFNULL(d.latest, ?) FROM (SELECT COUNT(*) AS n, MAX(born) AS latest FROM person WHERE person_id > ?) AS d",
        vec![Value::Bytes(b"never".to_vec()), Value::Int(2)],
    )
    .await;
    assert_eq!(rows, vec![vec![Some("10".into()), Some(max_born)]]);
    assert_eq!(binary[0].clone().unwrap()[0], Value::Int(10));
    let (rows, _) = same_both_ways(
        &mut conn,
        "SELECT IFNULL(SUM(person_id), 0) + 1, COUNT(*) DIV 3 FROM person WHERE person_id > 2",
        "SELECT IFNULL(SUM(person_id), 0) + ?, COUNT(*) DIV 3 FROM person WHERE person_id > ?",
        vec![Value::Int(1), Value::Int(2)],
    )
    .await;
    assert_eq!(rows, vec![vec![Some("76".into()), Some("3".into())]]);

    // GROUP BY with a parameter in the filter.
    let (rows, _) = same_both_ways(
        &mut conn,
        "SELECT YEAR(born) AS y, COUNT(*) FROM person WHERE note IS NOT NULL OR person_id < 6 GROUP BY y ORDER BY y",
        "SELECT YEAR(born) AS y, COUNT(*) FROM person WHERE note IS NOT NULL OR person_id < ? GROUP BY y ORDER BY y",
        vec![Value::Int(6)],
    )
    .await;
    let mut years: BTreeMap<String, usize> = BTreeMap::new();
    for id in 1..=12i64 {
        let row = expected_row(id);
        if row[3].is_some() || id < 6 {
            *years
                .entry(row[2].clone().unwrap()[..4].to_string())
                .or_default() += 1;
        }
    }
    let want: Vec<TextRow> = years
        .into_iter()
        .map(|(y, n)| vec![Some(y), Some(n.to_string())])
        .collect();
    assert_eq!(rows, want, "merged GROUP BY");

    // Merged rows holding NULLs (the binary row's NULL bitmap), NULLs first
    // in ascending order as MariaDB sorts them.
    let (rows, binary) = same_both_ways(
        &mut conn,
        "SELECT person_id, note FROM person WHERE person_id > 4 ORDER BY note, person_id",
        "SELECT person_id, note FROM person WHERE person_id > ? ORDER BY note, person_id",
        vec![Value::Int(4)],
    )
    .await;
    let mut want: Vec<TextRow> = (5..=12)
        .map(expected_row)
        .map(|r| vec![r[0].clone(), r[3].clone()])
        .collect();
    want.sort_by_key(|r| (r[1].clone(), r[0].as_ref().unwrap().parse::<i64>().unwrap()));
    assert_eq!(rows, want, "merged ORDER BY with NULLs");
    assert_eq!(binary[0].as_ref(1), Some(&Value::NULL), "binary NULL");

    // AVG and DISTINCT aggregates merged across shards.
    let (rows, _) = same_both_ways(
        &mut conn,
        "SELECT AVG(person_id), COUNT(DISTINCT YEAR(born)), MAX(note) FROM person WHERE born < '1990-01-01'",
        "SELECT AVG(person_id), COUNT(DISTINCT YEAR(born)), MAX(note) FROM person WHERE born < ?",
        vec![Value::Date(1990, 1, 1, 0, 0, 0, 0)],
    )
    .await;
    assert_eq!(
        rows,
        vec![vec![
            Some("6.5000".into()),
            Some("4".into()),
            Some("note é'8".into())
        ]],
        "merged AVG / COUNT(DISTINCT) / MAX"
    );

    // A prepared statement re-executed with other parameters, including NULL.
    let stmt = conn
        .prep("SELECT COUNT(*) FROM person WHERE note <=> ?")
        .await
        .unwrap();
    let nulls: Option<i64> = conn.exec_first(&stmt, vec![Value::NULL]).await.unwrap();
    assert_eq!(nulls, Some(6), "rows whose note is NULL");
    let one: Option<i64> = conn
        .exec_first(&stmt, vec![Value::Bytes("note é'4".as_bytes().to_vec())])
        .await
        .unwrap();
    assert_eq!(one, Some(1));
    conn.close(stmt).await.unwrap();

    // A prepared INSERT whose ids come from the sequence: LAST_INSERT_ID is
    // the first row's, as for text.
    conn.exec_drop(
        "INSERT INTO item (client, n) VALUES (?, ?), (?, ?)",
        vec![
            Value::Int(100),
            Value::Int(1),
            Value::Int(100),
            Value::Int(2),
        ],
    )
    .await
    .expect("prepared INSERT taking sequence ids");
    assert_eq!(conn.affected_rows(), 2);
    let first_id = conn
        .last_insert_id()
        .expect("LAST_INSERT_ID of a prepared INSERT");
    let stored: Vec<(i64, i64)> = conn
        .exec(
            "SELECT n, id FROM item WHERE client = ? ORDER BY n",
            vec![Value::Int(100)],
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(
        stored[0].1 as u64, first_id,
        "first row's id is LAST_INSERT_ID"
    );
    assert_ne!(stored[0].1, stored[1].1);

    // A prepared INSERT ... SELECT: the SELECT's rows, read from every
    // shard, inserted with new sequence ids and split by vindex.
    let (rows, sum): (i64, Option<String>) = conn
        .query_first("SELECT COUNT(*), SUM(n) FROM item WHERE client = 2")
        .await
        .unwrap()
        .unwrap();
    assert!(rows > 0, "client 2 inserted rows");
    conn.exec_drop(
        "INSERT INTO item (client, n) SELECT ?, n + ? FROM item WHERE client = ?",
        vec![Value::Int(102), Value::Int(1000), Value::Int(2)],
    )
    .await
    .expect("prepared INSERT ... SELECT");
    assert_eq!(conn.affected_rows(), rows as u64);
    let (copied, copied_sum, distinct_ids): (i64, Option<String>, i64) = conn
        .query_first("SELECT COUNT(*), SUM(n), COUNT(DISTINCT id) FROM item WHERE client = 102")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((copied, distinct_ids), (rows, rows));
    let want = sum.unwrap().parse::<i64>().unwrap() + 1000 * rows;
    assert_eq!(copied_sum, Some(want.to_string()));

    // One statement executed for many parameter sets.
    conn.exec_batch(
        "UPDATE person SET note = ? WHERE person_id = ?",
        (1..=12i64)
            .filter(|i| i % 3 == 0)
            .map(|i| (format!("batch {i}"), i)),
    )
    .await
    .expect("exec_batch of a routed UPDATE");
    let notes: Vec<(i64, String)> = conn
        .query("SELECT person_id, note FROM person WHERE note LIKE 'batch%' ORDER BY person_id")
        .await
        .unwrap();
    assert_eq!(
        notes,
        vec![
            (3, "batch 3".to_string()),
            (6, "batch 6".to_string()),
            (9, "batch 9".to_string()),
            (12, "batch 12".to_string())
        ]
    );
    conn.disconnect().await.unwrap();
}

/// LIMIT and OFFSET as parameters of a prepared scatter: ORMs paginate
/// this way.
async fn prepared_limit_parameters(port: u16) {
    let mut conn = connect(port, "customer").await;
    // LIMIT and OFFSET as parameters of a scatter.
    let (rows, _) = same_both_ways(
        &mut conn,
        "SELECT person_id FROM person ORDER BY person_id DESC LIMIT 3 OFFSET 2",
        "SELECT person_id FROM person ORDER BY person_id DESC LIMIT ? OFFSET ?",
        vec![Value::Int(3), Value::Int(2)],
    )
    .await;
    assert_eq!(
        rows,
        vec![
            vec![Some("10".into())],
            vec![Some("9".into())],
            vec![Some("8".into())]
        ],
        "LIMIT ? OFFSET ? merged"
    );

    conn.disconnect().await.unwrap();
}

/// PyMySQL's CRUD script (tests/py/sharded_crud.py), then the rows it left
/// checked on their shards.
async fn pymysql_crud(port: u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/sharded_crud.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(port.to_string())
        .args(["customer", "crud"])
        .output()
        .expect("python3 runs (scripts/install-deps.sh installs python3-pymysql)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "PyMySQL CRUD failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pymysql sharded crud ok: 6 rows"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().next().unwrap()).expect("the script's JSON line");
    let left: BTreeSet<i64> = report["left"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let by_shard = ids_per_shard(port, "py_item", "id").await;
    assert_placed("hash", "py_item", &by_shard);
    let on_shards: BTreeSet<i64> = by_shard.values().flatten().copied().collect();
    assert_eq!(on_shards, left, "rows left on the shards");
}

/// The planner's refusals: MariaDB's codes and SQLSTATEs, a message naming
/// what was refused, and the connection still usable afterwards.
async fn planner_errors(port: u16) {
    let mut conn = connect(port, "customer").await;
    conn.query_drop(
        "INSERT INTO customer (customer_id, email) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x'), (4, 'd@x')",
    )
    .await
    .unwrap();
    conn.query_drop(
        "INSERT INTO corder (order_id, customer_id, sku, price) VALUES (10, 1, 'a@x', 5), (11, 4, 'SKU', 7), (12, 2, 'd@x', 9)",
    )
    .await
    .unwrap();
    let cases: &[(&str, u16, &str, &str)] = &[
        (
            "UPDATE customer SET customer_id = 9 WHERE customer_id = 1",
            1235,
            "42000",
            "customer_id",
        ),
        (
            "UPDATE customer SET customer_id = customer_id + 100",
            1235,
            "42000",
            "customer_id",
        ),
        (
            "SELECT * FROM no_such_table",
            1146,
            "42S02",
            "no_such_table",
        ),
        ("DELETE FROM corder LIMIT 1", 1235, "42000", "LIMIT"),
        ("SELEC * FROM customer", 1064, "42000", "SELEC"),
    ];
    let mut failures = Vec::new();
    for (sql, code, state, mentions) in cases {
        match conn.query_drop(*sql).await {
            Err(mysql_async::Error::Server(e)) => {
                if e.code != *code
                    || e.state != *state
                    || !e.message.to_lowercase().contains(&mentions.to_lowercase())
                {
                    failures.push(format!(
                        "{sql}: want {code} ({state}) naming {mentions:?}, got {} ({}) {}",
                        e.code, e.state, e.message
                    ));
                }
            }
            Err(other) => failures.push(format!("{sql}: not a server error: {other}")),
            Ok(()) => failures.push(format!("{sql}: succeeded, want error {code}")),
        }
        let alive: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM customer")
            .await
            .unwrap_or_else(|e| panic!("the connection is unusable after {sql}: {e}"));
        assert_eq!(alive, Some(4), "rows changed by the refused {sql}");
    }
    // A join not on the vindex needs rows of every shard of both sides: the
    // gate either joins them itself, giving the right rows, or refuses with
    // 1235 naming the join; never a per-shard (wrong) answer.
    let join = "SELECT c.customer_id, o.order_id, o.sku FROM customer c JOIN corder o ON c.email = o.sku ORDER BY o.order_id";
    match conn.query::<(i64, i64, String), _>(join).await {
        Ok(rows) => assert_eq!(
            rows,
            vec![(1, 10, "a@x".to_string()), (4, 12, "d@x".to_string())],
            "cross-shard join on a non-vindex column"
        ),
        Err(mysql_async::Error::Server(e)) => {
            if e.code != 1235 || e.state != "42000" || !e.message.to_lowercase().contains("join") {
                failures.push(format!(
                    "{join}: want the joined rows or 1235 (42000) naming the join, got {} ({}) {}",
                    e.code, e.state, e.message
                ));
            }
        }
        Err(other) => failures.push(format!("{join}: not a server error: {other}")),
    }
    // Nothing refused touched a row.
    let rows: Vec<(i64, String)> = conn
        .query("SELECT customer_id, email FROM customer ORDER BY customer_id")
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (1, "a@x".to_string()),
            (2, "b@x".to_string()),
            (3, "c@x".to_string()),
            (4, "d@x".to_string())
        ]
    );
    let orders: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM corder")
        .await
        .unwrap();
    assert_eq!(
        orders,
        Some(3),
        "the refused DELETE ... LIMIT deleted nothing"
    );
    // A query answered over gathered rows may hold at most
    // --max-memory-rows of them (GATHER_LIMIT here; item has more rows).
    let items: Option<i64> = conn.query_first("SELECT COUNT(*) FROM item").await.unwrap();
    assert!(
        items.unwrap() > GATHER_LIMIT as i64,
        "item has {items:?} rows"
    );
    match conn.query_drop("SELECT IFNULL(SUM(n), 0) FROM item").await {
        Err(mysql_async::Error::Server(e)) => assert!(
            e.code == 1235
                && e.state == "42000"
                && e.message.contains(&format!("over {GATHER_LIMIT} rows")),
            "gathering past the limit: {} ({}) {}",
            e.code,
            e.state,
            e.message
        ),
        other => panic!("gathering past the limit: {other:?}"),
    }
    let (within, summed): (Option<String>, Option<String>) = (
        conn.query_first("SELECT IFNULL(SUM(n), 0) FROM item WHERE client = 1")
            .await
            .unwrap(),
        conn.query_first("SELECT SUM(n) FROM item WHERE client = 1")
            .await
            .unwrap(),
    );
    assert!(
        within.is_some() && within == summed,
        "{within:?} vs {summed:?}"
    );
    conn.disconnect().await.unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Ids that xxhash puts `per_shard` on each customer shard.
fn ids_on_every_shard(per_shard: usize) -> Vec<i64> {
    let mut picked = Vec::new();
    for shard in CUSTOMER_SHARDS {
        picked.extend(
            (1..)
                .filter(|id| customer_shard("xxhash", *id) == shard)
                .take(per_shard),
        );
    }
    picked
}

/// PyMySQL as most applications use it: default settings, so autocommit
/// off (PyMySQL sends SET AUTOCOMMIT = 0 on connect), rollback() and
/// commit() of rows on both shards.
async fn pymysql_default_session(port: u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/sharded_crud.py");
    let ids = ids_on_every_shard(1);
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .args([port.to_string(), "customer".into(), "defaults".into()])
        .args(ids.iter().map(|id| id.to_string()))
        .output()
        .expect("python3 runs (scripts/install-deps.sh installs python3-pymysql)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("pymysql default session ok: 2 rows"),
        "PyMySQL with default settings failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_shard = ids_per_shard(port, "py_note", "id").await;
    assert_placed("xxhash", "py_note", &by_shard);
    assert!(by_shard.values().all(|ids| ids.len() == 1), "{by_shard:?}");
}

/// Session settings drivers send on connect (SET NAMES, SET autocommit; a
/// user variable is refused with 1235) in a sharded keyspace and with no database selected
/// (while a keyspace is sharded); then autocommit off spanning both shards.
async fn session_settings(port: u16) {
    let mut failures = Vec::new();
    for db in ["customer", ""] {
        let mut conn = connect(port, db).await;
        // The session's first SET runs once on the connection it reserves.
        conn.query_drop("SET @tessera_count = COALESCE(@tessera_count, 0) + 1")
            .await
            .unwrap();
        let count: Option<i64> = conn.query_first("SELECT @tessera_count").await.unwrap();
        if count != Some(1) {
            failures.push(format!(
                "@tessera_count after one SET (database {db:?}): {count:?}"
            ));
        }
        // A user variable is the session's on every shard.
        conn.query_drop("SET @tessera_probe = 5").await.unwrap();
        let probe: Option<i64> = conn.query_first("SELECT @tessera_probe").await.unwrap();
        if probe != Some(5) {
            failures.push(format!(
                "SELECT @tessera_probe (database {db:?}): {probe:?}"
            ));
        }
        // A SET that reads the variable runs once on each connection.
        conn.query_drop("SET @tessera_probe = @tessera_probe + 1")
            .await
            .unwrap();
        let probe: Option<i64> = conn.query_first("SELECT @tessera_probe").await.unwrap();
        if probe != Some(6) {
            failures.push(format!(
                "@tessera_probe after adding 1 (database {db:?}): {probe:?}"
            ));
        }
        // What would differ from shard to shard, or outlive the session, is
        // refused clearly, and the session stays usable.
        for sql in [
            "SET GLOBAL max_connections = 100",
            "SET @n = (SELECT COUNT(*) FROM customer)",
            "SET @r = RAND()",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        ] {
            match conn.query_drop(sql).await {
                Err(mysql_async::Error::Server(e)) if e.code == 1235 && e.state == "42000" => {}
                other => failures.push(format!(
                    "{sql} (database {db:?}): expected ERROR 1235 (42000), got {other:?}"
                )),
            }
        }
        // A bad variable fails as on a server.
        match conn.query_drop("SET SESSION no_such_variable = 1").await {
            Err(mysql_async::Error::Server(e)) if e.code == 1193 => {}
            other => failures.push(format!(
                "SET SESSION no_such_variable (database {db:?}): expected ERROR 1193, got {other:?}"
            )),
        }
        for sql in ["SET NAMES utf8mb4", "SET autocommit = 1"] {
            if let Err(e) = conn.query_drop(sql).await {
                failures.push(format!("{sql} (database {db:?}): {e}"));
            }
        }
        let charset: Result<Option<String>, _> =
            conn.query_first("SELECT @@character_set_client").await;
        match charset {
            Ok(Some(c)) if c == "utf8mb4" => {}
            other => failures.push(format!(
                "@@character_set_client after SET NAMES utf8mb4 (database {db:?}): {other:?}"
            )),
        }
        conn.disconnect().await.unwrap();
    }

    let ids = ids_on_every_shard(1);
    let mut conn = connect(port, "customer").await;
    let mut other = connect(port, "customer").await;
    match conn.query_drop("SET autocommit = 0").await {
        Err(e) => failures.push(format!("SET autocommit = 0 (database \"customer\"): {e}")),
        Ok(()) => {
            for id in &ids {
                conn.query_drop(format!(
                    "INSERT INTO session_item (id, label) VALUES ({id}, 'off')"
                ))
                .await
                .unwrap();
            }
            let before: Option<i64> = other
                .query_first("SELECT COUNT(*) FROM session_item")
                .await
                .unwrap();
            assert_eq!(before, Some(0), "autocommit = 0 rows visible before COMMIT");
            conn.query_drop("COMMIT").await.unwrap();
            let after: Option<i64> = other
                .query_first("SELECT COUNT(*) FROM session_item")
                .await
                .unwrap();
            assert_eq!(after, Some(ids.len() as i64), "rows after COMMIT");
            conn.query_drop("SET autocommit = 1").await.unwrap();
        }
    }
    conn.disconnect().await.unwrap();
    other.disconnect().await.unwrap();

    // A session variable reaches every shard a statement reads (each shard
    // computes 1/3 with it), and no other session.
    let precise = |conn: Conn| async move {
        let mut conn = conn;
        let count: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM session_item WHERE 1/3 = 0.33333333")
            .await
            .unwrap();
        (conn, count)
    };
    let mut set = connect(port, "customer").await;
    set.query_drop("SET SESSION div_precision_increment = 8")
        .await
        .unwrap();
    let (set, count) = precise(set).await;
    if count != Some(ids.len() as i64) {
        failures.push(format!(
            "div_precision_increment = 8 on every shard: {count:?} of {} rows",
            ids.len()
        ));
    }
    let (plain, count) = precise(connect(port, "customer").await).await;
    if count != Some(0) {
        failures.push(format!("another session got the setting: {count:?}"));
    }
    set.disconnect().await.unwrap();
    plain.disconnect().await.unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// BEGIN; inserts on both shards; ROLLBACK leaves nothing; the same with
/// COMMIT leaves all, and another session sees nothing before the COMMIT.
async fn sharded_transaction(port: u16) {
    let ids = ids_on_every_shard(2);
    let mut conn = connect(port, "customer").await;
    let mut other = connect(port, "customer").await;
    let insert_all = |label: &'static str| {
        ids.iter()
            .map(move |id| format!("INSERT INTO tx_item (id, label) VALUES ({id}, '{label}')"))
            .collect::<Vec<_>>()
    };

    conn.query_drop("BEGIN").await.unwrap();
    for sql in insert_all("rolled back") {
        conn.query_drop(&sql).await.unwrap();
    }
    let inside: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM tx_item")
        .await
        .unwrap();
    assert_eq!(
        inside,
        Some(4),
        "the transaction sees its own rows on both shards"
    );
    conn.query_drop("ROLLBACK").await.unwrap();
    let after: Option<i64> = other
        .query_first("SELECT COUNT(*) FROM tx_item")
        .await
        .unwrap();
    assert_eq!(after, Some(0), "rows visible after ROLLBACK");
    let by_shard = ids_per_shard(port, "tx_item", "id").await;
    assert!(
        by_shard.values().all(Vec::is_empty),
        "rows left on a shard after ROLLBACK: {by_shard:?}"
    );

    conn.query_drop("BEGIN").await.unwrap();
    // A multi-row insert split over both shards, inside the transaction.
    let values: Vec<String> = ids.iter().map(|id| format!("({id}, 'kept')")).collect();
    conn.query_drop(format!(
        "INSERT INTO tx_item (id, label) VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap();
    assert_eq!(conn.affected_rows(), 4);
    let before: Option<i64> = other
        .query_first("SELECT COUNT(*) FROM tx_item")
        .await
        .unwrap();
    assert_eq!(before, Some(0), "another session sees uncommitted rows");
    conn.query_drop("COMMIT").await.unwrap();
    let rows: Vec<(i64, String)> = other
        .query("SELECT id, label FROM tx_item ORDER BY id")
        .await
        .unwrap();
    let mut want: Vec<(i64, String)> = ids.iter().map(|id| (*id, "kept".to_string())).collect();
    want.sort();
    assert_eq!(rows, want, "rows after COMMIT");
    let by_shard = ids_per_shard(port, "tx_item", "id").await;
    assert_placed("xxhash", "tx_item", &by_shard);
    assert!(
        by_shard.values().all(|ids| ids.len() == 2),
        "two committed rows per shard: {by_shard:?}"
    );

    // One shard's part is lost before COMMIT (its backend session killed):
    // the error names that shard and the shard where COMMIT went through.
    let on = |shard: &str| {
        *ids.iter()
            .find(|id| tutorial_cluster::customer_shard("xxhash", **id) == shard)
            .unwrap()
    };
    let (low, high) = (on("-80"), on("80-"));
    conn.query_drop("BEGIN").await.unwrap();
    for id in [low, high] {
        conn.query_drop(format!(
            "UPDATE tx_item SET label = 'partial' WHERE id = {id}"
        ))
        .await
        .unwrap();
    }
    let backend: Option<u64> = conn
        .query_first(format!(
            "SELECT CONNECTION_ID() FROM tx_item WHERE id = {low}"
        ))
        .await
        .unwrap();
    let mut killer = connect(port, "customer:-80").await;
    killer
        .query_drop(format!("KILL {}", backend.unwrap()))
        .await
        .unwrap();
    killer.disconnect().await.unwrap();
    let err = conn.query_drop("COMMIT").await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("customer/-80") && message.contains("went through on customer/80-"),
        "{message}"
    );
    let labels: Vec<(i64, String)> = other
        .query(format!(
            "SELECT id, label FROM tx_item WHERE id IN ({low}, {high}) ORDER BY id"
        ))
        .await
        .unwrap();
    let mut want = vec![(low, "kept".to_string()), (high, "partial".to_string())];
    want.sort();
    assert_eq!(labels, want, "only the 80- part committed");
    conn.disconnect().await.unwrap();
    other.disconnect().await.unwrap();
}

fn set_up(cluster: &LocalCluster) {
    apply_schema_sql(
        cluster,
        &format!("{COMMERCE_SCHEMA}{}", lookup::COMMERCE_SCHEMA),
        "commerce",
    );
    apply_vschema_text(cluster, COMMERCE_VSCHEMA, "commerce");
    tutorial_cluster::wait_for_vschema(
        cluster,
        "",
        "TABLES",
        "item_seq\nmember_email_idx\nmoved\npy_item_seq\n",
    );
    apply_schema_sql(
        cluster,
        &format!("{CUSTOMER_SCHEMA}{}", lookup::CUSTOMER_SCHEMA),
        "customer",
    );
    let customer_vschema = CUSTOMER_VSCHEMA
        .replace("@VINDEXES@", lookup::CUSTOMER_VINDEXES)
        .replace("@TABLES@", lookup::CUSTOMER_TABLES);
    apply_vschema_text(cluster, &customer_vschema, "customer");
    tutorial_cluster::wait_for_vschema(
        cluster,
        "customer",
        "TABLES",
        "corder\ncustomer\nitem\nmember\nmorder\nmorder_id_idx\nmorder_sku_idx\nmoved\nperson\npy_item\npy_note\nsession_item\ntx_item\n",
    );
}

#[test]
fn sharded_clients() {
    let dir = tempfile::tempdir().unwrap();
    let limit = GATHER_LIMIT.to_string();
    let cluster = tutorial_cluster::start_with(dir.path(), &["--max-memory-rows", &limit]);
    set_up(&cluster);
    let port = cluster.ports.gate;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    type Scenario = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;
    let scenarios: Vec<(&str, Scenario)> = vec![
        (
            "concurrent sequence inserts",
            Box::pin(concurrent_sequence_inserts(port)),
        ),
        ("prepared statements", Box::pin(prepared_statements(port))),
        (
            "prepared LIMIT ? OFFSET ?",
            Box::pin(prepared_limit_parameters(port)),
        ),
        ("PyMySQL CRUD", Box::pin(pymysql_crud(port))),
        (
            "PyMySQL default session",
            Box::pin(pymysql_default_session(port)),
        ),
        ("session settings", Box::pin(session_settings(port))),
        ("planner errors", Box::pin(planner_errors(port))),
        ("sharded transaction", Box::pin(sharded_transaction(port))),
        (
            "owned lookup_unique vindex",
            Box::pin(lookup::owned_lookup_unique(port)),
        ),
        (
            "consistent lookup vindexes",
            Box::pin(lookup::consistent_lookups(port)),
        ),
        (
            "routing rules",
            Box::pin(lookup::routing_rules(port, cluster.ports.ctld)),
        ),
    ];
    let mut failed = Vec::new();
    for (name, scenario) in scenarios {
        let began = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(scenario)));
        match outcome {
            Ok(()) => println!("scenario {name}: ok in {:?}", began.elapsed()),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!("scenario {name}: FAILED: {message}");
                failed.push(format!("{name}: {message}"));
            }
        }
    }
    drop(runtime);
    drop(cluster);
    assert!(
        failed.is_empty(),
        "{} scenario(s) failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}
