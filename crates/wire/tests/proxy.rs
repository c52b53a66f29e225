//! End to end: mysql_async -> a minimal proxy built from this crate -> a real mariadbd.
//! Proves that relayed bytes are valid for a real driver when the backend connection asks
//! for the client's negotiated flavour, for text and binary (prepared) protocols.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::MariaDb;
use mysql_async::prelude::Queryable;
use tessera_wire::protocol::command;
use tessera_wire::{
    AuthMethod, BackendConn, ClientStream, PacketConn, ServerAuthConfig, UserCredential, UserStore,
};
use tokio::net::TcpListener;

struct OneUser;

impl UserStore for OneUser {
    fn lookup(&self, user: &str) -> Option<UserCredential> {
        (user == "proxy").then(|| UserCredential::Cleartext("proxy-pw".into()))
    }

    fn default_auth_method(&self) -> AuthMethod {
        AuthMethod::CachingSha2Password
    }
}

/// Statements the proxy prepared: client id -> (backend id, param count, last param types).
type Statements = HashMap<u32, (u32, u16, Vec<u8>)>;

async fn proxy_session(mut client: PacketConn<ClientStream>, mut backend: BackendConn) {
    let mut statements: Statements = HashMap::new();
    let mut next_id = 1000u32;
    let mut exec_buf = Vec::new();
    while let Ok(Some((_, packet))) = client.read_packet().await {
        let Some((&cmd, body)) = packet.split_first() else {
            return;
        };
        let caps = backend.capabilities;
        match cmd {
            command::COM_QUIT => return,
            command::COM_STMT_PREPARE => {
                let sql = String::from_utf8_lossy(body);
                match tessera_wire::prepare_on_backend(&mut backend, &sql).await {
                    Ok(p) => {
                        statements.insert(next_id, (p.statement_id, p.num_params, Vec::new()));
                        tessera_wire::write_prepare_ok(&mut client, caps, next_id, &p);
                        next_id += 1;
                    }
                    Err(tessera_wire::BackendError::Server(e)) => {
                        let mut seq = 1;
                        client.write_packet(&mut seq, &e.to_packet());
                    }
                    Err(other) => panic!("{other}"),
                }
                client.flush().await.unwrap();
            }
            command::COM_STMT_EXECUTE => {
                let id = u32::from_le_bytes(body[..4].try_into().unwrap());
                let (backend_id, num_params, types) = statements.get_mut(&id).unwrap();
                let header = tessera_wire::parse_execute(body, *num_params).unwrap();
                if let Some(t) = header.param_types {
                    *types = t.to_vec();
                }
                tessera_wire::rewrite_execute(
                    &mut exec_buf,
                    *backend_id,
                    &header,
                    types,
                    *num_params,
                );
                backend.write_command(command::COM_STMT_EXECUTE, &exec_buf);
                backend.flush().await.unwrap();
                tessera_wire::relay_response(&mut backend, &mut client, true)
                    .await
                    .unwrap();
            }
            command::COM_STMT_CLOSE => {
                let id = u32::from_le_bytes(body[..4].try_into().unwrap());
                if let Some((backend_id, _, _)) = statements.remove(&id) {
                    backend.write_command(command::COM_STMT_CLOSE, &backend_id.to_le_bytes());
                    backend.flush().await.unwrap();
                }
            }
            _ => {
                backend.write_command(cmd, body);
                backend.flush().await.unwrap();
                tessera_wire::relay_response(&mut backend, &mut client, false)
                    .await
                    .unwrap();
            }
        }
    }
}

