//! Backend connections and the raw relay against a real mariadbd.

mod common;

use common::{MariaDb, classic_flags, modern_flags};
use tessera_wire::protocol::{command, parse_text_row, read_lenenc_int};
use tessera_wire::{
    BackendConfig, BackendConn, BackendError, CapabilityFlags, MAX_FRAME, PacketConn, RelayError,
    StatusFlags, relay_field_list, relay_response,
};
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::task::JoinHandle;

/// A client PacketConn over an in-memory pipe, plus a task collecting every byte it is sent.
fn client_pipe() -> (PacketConn<DuplexStream>, JoinHandle<Vec<u8>>) {
    let (gate_side, mut client_side) = tokio::io::duplex(256 * 1024);
    let reader = tokio::spawn(async move {
        let mut all = Vec::new();
        client_side.read_to_end(&mut all).await.unwrap();
        all
    });
    (PacketConn::new(gate_side), reader)
}

/// Splits a byte stream into logical packets (joining MAX_FRAME continuations).
fn packets(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], 0]) as usize;
        current.extend_from_slice(&bytes[4..4 + len]);
        bytes = &bytes[4 + len..];
        if len < MAX_FRAME {
            out.push(std::mem::take(&mut current));
        }
    }
    assert!(current.is_empty(), "stream ends inside a packet");
    out
}

/// 100k rows from MariaDB's sequence engine (needs a current database).
const HUNDRED_K: &str = "SELECT seq, CONCAT('row-', seq) AS label FROM seq_1_to_100000";

#[tokio::test]
async fn connect_with_right_and_wrong_password() {
    let db = MariaDb::shared();
    let mut conn = db.connect(modern_flags()).await;
    assert!(
        conn.server_version.contains("MariaDB"),
        "{}",
        conn.server_version
    );
    assert!(conn.connection_id > 0);
    assert!(
        conn.capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    );
    let result = conn
        .query("SELECT CURRENT_USER(), DATABASE(), NULL")
        .await
        .unwrap();
    assert_eq!(result.columns.len(), 3);
    assert_eq!(result.text(0, 0).as_deref(), Some("app@%"));
    assert_eq!(result.text(0, 1).as_deref(), Some("test"));
    assert_eq!(result.rows[0][2], None);

    let mut wrong = db.app_config(modern_flags());
    wrong.password = "nope".into();
    match BackendConn::connect(&wrong).await {
        Err(BackendError::Server(err)) => {
            assert_eq!((err.code, err.sqlstate.as_str()), (1045, "28000"));
            assert!(
                err.message.contains("Access denied for user 'app'"),
                "{}",
                err.message
            );
        }
        Err(other) => panic!("expected access denied, got {other}"),
        Ok(_) => panic!("wrong password accepted"),
    }

    // Root has an empty password: the empty-scramble path.
    let root = BackendConfig {
        addr: db.addr(),
        user: "root".into(),
        password: String::new(),
        database: None,
        capabilities: classic_flags(),
    };
    let mut root = BackendConn::connect(&root)
        .await
        .expect("root with empty password");
    let result = root.query("SELECT 1 + 1").await.unwrap();
    assert_eq!(result.text(0, 0).as_deref(), Some("2"));
    assert!(
        !root
            .capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    );

    let closed = BackendConfig {
        addr: format!("127.0.0.1:{}", common::free_port()),
        ..db.app_config(modern_flags())
    };
    assert!(matches!(
        BackendConn::connect(&closed).await,
        Err(BackendError::Io(_))
    ));
}

