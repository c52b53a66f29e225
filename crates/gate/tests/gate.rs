//! End-to-end tests of the gate against real mariadbd servers: clients are
//! mysql_async, the `mariadb` command-line client and a raw socket.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, server_code};
use mysql_async::prelude::*;
use mysql_async::{Params, Row, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one scenario with a deadline, so a hang fails instead of stalling.
async fn scenario<F: std::future::Future<Output = ()>>(name: &str, f: F) {
    let started = Instant::now();
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(()) => eprintln!("scenario {name}: ok in {:?}", started.elapsed()),
        Err(_) => panic!("scenario {name} did not finish within {TIMEOUT:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_end_to_end() {
    let cluster = Cluster::start(4).await;
    scenario("handshake", handshake(&cluster)).await;
    scenario("targets", targets(&cluster)).await;
    scenario("errors relayed", errors_relayed(&cluster)).await;
    scenario("replica routing", replica_routing(&cluster)).await;
    scenario("transactions", transactions(&cluster)).await;
    scenario("user variables", user_variables(&cluster)).await;
    scenario("prepared statements", prepared_statements(&cluster)).await;
    scenario("long data", long_data(&cluster)).await;
    scenario("last insert id", last_insert_id(&cluster)).await;
    scenario("large result", large_result(&cluster)).await;
    scenario("multi statements", multi_statements(&cluster)).await;
    scenario("garbage packets", garbage_packets(&cluster)).await;
    scenario("backend down", backend_down(&cluster)).await;
    scenario("stale pooled connections", stale_connections(&cluster)).await;
    scenario("pool bound and wait", pool_bound(&cluster)).await;
    scenario("mariadb cli", mariadb_cli(&cluster)).await;
    scenario("http status and metrics", http_endpoints(&cluster)).await;
    scenario("reset and change user", reset_and_change_user(&cluster)).await;
    cluster.shutdown().await;
}

async fn handshake(c: &Cluster) {
    let mut conn = c.conn(Some("commerce")).await;
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    conn.disconnect().await.unwrap();

    // A user with a stored SHA1(SHA1()) hash (of "123456").
    let mut conn = mysql_async::Conn::new(c.opts("user2", "123456", None))
        .await
        .expect("user2 with the right password");
    let db: Option<String> = conn.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(
        db.as_deref(),
        Some("commerce"),
        "no target = the first unsharded keyspace"
    );
    conn.disconnect().await.unwrap();

    let (code, state, message) =
        server_code(mysql_async::Conn::new(c.opts("user1", "wrong", None)).await);
    assert_eq!((code, state.as_str()), (1045, "28000"), "{message}");
    assert!(message.contains("user1"), "{message}");
    let (code, _, _) = server_code(mysql_async::Conn::new(c.opts("nobody", "x", None)).await);
    assert_eq!(code, 1045);
}

async fn targets(c: &Cluster) {
    let mut conn = c.conn(None).await;
    let dbs: Vec<String> = conn.query("SHOW DATABASES").await.unwrap();
    assert_eq!(dbs, vec!["commerce", "dead", "lookup"]);
    let dbs: Vec<String> = conn.query("show schemas").await.unwrap();
    assert_eq!(dbs.len(), 3);

    let (code, state, message) = server_code(conn.query_drop("USE nosuchdb").await);
    assert_eq!((code, state.as_str()), (1049, "42000"));
    assert_eq!(message, "Unknown database 'nosuchdb'");
    let (code, _, _) = server_code(conn.query_drop("USE commerce:7").await);
    assert_eq!(code, 1049, "unknown shard");
    let (code, _, _) = server_code(conn.query_drop("USE commerce@spare").await);
    assert_eq!(code, 1049, "untargetable type");

    conn.query_drop("USE `lookup`").await.unwrap();
    let db: Option<String> = conn.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("lookup"));
    conn.query_drop("USE commerce:0@primary").await.unwrap();
    let db: Option<String> = conn.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("commerce"));
    conn.ping().await.unwrap();
    conn.disconnect().await.unwrap();

    // A handshake database that names no keyspace: reported on first use.
    match mysql_async::Conn::new(c.opts("user1", "pw1", Some("nosuchdb"))).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1049),
        Ok(mut conn) => {
            let (code, _, _) = server_code(conn.query_drop("SELECT 1").await);
            assert_eq!(code, 1049);
            conn.disconnect().await.ok();
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

async fn errors_relayed(c: &Cluster) {
    let mut conn = c.conn(Some("commerce")).await;
    let (code, state, message) = server_code(conn.query_drop("SELEC 1").await);
    assert_eq!((code, state.as_str()), (1064, "42000"));
    assert!(
        message.contains("You have an error in your SQL syntax") && message.contains("MariaDB"),
        "{message}"
    );
    let (code, _, message) = server_code(conn.query_drop("SELECT * FROM no_such_table").await);
    assert_eq!(code, 1146, "{message}");
    assert!(message.contains("commerce.no_such_table"), "{message}");
    // The session still works after errors.
    let v: Option<i64> = conn.query_first("SELECT 41 + 1").await.unwrap();
    assert_eq!(v, Some(42));
    conn.disconnect().await.unwrap();
}

async fn replica_routing(c: &Cluster) {
    let mut conn = c.conn(Some("commerce@replica")).await;
    let port: Option<u16> = conn.query_first("SELECT @@port").await.unwrap();
    assert_eq!(
        port,
        Some(c.replica.port()),
        "ks@replica goes to the replica"
    );
    conn.query_drop("USE commerce").await.unwrap();
    let port: Option<u16> = conn.query_first("SELECT @@port").await.unwrap();
    assert_eq!(port, Some(c.primary.port()), "ks goes to the primary");
    conn.query_drop("USE commerce@replica").await.unwrap();
    let port: Option<u16> = conn.query_first("SELECT @@port").await.unwrap();
    assert_eq!(port, Some(c.replica.port()));
    let (code, _, message) = server_code(
        conn.query_drop("USE lookup@rdonly")
            .await
            .and(conn.query_drop("SELECT 1").await),
    );
    assert_eq!(code, 1105, "{message}");
    assert!(message.contains("rdonly"), "{message}");
    conn.disconnect().await.unwrap();
}

async fn transactions(c: &Cluster) {
    let mut a = c.conn(Some("commerce")).await;
    let mut b = c.conn(Some("commerce")).await;
    a.query_drop(
        "CREATE TABLE IF NOT EXISTS tx_t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB",
    )
    .await
    .unwrap();
    a.query_drop("DELETE FROM tx_t").await.unwrap();

    a.query_drop("BEGIN").await.unwrap();
    let conn_id: Option<u64> = a.query_first("SELECT CONNECTION_ID()").await.unwrap();
    a.query_drop("INSERT INTO tx_t VALUES (1, 'one')")
        .await
        .unwrap();
    // Other sessions use the pool meanwhile; the transaction keeps its connection.
    for _ in 0..5 {
        let n: Option<i64> = b.query_first("SELECT COUNT(*) FROM tx_t").await.unwrap();
        assert_eq!(n, Some(0), "uncommitted row visible to another client");
    }
    let same: Option<u64> = a.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert_eq!(
        conn_id, same,
        "transaction moved to another backend connection"
    );
    let own: Option<i64> = a.query_first("SELECT COUNT(*) FROM tx_t").await.unwrap();
    assert_eq!(
        own,
        Some(1),
        "own uncommitted row visible inside the transaction"
    );
    a.query_drop("COMMIT").await.unwrap();
    let n: Option<i64> = b.query_first("SELECT COUNT(*) FROM tx_t").await.unwrap();
    assert_eq!(n, Some(1), "committed row visible");

    // ROLLBACK really rolls back.
    a.query_drop("START TRANSACTION").await.unwrap();
    a.query_drop("INSERT INTO tx_t VALUES (2, 'two')")
        .await
        .unwrap();
    a.query_drop("ROLLBACK").await.unwrap();
    let n: Option<i64> = b.query_first("SELECT COUNT(*) FROM tx_t").await.unwrap();
    assert_eq!(n, Some(1));

    // After commit the connection went back to the pool: with 4 backend
    // connections, 8 clients can still each run transactions in turn.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let opts = c.opts("user1", "pw1", Some("commerce"));
        tasks.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            for j in 0..5 {
                let mut tx = conn.start_transaction(Default::default()).await.unwrap();
                tx.exec_drop("INSERT INTO tx_t VALUES (?, ?)", (100 + i * 10 + j, "x"))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
            conn.disconnect().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n: Option<i64> = b.query_first("SELECT COUNT(*) FROM tx_t").await.unwrap();
    assert_eq!(n, Some(41));
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

async fn user_variables(c: &Cluster) {
    let mut a = c.conn(Some("commerce")).await;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(c.conn(Some("commerce")).await);
    }
    a.query_drop("SET @x = 42").await.unwrap();
    for (i, o) in others.iter_mut().enumerate() {
        let v: Option<Option<i64>> = o.query_first("SELECT @x").await.unwrap();
        assert_eq!(v, Some(None), "another session ({i}) sees @x");
    }
    let v: Option<i64> = a.query_first("SELECT @x").await.unwrap();
    assert_eq!(v, Some(42));
    a.query_drop("SELECT @y := 7").await.unwrap();
    let v: Option<i64> = a.query_first("SELECT @x + @y").await.unwrap();
    assert_eq!(v, Some(49));
    // A temporary table survives as well.
    a.query_drop("CREATE TEMPORARY TABLE tmp_t (a INT)")
        .await
        .unwrap();
    a.query_drop("INSERT INTO tmp_t VALUES (5)").await.unwrap();
    let v: Option<i64> = a.query_first("SELECT a FROM tmp_t").await.unwrap();
    assert_eq!(v, Some(5));
    a.disconnect().await.unwrap();
    for o in others {
        o.disconnect().await.unwrap();
    }
}

async fn prepared_statements(c: &Cluster) {
    let mut setup = c.conn(Some("commerce")).await;
    setup
        .query_drop(
            "CREATE TABLE IF NOT EXISTS ps_t (id INT PRIMARY KEY, big BIGINT, s VARCHAR(64), d DOUBLE, \
             dt DATETIME, b BLOB, n INT NULL, dec_v DECIMAL(10,2))",
        )
        .await
        .unwrap();
    setup.query_drop("DELETE FROM ps_t").await.unwrap();

    // 6 clients over a pool of 4: statements run on whichever connection is
    // free and must be prepared there on the fly.
    let mut tasks = Vec::new();
    for client in 0..6i32 {
        let opts = c.opts("user1", "pw1", Some("commerce"));
        tasks.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let insert = conn
                .prep("INSERT INTO ps_t (id, big, s, d, dt, b, n, dec_v) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .await
                .unwrap();
            let select = conn
                .prep("SELECT big, s, d, dt, b, n, dec_v FROM ps_t WHERE id = ?")
                .await
                .unwrap();
            for i in 0..40i32 {
                let id = client * 1000 + i;
                let big = (id as i64) << 33;
                let s = format!("row-{id}-é");
                let d = id as f64 / 3.0;
                let blob: Vec<u8> = (0..(id % 300) as u8).collect();
                let n: Option<i32> = if i % 2 == 0 { None } else { Some(i) };
                let dt = mysql_async::Value::Date(2024, 1 + (i % 12) as u8, 1 + (i % 28) as u8, 12, 30, 15, 0);
                conn.exec_drop(
                    &insert,
                    (id, big, s.clone(), d, dt.clone(), blob.clone(), n, "12.50"),
                )
                .await
                .unwrap();
                let row: Row = conn.exec_first(&select, (id,)).await.unwrap().expect("row");
                assert_eq!(row.get::<i64, _>(0), Some(big));
                assert_eq!(row.get::<String, _>(1), Some(s));
                assert!((row.get::<f64, _>(2).unwrap() - d).abs() < 1e-9);
                assert_eq!(row.get::<Value, _>(3), Some(dt));
                assert_eq!(row.get::<Vec<u8>, _>(4), Some(blob));
                assert_eq!(row.get::<Option<i32>, _>(5), Some(n));
                assert_eq!(row.get::<String, _>(6).as_deref(), Some("12.50"));
            }
            conn.close(insert).await.unwrap();
            // A closed statement is unknown afterwards; others still work.
            let n: Option<i64> = conn
                .exec_first(&select, (client * 1000 + 1,))
                .await
                .unwrap()
                .map(|r: Row| r.get::<i64, _>(0).unwrap());
            assert!(n.is_some());
            conn.disconnect().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n: Option<i64> = setup
        .query_first("SELECT COUNT(*) FROM ps_t")
        .await
        .unwrap();
    assert_eq!(n, Some(240));

    // Statement errors come from mysqld; unknown statement ids from the gate.
    let (code, _, _) = server_code(setup.prep("SELECT * FROM no_such_table WHERE id = ?").await);
    assert_eq!(code, 1146);
    let stmt = setup.prep("SELECT ? + 1").await.unwrap();
    let v: Option<i64> = setup.exec_first(&stmt, (41,)).await.unwrap();
    assert_eq!(v, Some(42));
    // Many executes of one statement with params of changing types.
    for i in 0..50i64 {
        let v: Option<String> = setup
            .exec_first("SELECT CONCAT(?, '/', ?)", (i, format!("s{i}")))
            .await
            .unwrap();
        assert_eq!(v, Some(format!("{i}/s{i}")));
    }
    let empty: Vec<i64> = setup
        .exec("SELECT id FROM ps_t WHERE id < ?", (0,))
        .await
        .unwrap();
    assert!(empty.is_empty());
    let v: Option<i64> = setup
        .exec_first("SELECT COUNT(*) FROM ps_t", Params::Empty)
        .await
        .unwrap();
    assert_eq!(v, Some(240));
    setup.disconnect().await.unwrap();
}

async fn long_data(c: &Cluster) {
    let mut conn = c.conn(Some("commerce")).await;
    conn.query_drop("CREATE TABLE IF NOT EXISTS blob_t (id INT PRIMARY KEY, b LONGBLOB)")
        .await
        .unwrap();
    // Above 16 MiB mysql_async sends the parameter with COM_STMT_SEND_LONG_DATA.
    let blob: Vec<u8> = (0..17 * 1024 * 1024 + 13)
        .map(|i: usize| (i % 251) as u8)
        .collect();
    conn.exec_drop("INSERT INTO blob_t VALUES (?, ?)", (1, blob.clone()))
        .await
        .unwrap();
    let (len, md5): (u64, String) = conn
        .query_first("SELECT LENGTH(b), MD5(b) FROM blob_t WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(len, blob.len() as u64);
    let back: Option<Vec<u8>> = conn
        .exec_first("SELECT b FROM blob_t WHERE id = ?", (1,))
        .await
        .unwrap();
    assert!(
        back.as_deref() == Some(&blob[..]),
        "17 MiB blob came back changed"
    );
    let same_md5: Option<String> = conn.exec_first("SELECT MD5(?)", (blob,)).await.unwrap();
    assert_eq!(same_md5, Some(md5));
    conn.query_drop("DROP TABLE blob_t").await.unwrap();
    conn.disconnect().await.unwrap();
}

async fn last_insert_id(c: &Cluster) {
    let mut a = c.conn(Some("commerce")).await;
    let mut b = c.conn(Some("commerce")).await;
    a.query_drop("CREATE TABLE IF NOT EXISTS ai_t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    a.query_drop("INSERT INTO ai_t (v) VALUES (1)")
        .await
        .unwrap();
    let a_id = a.last_insert_id().expect("OK packet carries the id");
    b.query_drop("INSERT INTO ai_t (v) VALUES (2)")
        .await
        .unwrap();
    b.query_drop("INSERT INTO ai_t (v) VALUES (3)")
        .await
        .unwrap();
    let b_id = b.last_insert_id().unwrap();
    assert_ne!(a_id, b_id);
    for _ in 0..4 {
        let v: Option<u64> = a.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
        assert_eq!(v, Some(a_id));
        let v: Option<u64> = b.query_first("select last_insert_id ( )").await.unwrap();
        assert_eq!(v, Some(b_id));
    }
    let v: Option<String> = a.query_first("SELECT 'LAST_INSERT_ID()'").await.unwrap();
    assert_eq!(
        v.as_deref(),
        Some("LAST_INSERT_ID()"),
        "strings are not rewritten"
    );
    a.disconnect().await.unwrap();
    b.disconnect().await.unwrap();
}

async fn large_result(c: &Cluster) {
    let mut conn = c.conn(Some("commerce")).await;
    let rows: Vec<(u64, String)> = conn
        .query("SELECT seq, REPEAT('x', 100) FROM seq_1_to_100000")
        .await
        .unwrap();
    assert_eq!(rows.len(), 100_000);
    assert_eq!(rows.iter().map(|r| r.0).sum::<u64>(), 100_000 * 100_001 / 2);
    assert!(rows.iter().all(|r| r.1.len() == 100));
    // Binary protocol too.
    let rows: Vec<u64> = conn
        .exec("SELECT seq FROM seq_1_to_100000 WHERE seq > ?", (0,))
        .await
        .unwrap();
    assert_eq!(rows.len(), 100_000);
    // The connection is still in sync afterwards.
    let v: Option<i64> = conn.query_first("SELECT 7").await.unwrap();
    assert_eq!(v, Some(7));
    conn.disconnect().await.unwrap();
}

async fn multi_statements(c: &Cluster) {
    let mut conn = c.conn(Some("commerce")).await;
    let mut result = conn
        .query_iter("SELECT 1 AS a, 'x' AS b; SELECT 2 AS c UNION SELECT 3")
        .await
        .unwrap();
    let first: Vec<(i64, String)> = result.collect().await.unwrap();
    let second: Vec<i64> = result.collect().await.unwrap();
    drop(result);
    assert_eq!(first, vec![(1, "x".to_string())]);
    assert_eq!(second, vec![2, 3]);
    // An error in the second statement ends the response; the session goes on.
    let r = conn.query_drop("SELECT 1; SELEC 2").await;
    let (code, _, _) = server_code(r);
    assert_eq!(code, 1064);
    let v: Option<i64> = conn.query_first("SELECT 5").await.unwrap();
    assert_eq!(v, Some(5));
    conn.disconnect().await.unwrap();
}

/// A minimal client: greeting, HandshakeResponse41 as `user` with an empty
/// password, then whatever the test writes.
async fn raw_login(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _greeting = read_raw_packet(&mut s).await.expect("greeting");
    let caps: u32 = 0x0000_0001 | 0x0000_0200 | 0x0000_8000 | 0x0008_0000;
    let mut body = Vec::new();
    body.extend_from_slice(&caps.to_le_bytes());
    body.extend_from_slice(&(1u32 << 24).to_le_bytes());
    body.push(45);
    body.extend_from_slice(&[0; 23]);
    body.extend_from_slice(b"user\0");
    body.push(0); // empty auth response
    body.extend_from_slice(b"mysql_native_password\0");
    write_raw_packet(&mut s, 1, &body).await;
    let reply = read_raw_packet(&mut s).await.expect("auth reply");
    assert_eq!(
        reply.get(..1),
        Some(&[0u8][..]),
        "login as user with an empty password: {reply:?}"
    );
    s
}

async fn write_raw_packet(s: &mut TcpStream, seq: u8, body: &[u8]) {
    let len = body.len() as u32;
    let mut frame = len.to_le_bytes()[..3].to_vec();
    frame.push(seq);
    frame.extend_from_slice(body);
    s.write_all(&frame).await.unwrap();
}

async fn read_raw_packet(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header).await.ok()?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// The gate closed the raw connection (EOF or reset), within a deadline.
async fn assert_closed(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) if Instant::now() < deadline => continue,
            _ => panic!("{what}: the gate did not close the connection"),
        }
    }
}

async fn garbage_packets(c: &Cluster) {
    let mut good = c.conn(Some("commerce")).await;

    // An empty packet where a command belongs.
    let mut s = raw_login(c.port()).await;
    write_raw_packet(&mut s, 0, &[]).await;
    assert_closed(&mut s, "empty packet").await;

    // A header promising more than ever arrives.
    let mut s = raw_login(c.port()).await;
    s.write_all(&[0xE8, 0x03, 0x00, 0x00, 0x03, b'S', b'E'])
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    assert_closed(&mut s, "truncated packet").await;

    // Garbage bytes instead of a handshake response.
    let mut s = TcpStream::connect(("127.0.0.1", c.port())).await.unwrap();
    let _ = read_raw_packet(&mut s).await.expect("greeting");
    s.write_all(&[0x05, 0x00, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x00])
        .await
        .unwrap();
    assert_closed(&mut s, "garbage handshake").await;

    // An unknown command gets 1047 and the session goes on.
    let mut s = raw_login(c.port()).await;
    write_raw_packet(&mut s, 0, &[0x7f, 1, 2, 3]).await;
    let reply = read_raw_packet(&mut s).await.expect("error reply");
    assert_eq!(reply[0], 0xFF);
    assert_eq!(u16::from_le_bytes([reply[1], reply[2]]), 1047);
    // A truncated COM_STMT_EXECUTE of an unknown statement.
    write_raw_packet(&mut s, 0, &[0x17, 9]).await;
    let reply = read_raw_packet(&mut s).await.expect("error reply");
    assert_eq!(reply[0], 0xFF);
    write_raw_packet(&mut s, 0, &[0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0]).await;
    let reply = read_raw_packet(&mut s).await.expect("error reply");
    assert_eq!(u16::from_le_bytes([reply[1], reply[2]]), 1243);
    let message = String::from_utf8_lossy(&reply[9..]).into_owned();
    assert_eq!(
        message,
        "Unknown prepared statement handler (9) given to mysqld_stmt_execute"
    );
    // Server-side cursors are refused clearly.
    write_raw_packet(&mut s, 0, &[0x1c, 1, 0, 0, 0, 10, 0, 0, 0]).await;
    let reply = read_raw_packet(&mut s).await.expect("fetch reply");
    assert_eq!(u16::from_le_bytes([reply[1], reply[2]]), 1235);
    // COM_INIT_DB: unknown, then known; the target is used afterwards.
    let mut init_db = vec![0x02];
    init_db.extend_from_slice(b"nope");
    write_raw_packet(&mut s, 0, &init_db).await;
    let reply = read_raw_packet(&mut s).await.expect("init db reply");
    assert_eq!(u16::from_le_bytes([reply[1], reply[2]]), 1049);
    let mut init_db = vec![0x02];
    init_db.extend_from_slice(b"lookup");
    write_raw_packet(&mut s, 0, &init_db).await;
    assert_eq!(
        read_raw_packet(&mut s).await.expect("init db reply")[0],
        0x00
    );
    let mut field_list = vec![0x04];
    field_list.extend_from_slice(b"no_such_table\0");
    write_raw_packet(&mut s, 0, &field_list).await;
    let reply = read_raw_packet(&mut s).await.expect("field list reply");
    assert_eq!(reply[0], 0xFF);
    let message = String::from_utf8_lossy(&reply[9..]).into_owned();
    assert!(message.contains("lookup.no_such_table"), "{message}");
    // COM_PING still answers.
    write_raw_packet(&mut s, 0, &[0x0e]).await;
    assert_eq!(read_raw_packet(&mut s).await.expect("ping reply")[0], 0x00);

    let v: Option<i64> = good.query_first("SELECT 99").await.unwrap();
    assert_eq!(v, Some(99), "other sessions are unaffected");
    good.disconnect().await.unwrap();
}

async fn backend_down(c: &Cluster) {
    let mut conn = c.conn(None).await;
    conn.query_drop("USE dead").await.unwrap();
    let started = Instant::now();
    let (code, state, message) = server_code(conn.query_drop("SELECT 1").await);
    assert_eq!((code, state.as_str()), (1105, "HY000"));
    // A primary that cannot be reached may be changing: the statement waits
    // one buffering window, then gets the retryable error with the cause.
    assert!(
        message.starts_with("primary of dead/0 is changing; retry"),
        "{message}"
    );
    assert!(message.contains("zone1-0000000300"), "{message}");
    assert!(message.contains(&c.dead_port.to_string()), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    conn.query_drop("USE commerce").await.unwrap();
    let v: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    conn.disconnect().await.unwrap();
}

/// Kills every connection the gate has open to the primary's mysqld.
async fn kill_gate_backends(c: &Cluster) -> usize {
    let mut dba = c.primary.dba_conn().await.unwrap();
    let ids: Vec<u64> = dba
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'tessera_app'")
        .await
        .unwrap();
    for id in &ids {
        let _ = dba.query_drop(format!("KILL {id}")).await;
    }
    dba.disconnect().await.ok();
    ids.len()
}

async fn stale_connections(c: &Cluster) {
    let mut conn = c.conn(Some("commerce")).await;
    let mut pinned = c.conn(Some("commerce")).await;
    pinned.query_drop("SET @pin = 1").await.unwrap();
    let before: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert!(kill_gate_backends(c).await >= 2);
    // The pooled connections are dead now: the gate retries on a new one.
    let after: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert_ne!(before, after, "a killed connection cannot answer");
    let stmt_result: Option<i64> = conn.exec_first("SELECT ? * 2", (21,)).await.unwrap();
    assert_eq!(stmt_result, Some(42));
    // A reserved connection cannot be replaced silently: its state is gone.
    let (code, _, message) = server_code(pinned.query_drop("SELECT @pin").await);
    assert_eq!(code, 2013, "{message}");
    assert!(message.contains("zone1-0000000100"), "{message}");
    let v: Option<Option<i64>> = pinned.query_first("SELECT @pin").await.unwrap();
    assert_eq!(v, Some(None), "the session continues on a new connection");
    conn.disconnect().await.unwrap();
    pinned.disconnect().await.unwrap();
}

async fn pool_bound(c: &Cluster) {
    // Four sessions each hold a connection inside a transaction: the pool of
    // four is exhausted.
    let mut holders = Vec::new();
    for _ in 0..4 {
        let mut h = c.conn(Some("commerce")).await;
        h.query_drop("BEGIN").await.unwrap();
        h.query_drop("SELECT 1").await.unwrap();
        holders.push(h);
    }
    // A fifth waits and gets the connection as soon as one is released.
    let opts = c.opts("user1", "pw1", None);
    let waiter = tokio::spawn(async move {
        let mut conn = mysql_async::Conn::new(opts.db_name(Some("lookup")))
            .await
            .unwrap();
        conn.query_drop("USE commerce").await.unwrap();
        let started = Instant::now();
        let v: Option<i64> = conn.query_first("SELECT 5").await.unwrap();
        (v, started.elapsed(), conn)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    holders[0].query_drop("COMMIT").await.unwrap();
    let (v, waited, conn) = waiter.await.unwrap();
    assert_eq!(v, Some(5));
    assert!(
        waited >= Duration::from_millis(1000),
        "did not wait: {waited:?}"
    );
    conn.disconnect().await.unwrap();

    // With all four held again, a waiter gives up with a clear error.
    holders[0].query_drop("BEGIN").await.unwrap();
    holders[0].query_drop("SELECT 1").await.unwrap();
    let mut late = c.conn(Some("lookup")).await;
    late.query_drop("USE commerce").await.unwrap();
    let started = Instant::now();
    let (code, _, message) = server_code(late.query_drop("SELECT 6").await);
    assert_eq!(code, 1105, "{message}");
    assert!(
        message.contains("all 4 connections are in use"),
        "{message}"
    );
    assert!(message.contains("zone1-0000000100"), "{message}");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for mut h in holders {
        h.query_drop("ROLLBACK").await.unwrap();
        h.disconnect().await.unwrap();
    }
    let v: Option<i64> = late.query_first("SELECT 6").await.unwrap();
    assert_eq!(v, Some(6));
    late.disconnect().await.unwrap();
}

async fn mariadb_cli(c: &Cluster) {
    let port = c.port().to_string();
    let out = tokio::process::Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uuser1",
            "-ppw1",
            "--skip-ssl",
            "-N",
            "-B",
            "-e",
            "SHOW DATABASES; USE lookup; SELECT DATABASE(); SELECT 6*7",
        ])
        .output()
        .await
        .expect("running mariadb");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mariadb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "commerce\ndead\nlookup\nlookup\n42\n");

    // Over TLS (the gate's self-signed certificate).
    let out = tokio::process::Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uuser2",
            "-p123456",
            "--ssl",
            "-e",
            "status",
        ])
        .output()
        .await
        .expect("running mariadb");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mariadb --ssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Cipher in use is"), "{stdout}");

    let out = tokio::process::Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uuser1",
            "-pnope",
            "-e",
            "SELECT 1",
        ])
        .output()
        .await
        .expect("running mariadb");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1045"), "{stderr}");

    let out = tokio::process::Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uuser1",
            "-ppw1",
            "-e",
            "SELEC 1",
        ])
        .output()
        .await
        .expect("running mariadb");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR 1064 (42000)") && stderr.contains("SELEC 1"),
        "{stderr}"
    );
}

