//! Real clients through the gate of a `local up` cluster: a Rust driver's
//! prepared statements and PyMySQL round-trip every column type; a 100k-row
//! result streams in bounded gate memory; a 20 MiB row crosses the 16 MiB
//! packet split both ways; bad input gets MariaDB's error codes and a broken
//! connection never disturbs the others.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{APP_PASSWORD, APP_USER, LocalCluster, mariadb_client};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder, Row, Value};

fn opts(port: u16, user: &str, password: &str, db: &str) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some(db))
        .prefer_socket(false)
        .max_allowed_packet(Some(64 * 1024 * 1024))
}

async fn gate_conn(c: &LocalCluster) -> Conn {
    Conn::new(opts(c.ports.gate, "user", "", "commerce"))
        .await
        .expect("connect to gate")
}

async fn direct_primary_conn(c: &LocalCluster) -> Conn {
    Conn::new(opts(
        c.ports.mysqld(100),
        APP_USER,
        APP_PASSWORD,
        "commerce",
    ))
    .await
    .expect("connect to primary mysqld")
}

fn rows_values(rows: Vec<Row>) -> Vec<Vec<Value>> {
    rows.into_iter().map(|r| r.unwrap()).collect()
}

/// Drivers report small unsigned integers as `Int`: equal values of either
/// integer variant are the same value.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(i), Value::UInt(u)) | (Value::UInt(u), Value::Int(i)) => {
            *i >= 0 && *i as u64 == *u
        }
        _ => a == b,
    }
}

fn bytes(v: &str) -> Value {
    Value::Bytes(v.as_bytes().to_vec())
}

fn type_rows() -> Vec<Vec<Value>> {
    let text: String = "long 🦀 text ".repeat(400);
    let blob: Vec<u8> = (0..60000u32).map(|i| (i * 7 % 256) as u8).collect();
    vec![
        vec![
            Value::Int(1),
            Value::Int(-128),
            Value::UInt(255),
            Value::Int(-32768),
            Value::UInt(65535),
            Value::Int(-8388608),
            Value::UInt(16777215),
            Value::Int(i32::MIN as i64),
            Value::UInt(u32::MAX as u64),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            bytes("-12345678901234567890123456789012345.123456789012345678901234567890"),
            Value::Float(3.5),
            Value::Double(-1.2345678901234567e300),
            bytes("héllo"),
            bytes("emoji 😀 ünïcödé"),
            bytes(&text),
            Value::Bytes(vec![0x00, 0xff, 0x80, 0x01]),
            Value::Bytes((0..=255u8).collect()),
            Value::Bytes(blob),
            Value::Date(2024, 2, 29, 0, 0, 0, 0),
            Value::Time(true, 1, 10, 20, 30, 123456),
            Value::Date(9999, 12, 31, 23, 59, 59, 999999),
            Value::Date(2001, 2, 3, 4, 5, 6, 654321),
            bytes(r#"{"a": [1, 2.5, "x😀"], "b": null}"#),
            Value::NULL,
        ],
        vec![
            Value::Int(2),
            Value::Int(127),
            Value::UInt(0),
            Value::Int(32767),
            Value::UInt(0),
            Value::Int(8388607),
            Value::UInt(0),
            Value::Int(i32::MAX as i64),
            Value::UInt(0),
            Value::Int(i64::MAX),
            Value::UInt(0),
            bytes("0.000000000000000000000000000001"),
            Value::Float(-0.15625),
            Value::Double(f64::MIN_POSITIVE),
            bytes(""),
            bytes(""),
            bytes(""),
            Value::Bytes(vec![0, 0, 0, 0]),
            Value::Bytes(vec![]),
            Value::Bytes(vec![]),
            Value::Date(1000, 1, 1, 0, 0, 0, 0),
            Value::Time(false, 34, 22, 59, 59, 0),
            Value::Date(1000, 1, 1, 0, 0, 0, 1),
            Value::NULL,
            bytes("[]"),
            Value::Int(7),
        ],
    ]
}

const TYPES_DDL: &str = "CREATE TABLE rs_types (
    id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
    mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
    de DECIMAL(65,30), f FLOAT, d DOUBLE, c CHAR(10), vc VARCHAR(100), t TEXT,
    b BINARY(4), vb VARBINARY(300), bl BLOB, dt DATE, tm TIME(6), dtm DATETIME(6),
    ts TIMESTAMP(6) NULL, j JSON, n INT NULL) DEFAULT CHARSET=utf8mb4";