#[tokio::test]
async fn query_reports_server_errors_and_ok_packets() {
    let db = MariaDb::shared();
    let mut conn = db.connect(modern_flags()).await;
    let err = conn.query("SELECT * FROM no_such_table").await.unwrap_err();
    match err {
        BackendError::Server(e) => assert_eq!((e.code, e.sqlstate.as_str()), (1146, "42S02")),
        other => panic!("{other}"),
    }
    conn.query("CREATE TABLE IF NOT EXISTS q_ok (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    let result = conn
        .query("INSERT INTO q_ok (v) VALUES (1), (2), (3)")
        .await
        .unwrap();
    let ok = result.ok.unwrap();
    assert_eq!(ok.affected_rows, 3);
    assert!(ok.last_insert_id > 0);
    assert!(result.columns.is_empty());
    // The connection stays usable after an error.
    conn.query("BEGIN").await.unwrap();
    assert!(conn.status.contains(StatusFlags::SERVER_STATUS_IN_TRANS));
    conn.query("ROLLBACK").await.unwrap();
    assert!(!conn.status.contains(StatusFlags::SERVER_STATUS_IN_TRANS));
}

/// Reads a text result set's raw bytes straight from a backend, ending at the second
/// classic EOF (valid for single result sets without DEPRECATE_EOF).
async fn direct_bytes(conn: &mut BackendConn, sql: &str) -> Vec<u8> {
    conn.write_command(command::COM_QUERY, sql.as_bytes());
    conn.flush().await.unwrap();
    let mut bytes = Vec::new();
    let mut eofs = 0;
    while eofs < 2 {
        let frame = conn.conn.read_frame().await.unwrap().unwrap();
        if frame.payload.first() == Some(&0xFE) && frame.payload.len() < 9 {
            eofs += 1;
        }
        bytes.extend_from_slice(frame.raw);
    }
    bytes
}

#[tokio::test]
async fn relay_of_100k_rows_matches_a_direct_read() {
    let db = MariaDb::shared();
    let mut direct = db.connect(classic_flags()).await;
    let expected = direct_bytes(&mut direct, HUNDRED_K).await;

    let mut backend = db.connect(classic_flags()).await;
    backend.write_command(command::COM_QUERY, HUNDRED_K.as_bytes());
    backend.flush().await.unwrap();
    let (mut client, reader) = client_pipe();
    let summary = relay_response(&mut backend, &mut client, false)
        .await
        .unwrap();
    drop(client);
    let relayed = reader.await.unwrap();
    assert_eq!(summary.rows, 100_000);
    assert_eq!(summary.result_sets, 1);
    assert!(summary.error.is_none());
    assert!(
        summary
            .status
            .contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
    );
    assert_eq!(relayed.len(), expected.len());
    assert!(
        relayed == expected,
        "relayed bytes differ from a direct read"
    );

    let all = packets(&relayed);
    assert_eq!(all.len(), 1 + 2 + 1 + 100_000 + 1);
    let last_row = parse_text_row(&all[all.len() - 2], 2).unwrap();
    assert_eq!(
        last_row,
        vec![Some(&b"100000"[..]), Some(&b"row-100000"[..])]
    );

    // The backend is positioned after the response: the next command works.
    let result = backend.query("SELECT 42").await.unwrap();
    assert_eq!(result.text(0, 0).as_deref(), Some("42"));
}

#[tokio::test]
async fn multi_statement_with_three_result_sets() {
    let db = MariaDb::shared();
    for flags in [modern_flags(), classic_flags()] {
        let mut backend = db.connect(flags).await;
        let sql = "SELECT 1 AS a; DO 1; SELECT 'x' AS b, 'y' AS c UNION ALL SELECT 'z', NULL; \
                   SELECT 3 FROM DUAL WHERE 1 = 0";
        backend.write_command(command::COM_QUERY, sql.as_bytes());
        backend.flush().await.unwrap();
        let (mut client, reader) = client_pipe();
        let summary = relay_response(&mut backend, &mut client, false)
            .await
            .unwrap();
        drop(client);
        let relayed = packets(&reader.await.unwrap());
        assert_eq!(summary.result_sets, 3, "flags {flags:?}");
        assert_eq!(summary.rows, 3);
        assert!(
            !summary
                .status
                .contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS)
        );
        // 3 result sets: count + defs (+EOF) + rows + end; plus the DO statement's OK.
        let eof_after_defs = usize::from(!flags.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
        let expected = (1 + 1 + eof_after_defs + 1 + 1)
            + 1
            + (1 + 2 + eof_after_defs + 2 + 1)
            + (1 + 1 + eof_after_defs + 1);
        assert_eq!(relayed.len(), expected, "flags {flags:?}");
        assert_eq!(
            backend
                .query("SELECT 7")
                .await
                .unwrap()
                .text(0, 0)
                .as_deref(),
            Some("7")
        );
    }
}

#[tokio::test]
async fn error_in_the_middle_of_a_multi_statement() {
    let db = MariaDb::shared();
    let mut backend = db.connect(modern_flags()).await;
    backend.write_command(
        command::COM_QUERY,
        b"SELECT 1; SELECT * FROM missing_table; SELECT 2",
    );
    backend.flush().await.unwrap();
    let (mut client, reader) = client_pipe();
    let summary = relay_response(&mut backend, &mut client, false)
        .await
        .unwrap();
    drop(client);
    let relayed = packets(&reader.await.unwrap());
    assert_eq!(summary.result_sets, 1);
    let err = summary.error.expect("error of the second statement");
    assert_eq!(err.code, 1146);
    assert_eq!(relayed.last().unwrap()[0], 0xFF);
    assert_eq!(
        backend
            .query("SELECT 3")
            .await
            .unwrap()
            .text(0, 0)
            .as_deref(),
        Some("3")
    );
}

#[tokio::test]
async fn twenty_mib_row_is_relayed_intact() {
    let db = MariaDb::shared();
    let size = 20 * 1024 * 1024;
    for flags in [modern_flags(), classic_flags()] {
        let mut backend = db.connect(flags).await;
        let sql = format!("SELECT REPEAT('x', {size}) AS big, 'tail' AS t");
        backend.write_command(command::COM_QUERY, sql.as_bytes());
        backend.flush().await.unwrap();
        let (mut client, reader) = client_pipe();
        let summary = relay_response(&mut backend, &mut client, false)
            .await
            .unwrap();
        drop(client);
        assert!(summary.error.is_none(), "{:?}", summary.error);
        assert_eq!(summary.rows, 1);
        let relayed = packets(&reader.await.unwrap());
        let row_index = if flags.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
            3
        } else {
            4
        };
        assert_eq!(relayed.len(), row_index + 2);
        let row = parse_text_row(&relayed[row_index], 2).expect("row decodes");
        let big = row[0].unwrap();
        assert_eq!(big.len(), size);
        assert!(big.iter().all(|&b| b == b'x'));
        assert_eq!(row[1], Some(&b"tail"[..]));
    }
}