async fn http_endpoints(c: &Cluster) {
    let base = format!("http://{}", c.gate().http_addr());
    let status: serde_json::Value = reqwest::get(format!("{base}/debug/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["ready"], true);
    let keyspaces = status["keyspaces"].as_array().unwrap();
    assert_eq!(keyspaces.len(), 3);
    let commerce = &keyspaces[0];
    assert_eq!(commerce["name"], "commerce");
    let tablets = commerce["shards"][0]["tablets"].as_array().unwrap();
    assert_eq!(tablets.len(), 2);
    assert_eq!(tablets[0]["alias"], "zone1-0000000100");
    assert_eq!(tablets[0]["type"], "primary");
    assert_eq!(tablets[0]["health"], "unknown");
    assert_eq!(tablets[1]["type"], "replica");
    let open = tablets[0]["pool_open"].as_u64().unwrap();
    assert!(
        (1..=4).contains(&open),
        "pool of 4 holds {open} connections"
    );

    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let queries = metric_value(&metrics, "tessera_gate_commands_total{command=\"query\"}");
    assert!(queries > 100.0, "{queries}");
    assert!(
        metric_value(
            &metrics,
            "tessera_gate_commands_total{command=\"stmt_execute\"}"
        ) >= 480.0
    );
    assert!(metric_value(&metrics, "tessera_gate_errors_total") >= 5.0);
    assert!(
        metric_value(
            &metrics,
            "tessera_gate_commands_total{command=\"stmt_send_long_data\"}"
        ) >= 1.0,
        "the 17 MiB parameter went as long data"
    );
    assert!(metric_value(&metrics, "tessera_gate_handshake_failures_total") >= 2.0);
    assert!(
        metric_value(
            &metrics,
            "tessera_gate_pool_connects_total{tablet=\"zone1-0000000100\"}"
        ) >= 1.0
    );
    assert!(
        metrics.contains("tessera_gate_pool_idle{tablet=\"zone1-0000000100\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_gate_client_connections "),
        "{metrics}"
    );
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("metric {name} missing:\n{text}"))
}

async fn reset_and_change_user(c: &Cluster) {
    let mut conn = c.conn(Some("commerce")).await;
    conn.query_drop("SET @kept = 1").await.unwrap();
    let v: Option<i64> = conn.query_first("SELECT @kept").await.unwrap();
    assert_eq!(v, Some(1));
    // COM_RESET_CONNECTION drops the reserved connection and its variables.
    conn.reset().await.unwrap();
    let v: Option<Option<i64>> = conn.query_first("SELECT @kept").await.unwrap();
    assert_eq!(v, Some(None));
    // COM_CHANGE_USER to another user and database.
    conn.query_drop("SET @kept = 2").await.unwrap();
    conn.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some("user2".into()))
            .with_pass(Some("123456".into()))
            .with_db_name(Some("lookup".into())),
    )
    .await
    .unwrap();
    let (db, kept): (Option<String>, Option<i64>) = conn
        .query_first("SELECT DATABASE(), @kept")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(db.as_deref(), Some("lookup"));
    assert_eq!(kept, None);
    let r = conn
        .change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some("user1".into()))
                .with_pass(Some("bad".into())),
        )
        .await;
    assert!(r.is_err(), "change user with a wrong password must fail");
    conn.disconnect().await.ok();
}