/// Every column type through the gate's binary protocol, checked against
/// what was sent and against the same queries run directly on the primary.
async fn prepared_types_round_trip(c: &LocalCluster) {
    let mut gate = gate_conn(c).await;
    gate.query_drop("DROP TABLE IF EXISTS rs_types")
        .await
        .unwrap();
    gate.query_drop(TYPES_DDL).await.unwrap();
    let sent = type_rows();
    let insert = format!(
        "INSERT INTO rs_types VALUES ({})",
        vec!["?"; sent[0].len()].join(",")
    );
    for row in &sent {
        gate.exec_drop(insert.as_str(), row.clone()).await.unwrap();
    }
    // Many executes over fresh connections, so statements are re-prepared on
    // different pooled backend connections.
    for round in 0..3 {
        let mut other = gate_conn(c).await;
        let got = rows_values(
            other
                .exec("SELECT * FROM rs_types WHERE id >= ? ORDER BY id", (1,))
                .await
                .unwrap(),
        );
        assert_eq!(got.len(), 2, "round {round}");
        for (want, have) in sent.iter().zip(&got) {
            for (i, (w, h)) in want.iter().zip(have).enumerate() {
                assert!(
                    same_value(w, h),
                    "round {round}, row {:?}, column {i}: sent {w:?}, got {h:?}",
                    want[0]
                );
            }
        }
        other.disconnect().await.unwrap();
    }
    let mut direct = direct_primary_conn(c).await;
    for sql in [
        "SELECT * FROM rs_types ORDER BY id",
        "SELECT id, bu, de, tm, j FROM rs_types",
    ] {
        let via_gate_bin = rows_values(gate.exec(sql, ()).await.unwrap());
        let direct_bin = rows_values(direct.exec(sql, ()).await.unwrap());
        assert_eq!(
            via_gate_bin, direct_bin,
            "binary protocol differs for {sql}"
        );
        let via_gate_text = rows_values(gate.query(sql).await.unwrap());
        let direct_text = rows_values(direct.query(sql).await.unwrap());
        assert_eq!(
            via_gate_text, direct_text,
            "text protocol differs for {sql}"
        );
    }
    gate.query_drop("DROP TABLE rs_types").await.unwrap();
    gate.disconnect().await.unwrap();
    direct.disconnect().await.unwrap();
}

fn pymysql_round_trip(c: &LocalCluster) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/roundtrip.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(c.ports.gate.to_string())
        .output()
        .expect("python3 runs (scripts/install-deps.sh installs python3-pymysql)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "PyMySQL round trip failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pymysql roundtrip ok: 2 rows x 20 columns"),
        "{stdout}"
    );
}