async fn start_proxy(db: &MariaDb) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let backend_cfg = db.app_config(tessera_wire::CapabilityFlags::empty());
    let task = tokio::spawn(async move {
        let cfg = Arc::new(ServerAuthConfig {
            server_version: "10.11.19-MariaDB-tessera".into(),
            tls: None,
            connection_id: 1,
        });
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let cfg = cfg.clone();
            let mut backend_cfg = backend_cfg.clone();
            tokio::spawn(async move {
                let (client, hs) = tessera_wire::server_handshake(stream, peer, &cfg, &OneUser)
                    .await
                    .unwrap();
                backend_cfg.capabilities = hs.capabilities;
                backend_cfg.database = hs.database.clone().or(backend_cfg.database);
                let backend = BackendConn::connect(&backend_cfg).await.unwrap();
                let flavour = tessera_wire::backend::FLAVOUR_FLAGS;
                assert_eq!(
                    backend.capabilities & flavour,
                    hs.capabilities & flavour,
                    "backend negotiated the client's flavour"
                );
                proxy_session(client, backend).await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn mysql_async_through_a_relaying_proxy() {
    let db = MariaDb::shared();
    let (port, task) = start_proxy(&db).await;
    let opts: mysql_async::Opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("proxy"))
        .pass(Some("proxy-pw"))
        .db_name(Some("test"))
        .prefer_socket(false)
        .into();
    let mut conn = mysql_async::Conn::new(opts)
        .await
        .expect("connect through proxy");

    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS px (id BIGINT PRIMARY KEY, name VARCHAR(40), score DOUBLE, \
         born DATE)",
    )
    .await
    .unwrap();
    conn.query_drop("DELETE FROM px").await.unwrap();
    conn.exec_batch(
        "INSERT INTO px VALUES (?, ?, ?, ?)",
        (1..=50).map(|i| (i, format!("name-{i}"), i as f64 / 4.0, "2024-02-29")),
    )
    .await
    .unwrap();

    // Text protocol, many rows.
    let rows: Vec<(i64, String)> = conn
        .query("SELECT seq, CONCAT('r', seq) FROM seq_1_to_20000")
        .await
        .unwrap();
    assert_eq!(rows.len(), 20_000);
    assert_eq!(rows[19_999], (20_000, "r20000".to_string()));

    // Binary protocol with typed values and NULL.
    let rows: Vec<(i64, Option<String>, f64, String)> = conn
        .exec(
            "SELECT id, IF(id = 3, NULL, name), score, DATE_FORMAT(born, '%Y-%m-%d') FROM px \
             WHERE id BETWEEN ? AND ? ORDER BY id",
            (2, 4),
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (2, Some("name-2".into()), 0.5, "2024-02-29".into()),
            (3, None, 0.75, "2024-02-29".into()),
            (4, Some("name-4".into()), 1.0, "2024-02-29".into()),
        ]
    );
    // The same statement again (cached by the driver, types not resent).
    let count: Vec<(i64, Option<String>, f64, String)> = conn
        .exec(
            "SELECT id, IF(id = 3, NULL, name), score, DATE_FORMAT(born, '%Y-%m-%d') FROM px \
             WHERE id BETWEEN ? AND ? ORDER BY id",
            (10, 19),
        )
        .await
        .unwrap();
    assert_eq!(count.len(), 10);

    // Multiple result sets through the text protocol.
    let mut result = conn
        .query_iter("SELECT 1; SELECT 'a', 'b'; DO 0")
        .await
        .unwrap();
    let first: Vec<i64> = result.collect().await.unwrap();
    let second: Vec<(String, String)> = result.collect().await.unwrap();
    drop(result);
    assert_eq!((first, second), (vec![1], vec![("a".into(), "b".into())]));

    // Errors arrive as the server's own.
    let err = conn.query_drop("SELECT * FROM missing").await.unwrap_err();
    match err {
        mysql_async::Error::Server(e) => assert_eq!((e.code, e.state.as_str()), (1146, "42S02")),
        other => panic!("{other:?}"),
    }
    let err = conn.exec_drop("SELEC oops", ()).await.unwrap_err();
    assert!(
        matches!(err, mysql_async::Error::Server(ref e) if e.code == 1064),
        "{err:?}"
    );

    // Transactions: affected rows and status flags flow back.
    conn.query_drop("BEGIN").await.unwrap();
    conn.exec_drop("UPDATE px SET score = score + 1 WHERE id <= ?", (5,))
        .await
        .unwrap();
    assert_eq!(conn.affected_rows(), 5);
    conn.query_drop("ROLLBACK").await.unwrap();
    conn.ping().await.unwrap();
    conn.disconnect().await.unwrap();
    task.abort();
}