#[tokio::test]
async fn client_failure_keeps_backend_usable() {
    let db = MariaDb::shared();
    let mut backend = db.connect(modern_flags()).await;
    backend.write_command(command::COM_QUERY, HUNDRED_K.as_bytes());
    backend.flush().await.unwrap();
    let (gate_side, client_side) = tokio::io::duplex(4096);
    drop(client_side);
    let mut client = PacketConn::new(gate_side);
    match relay_response(&mut backend, &mut client, false).await {
        Err(RelayError::Client(_)) => {}
        other => panic!("expected a client error, got {other:?}"),
    }
    let result = backend.query("SELECT 'still here'").await.unwrap();
    assert_eq!(result.text(0, 0).as_deref(), Some("still here"));
}

#[tokio::test]
async fn field_list_and_simple_commands() {
    let db = MariaDb::shared();
    for flags in [modern_flags(), classic_flags()] {
        let mut backend = db.connect(flags).await;
        backend
            .query("CREATE TABLE IF NOT EXISTS fl (id INT PRIMARY KEY, name VARCHAR(10))")
            .await
            .unwrap();
        backend.write_command(command::COM_FIELD_LIST, b"fl\0");
        backend.flush().await.unwrap();
        let (mut client, reader) = client_pipe();
        let summary = relay_field_list(&mut backend, &mut client).await.unwrap();
        drop(client);
        let relayed = packets(&reader.await.unwrap());
        assert!(summary.error.is_none());
        assert_eq!(relayed.len(), 3, "two definitions and an end packet");
        let id = tessera_wire::ColumnSpec::parse(&relayed[0]).unwrap();
        assert_eq!((id.name.as_str(), id.table.as_str()), ("id", "fl"));

        backend.write_command(command::COM_FIELD_LIST, b"no_table\0");
        backend.flush().await.unwrap();
        let (mut client, _reader) = client_pipe();
        let summary = relay_field_list(&mut backend, &mut client).await.unwrap();
        assert_eq!(summary.error.unwrap().code, 1146);

        backend.write_command(command::COM_PING, b"");
        backend.flush().await.unwrap();
        let (mut client, _reader) = client_pipe();
        let summary = relay_response(&mut backend, &mut client, false)
            .await
            .unwrap();
        assert!(summary.ok.is_some() && summary.error.is_none());

        backend.write_command(command::COM_INIT_DB, b"mysql");
        backend.flush().await.unwrap();
        let (mut client, _reader) = client_pipe();
        relay_response(&mut backend, &mut client, false)
            .await
            .unwrap();
        let db_now = backend.query("SELECT DATABASE()").await.unwrap();
        assert_eq!(db_now.text(0, 0).as_deref(), Some("mysql"));
    }
}

#[tokio::test]
async fn column_count_parsing_sanity() {
    // Not a server test: the relay's column-count decoding rejects garbage cleanly.
    let mut buf: &[u8] = &[0xFC, 0x01];
    assert_eq!(read_lenenc_int(&mut buf), None);
}