/// 100k rows of ~1 KB: the gate relays them without holding the result.
async fn large_result_streams(c: &LocalCluster) {
    let mut gate = gate_conn(c).await;
    let before = common::rss_kib(c.pid());
    let mut peak = before;
    let mut result = gate
        .query_iter("SELECT seq, REPEAT('x', 1000) FROM seq_1_to_100000")
        .await
        .unwrap();
    let mut count = 0u64;
    let mut bytes_seen = 0u64;
    while let Some(row) = result.next().await.unwrap() {
        count += 1;
        let (seq, pad): (u64, Vec<u8>) = mysql_async::from_row(row);
        assert_eq!(seq, count);
        bytes_seen += pad.len() as u64;
        if count.is_multiple_of(5000) {
            peak = peak.max(common::rss_kib(c.pid()));
            // A slow reader: the gate must apply backpressure, not buffer.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    drop(result);
    assert_eq!(count, 100_000);
    assert_eq!(bytes_seen, 100_000_000);
    let growth_mib = (peak.saturating_sub(before)) / 1024;
    println!("gate RSS before {before} KiB, peak {peak} KiB while relaying ~100 MB");
    assert!(
        growth_mib < 32,
        "gate memory grew by {growth_mib} MiB while relaying a ~100 MB result"
    );
    gate.disconnect().await.unwrap();
}

/// A 20 MiB value crosses the 16 MiB packet boundary in both directions.
async fn twenty_mib_row(c: &LocalCluster) {
    let mut gate = gate_conn(c).await;
    gate.query_drop("CREATE TABLE big_rows (id INT PRIMARY KEY, body LONGBLOB)")
        .await
        .unwrap();
    let body: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    gate.exec_drop("INSERT INTO big_rows VALUES (?, ?)", (1, body.clone()))
        .await
        .unwrap();
    let got: Option<Vec<u8>> = gate
        .exec_first("SELECT body FROM big_rows WHERE id = ?", (1,))
        .await
        .unwrap();
    assert!(
        got.as_ref() == Some(&body),
        "20 MiB value differs after the binary round trip"
    );
    let got: Option<Vec<u8>> = gate
        .query_first("SELECT body FROM big_rows WHERE id = 1")
        .await
        .unwrap();
    assert!(
        got.as_ref() == Some(&body),
        "20 MiB value differs after the text round trip"
    );
    let len: Option<u64> = gate
        .query_first("SELECT LENGTH(body) FROM big_rows")
        .await
        .unwrap();
    assert_eq!(len, Some(20 * 1024 * 1024));
    gate.query_drop("DROP TABLE big_rows").await.unwrap();
    gate.disconnect().await.unwrap();
}

fn bad_input_gets_mariadb_errors(c: &LocalCluster) {
    let port = c.ports.gate;
    let denied = mariadb_client(port, "user", "wrong", "commerce", "SELECT 1");
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.contains("ERROR 1045 (28000)"), "{err}");

    let unknown_user = mariadb_client(port, "nobody", "", "commerce", "SELECT 1");
    assert!(String::from_utf8_lossy(&unknown_user.stderr).contains("ERROR 1045 (28000)"));

    let unknown_db = mariadb_client(port, "user", "", "nope", "SELECT 1");
    let err = String::from_utf8_lossy(&unknown_db.stderr);
    // Refused at connect, as MariaDB does, not at the first statement.
    assert!(
        err.contains("ERROR 1049 (42000): Unknown database 'nope'") && !err.contains("at line"),
        "{err}"
    );
    let use_unknown = c.mariadb("commerce", "USE nope");
    assert!(String::from_utf8_lossy(&use_unknown.stderr).contains("ERROR 1049 (42000)"));

    let syntax = c.mariadb("commerce", "SELEC 1");
    let err = String::from_utf8_lossy(&syntax.stderr);
    assert!(
        err.contains("ERROR 1064 (42000)") && err.contains("You have an error in your SQL syntax"),
        "{err}"
    );
}

/// Reads one MySQL packet from a raw socket.
fn read_packet(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Garbage and truncated packets close that connection only.
async fn malformed_packets_are_contained(c: &LocalCluster) {
    let mut bystander = gate_conn(c).await;
    let one: Option<i64> = bystander.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));

    let addr = format!("127.0.0.1:{}", c.ports.gate);
    let timeout = Some(Duration::from_secs(10));

    // Garbage instead of a handshake response.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(timeout).unwrap();
    let greeting = read_packet(&mut s).unwrap();
    assert_eq!(greeting[0], 10, "protocol version 10 greeting");
    s.write_all(&[5, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0x00])
        .unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest); // an error packet, then EOF: closed

    // A header promising more bytes than ever arrive.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(timeout).unwrap();
    read_packet(&mut s).unwrap();
    s.write_all(&[0xe8, 0x03, 0x00, 0x01, 1, 2, 3]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);

    // An authenticated session sending a truncated COM_STMT_EXECUTE and a
    // command byte nobody knows.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(timeout).unwrap();
    read_packet(&mut s).unwrap();
    let caps: u32 = 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0000_0008; // 41, secure, plugin auth, db
    let mut resp = Vec::new();
    resp.extend_from_slice(&caps.to_le_bytes());
    resp.extend_from_slice(&(16u32 << 20).to_le_bytes());
    resp.push(45);
    resp.extend_from_slice(&[0u8; 23]);
    resp.extend_from_slice(b"user\0");
    resp.push(0); // empty auth response
    resp.extend_from_slice(b"commerce\0");
    resp.extend_from_slice(b"mysql_native_password\0");
    let mut frame = (resp.len() as u32).to_le_bytes()[..3].to_vec();
    frame.push(1);
    frame.extend_from_slice(&resp);
    s.write_all(&frame).unwrap();
    let ok = read_packet(&mut s).unwrap();
    assert_eq!(ok[0], 0x00, "empty password accepted: {ok:?}");
    s.write_all(&[2, 0, 0, 0, 0x17, 0x01]).unwrap(); // COM_STMT_EXECUTE, truncated
    let answer = read_packet(&mut s);
    if let Ok(p) = &answer {
        assert_eq!(
            p[0], 0xff,
            "a truncated execute gets an error packet: {p:?}"
        );
    }
    let _ = s.write_all(&[1, 0, 0, 0, 0xee]);
    if let Ok(p) = read_packet(&mut s) {
        assert_eq!(p[0], 0xff, "an unknown command gets an error packet: {p:?}");
        assert_eq!(u16::from_le_bytes([p[1], p[2]]), 1047);
    }

    // The bystander and new clients are unaffected.
    let two: Option<i64> = bystander.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
    let mut fresh = gate_conn(c).await;
    let three: Option<i64> = fresh.query_first("SELECT 3").await.unwrap();
    assert_eq!(three, Some(3));
    bystander.disconnect().await.unwrap();
    fresh.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_through_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = tokio::task::spawn_blocking({
        let data_dir = dir.path().join("data");
        move || LocalCluster::start(&data_dir)
    })
    .await
    .unwrap();
    prepared_types_round_trip(&cluster).await;
    let c = &cluster;
    tokio::task::block_in_place(|| pymysql_round_trip(c));
    large_result_streams(&cluster).await;
    twenty_mib_row(&cluster).await;
    tokio::task::block_in_place(|| bad_input_gets_mariadb_errors(c));
    malformed_packets_are_contained(&cluster).await;
}