/// Decodes the binary rows of a relayed single-column VARCHAR result.
fn binary_string_rows(relayed: &[Vec<u8>], classic_eof: bool) -> Vec<Option<String>> {
    let first_row = 2 + usize::from(classic_eof);
    let mut out = Vec::new();
    for row in &relayed[first_row..relayed.len() - 1] {
        assert_eq!(row[0], 0x00, "binary row header");
        // One column: the NULL bitmap is one byte with an offset of 2 bits.
        if row[1] & 0b100 != 0 {
            out.push(None);
            continue;
        }
        let mut rest = &row[2..];
        let value = tessera_wire::protocol::read_lenenc_str(&mut rest).unwrap();
        out.push(Some(String::from_utf8(value.to_vec()).unwrap()));
    }
    out
}

#[tokio::test]
async fn prepare_and_rewritten_execute_return_rows() {
    let db = MariaDb::shared();
    for flags in [modern_flags(), classic_flags()] {
        let mut backend = db.connect(flags).await;
        backend
            .query(
                "CREATE TABLE IF NOT EXISTS ps (id BIGINT PRIMARY KEY, name VARCHAR(20)); \
                 REPLACE INTO ps VALUES (1, 'one'), (2, 'two'), (3, NULL), (4, 'four')",
            )
            .await
            .unwrap();
        let prepared = tessera_wire::prepare_on_backend(
            &mut backend,
            "SELECT name FROM ps WHERE id >= ? AND id <= ? ORDER BY id",
        )
        .await
        .unwrap();
        assert_eq!((prepared.num_params, prepared.num_columns), (2, 1));
        assert_eq!(prepared.param_defs.len(), 2);
        let column = tessera_wire::ColumnSpec::parse(&prepared.column_defs[0]).unwrap();
        assert_eq!(column.name, "name");

        // What a client sends for its own statement id 77: both params LONGLONG.
        let types = [8u8, 0, 8, 0];
        let mut client_payload = Vec::new();
        client_payload.extend_from_slice(&77u32.to_le_bytes());
        client_payload.push(0x01); // asks for a read-only cursor; must be dropped
        client_payload.extend_from_slice(&1u32.to_le_bytes());
        client_payload.push(0); // NULL bitmap
        client_payload.push(1);
        client_payload.extend_from_slice(&types);
        client_payload.extend_from_slice(&2i64.to_le_bytes());
        client_payload.extend_from_slice(&4i64.to_le_bytes());
        let header = tessera_wire::parse_execute(&client_payload, 2).unwrap();
        assert_eq!(header.stmt_id, 77);
        let mut out = Vec::new();
        tessera_wire::rewrite_execute(&mut out, prepared.statement_id, &header, &types, 2);
        backend.write_command(command::COM_STMT_EXECUTE, &out);
        backend.flush().await.unwrap();
        let (mut client, reader) = client_pipe();
        let summary = relay_response(&mut backend, &mut client, true)
            .await
            .unwrap();
        drop(client);
        assert!(summary.error.is_none(), "{:?}", summary.error);
        assert_eq!(summary.rows, 3);
        assert!(
            !summary
                .status
                .contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS)
        );
        let classic = !flags.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
        let relayed = packets(&reader.await.unwrap());
        assert_eq!(
            binary_string_rows(&relayed, classic),
            vec![Some("two".to_string()), None, Some("four".to_string())]
        );

        // A second execution where the client did not resend types: the gate supplies them.
        let mut again = Vec::new();
        again.extend_from_slice(&77u32.to_le_bytes());
        again.push(0);
        again.extend_from_slice(&1u32.to_le_bytes());
        again.push(0);
        again.push(0);
        again.extend_from_slice(&1i64.to_le_bytes());
        again.extend_from_slice(&1i64.to_le_bytes());
        let header = tessera_wire::parse_execute(&again, 2).unwrap();
        tessera_wire::rewrite_execute(&mut out, prepared.statement_id, &header, &types, 2);
        backend.write_command(command::COM_STMT_EXECUTE, &out);
        backend.flush().await.unwrap();
        let (mut client, reader) = client_pipe();
        let summary = relay_response(&mut backend, &mut client, true)
            .await
            .unwrap();
        drop(client);
        assert_eq!(summary.rows, 1);
        let relayed = packets(&reader.await.unwrap());
        assert_eq!(
            binary_string_rows(&relayed, classic),
            vec![Some("one".to_string())]
        );

        let err = tessera_wire::prepare_on_backend(&mut backend, "SELECT FROM WHERE")
            .await
            .unwrap_err();
        assert!(
            matches!(err, BackendError::Server(ref e) if e.code == 1064),
            "{err}"
        );
    }
}
