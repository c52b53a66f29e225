//! The gate's server-side handshake against real clients: the `mariadb` command-line client
//! and mysql_async, with both password plugins, plugin switches, TLS and bad passwords.

use std::net::SocketAddr;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use tessera_wire::auth::native_hash;
use tessera_wire::protocol::command;
use tessera_wire::{
    AuthMethod, ClientHandshake, ClientStream, ColumnSpec, HandshakeError, PacketConn,
    ServerAuthConfig, StatusFlags, UserCredential, UserStore,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

struct Users {
    greeting_method: AuthMethod,
}

impl UserStore for Users {
    fn lookup(&self, user: &str) -> Option<UserCredential> {
        match user {
            "alice" => Some(UserCredential::Cleartext("alice-pw".into())),
            "hashed" => Some(UserCredential::NativeHash(native_hash(b"hashed-pw"))),
            "nopw" => Some(UserCredential::Cleartext(String::new())),
            _ => None,
        }
    }

    fn default_auth_method(&self) -> AuthMethod {
        self.greeting_method
    }
}

type Outcome = Result<ClientHandshake, String>;

/// A tiny server: handshake, then every query is answered with one row describing the
/// session (user, tls, database, plugin); COM_CHANGE_USER re-authenticates.
struct TestServer {
    port: u16,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_server(greeting_method: AuthMethod, tls: bool) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, outcomes) = mpsc::unbounded_channel();
    let cfg = Arc::new(ServerAuthConfig {
        server_version: "10.11.19-MariaDB-tessera".into(),
        tls: tls.then(|| tessera_wire::self_signed_tls_config().unwrap()),
        connection_id: 7,
    });
    let users: Arc<dyn UserStore> = Arc::new(Users { greeting_method });
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let (cfg, users, tx) = (cfg.clone(), users.clone(), tx.clone());
            tokio::spawn(async move {
                match tessera_wire::server_handshake(stream, peer, &cfg, users.as_ref()).await {
                    Ok((conn, hs)) => {
                        let _ = tx.send(Ok(hs.clone()));
                        serve(conn, hs, peer, &cfg, users.as_ref(), &tx).await;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err.to_string()));
                    }
                }
            });
        }
    });
    TestServer {
        port,
        outcomes,
        task,
    }
}

async fn serve(
    mut conn: PacketConn<ClientStream>,
    mut hs: ClientHandshake,
    peer: SocketAddr,
    cfg: &ServerAuthConfig,
    users: &dyn UserStore,
    tx: &mpsc::UnboundedSender<Outcome>,
) {
    let tls = hs.tls;
    while let Ok(Some((_, packet))) = conn.read_packet().await {
        let mut seq = 1;
        match packet.first().copied() {
            Some(command::COM_QUERY) => {
                let columns = ["user", "tls", "db", "plugin"].map(ColumnSpec::varchar);
                let row = vec![
                    Some(hs.user.clone().into_bytes()),
                    Some(if tls { b"yes".to_vec() } else { b"no".to_vec() }),
                    hs.database.clone().map(String::into_bytes),
                    Some(hs.auth_method.plugin_name().as_bytes().to_vec()),
                ];
                tessera_wire::write_text_resultset(
                    &mut conn,
                    &mut seq,
                    hs.capabilities,
                    &columns,
                    &[row],
                    StatusFlags::SERVER_STATUS_AUTOCOMMIT,
                );
            }
            Some(command::COM_CHANGE_USER) => {
                let mut scramble = hs.scramble;
                let result = tessera_wire::server_change_user(
                    &mut conn,
                    &packet[1..],
                    hs.capabilities,
                    cfg,
                    users,
                    peer,
                    &mut scramble,
                )
                .await;
                match result {
                    Ok(new) => {
                        let _ = tx.send(Ok(new.clone()));
                        hs = new;
                        continue;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err.to_string()));
                        return;
                    }
                }
            }
            Some(command::COM_QUIT) | None => return,
            Some(_) => {
                let ok = tessera_wire::ok_packet(
                    hs.capabilities,
                    0,
                    0,
                    StatusFlags::SERVER_STATUS_AUTOCOMMIT,
                    0,
                    "",
                );
                conn.write_packet(&mut seq, &ok);
            }
        }
        if conn.flush().await.is_err() {
            return;
        }
    }
}

/// Runs the mariadb command-line client against the test server.
async fn mariadb_cli(port: u16, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h127.0.0.1",
            "--batch",
            "--skip-column-names",
        ])
        .arg(format!("-P{port}"))
        .args(args)
        .args(["-e", "SELECT whoami"])
        .output()
        .await
        .expect("run mariadb client")
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

async fn next_outcome(server: &mut TestServer) -> Outcome {
    tokio::time::timeout(std::time::Duration::from_secs(60), server.outcomes.recv())
        .await
        .expect("server saw the connection")
        .expect("server running")
}

#[tokio::test]
async fn mariadb_cli_native_password() {
    let mut server = start_server(AuthMethod::NativePassword, false).await;
    let out = mariadb_cli(server.port, &["-ualice", "-palice-pw", "-Dmy_ks"]).await;
    assert_eq!(stdout(&out), "alice\tno\tmy_ks\tmysql_native_password");
    let hs = next_outcome(&mut server).await.unwrap();
    assert_eq!(hs.user, "alice");
    assert_eq!(hs.database.as_deref(), Some("my_ks"));
    assert!(!hs.tls);
    assert!(
        hs.capabilities
            .contains(tessera_wire::CapabilityFlags::CLIENT_PROTOCOL_41)
    );
    assert!(
        hs.attrs.iter().any(|(k, _)| k == "_client_name"),
        "{:?}",
        hs.attrs
    );

    // A stored SHA1(SHA1(pw)) hash, and an account without a password.
    let out = mariadb_cli(server.port, &["-uhashed", "-phashed-pw"]).await;
    assert_eq!(stdout(&out), "hashed\tno\tNULL\tmysql_native_password");
    let out = mariadb_cli(server.port, &["-unopw"]).await;
    assert_eq!(stdout(&out), "nopw\tno\tNULL\tmysql_native_password");
}

#[tokio::test]
async fn mariadb_cli_wrong_password_gets_1045() {
    let mut server = start_server(AuthMethod::NativePassword, false).await;
    for (args, using) in [
        (&["-ualice", "-pwrong"][..], "YES"),
        (&["-ualice"][..], "NO"),
        (&["-unobody", "-px"][..], "YES"),
    ] {
        let out = mariadb_cli(server.port, args).await;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let user = &args[0][2..];
        let expected = format!(
            "ERROR 1045 (28000): Access denied for user '{user}'@'127.0.0.1' (using password: {using})"
        );
        assert!(stderr.contains(&expected), "{stderr}");
        match next_outcome(&mut server).await {
            Err(message) => assert!(message.contains("access denied"), "{message}"),
            Ok(hs) => panic!("accepted {}", hs.user),
        }
    }
}

#[tokio::test]
async fn mariadb_cli_over_tls() {
    let mut server = start_server(AuthMethod::NativePassword, true).await;
    let out = mariadb_cli(server.port, &["-ualice", "-palice-pw", "--ssl"]).await;
    assert_eq!(stdout(&out), "alice\tyes\tNULL\tmysql_native_password");
    let hs = next_outcome(&mut server).await.unwrap();
    assert!(hs.tls);
    // Wrong password over TLS is still a clean 1045.
    let out = mariadb_cli(server.port, &["-ualice", "-pbad", "--ssl"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1045 (28000)"));
    assert!(next_outcome(&mut server).await.is_err());
    // TLS with caching_sha2_password.
    let mut server = start_server(AuthMethod::CachingSha2Password, true).await;
    let out = mariadb_cli(server.port, &["-ualice", "-palice-pw", "--ssl"]).await;
    assert_eq!(stdout(&out), "alice\tyes\tNULL\tcaching_sha2_password");
    assert!(next_outcome(&mut server).await.unwrap().tls);
}

#[tokio::test]
async fn mariadb_cli_caching_sha2_and_switch_to_native() {
    let mut server = start_server(AuthMethod::CachingSha2Password, false).await;
    let out = mariadb_cli(server.port, &["-ualice", "-palice-pw"]).await;
    assert_eq!(stdout(&out), "alice\tno\tNULL\tcaching_sha2_password");
    assert_eq!(
        next_outcome(&mut server).await.unwrap().auth_method,
        AuthMethod::CachingSha2Password
    );
    // A hash-only user cannot be checked by caching_sha2: the server switches to native.
    let out = mariadb_cli(server.port, &["-uhashed", "-phashed-pw"]).await;
    assert_eq!(stdout(&out), "hashed\tno\tNULL\tmysql_native_password");
    let out = mariadb_cli(server.port, &["-ualice", "-pnope"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1045 (28000)"));
}

fn async_opts(port: u16, user: &str, pass: &str) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(pass))
        .prefer_socket(false)
        // Known values, so the driver does not ask the server for them.
        .max_allowed_packet(Some(16 * 1024 * 1024))
        .wait_timeout(Some(28800))
        .into()
}

#[tokio::test]
async fn mysql_async_caching_sha2_native_switch_and_change_user() {
    let mut server = start_server(AuthMethod::CachingSha2Password, false).await;
    let mut conn = mysql_async::Conn::new(async_opts(server.port, "alice", "alice-pw"))
        .await
        .expect("caching_sha2 fast auth");
    let row: (String, String, Option<String>, String) =
        conn.query_first("SELECT whoami").await.unwrap().unwrap();
    assert_eq!(row.0, "alice");
    assert_eq!(row.3, "caching_sha2_password");
    assert_eq!(next_outcome(&mut server).await.unwrap().user, "alice");

    // COM_CHANGE_USER to a hash-only user: verified after a switch to native.
    conn.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some("hashed".into()))
            .with_pass(Some("hashed-pw".into())),
    )
    .await
    .expect("change user");
    let changed = next_outcome(&mut server).await.unwrap();
    assert_eq!(changed.user, "hashed");
    let row: (String, String, Option<String>, String) =
        conn.query_first("SELECT whoami").await.unwrap().unwrap();
    assert_eq!(
        (row.0.as_str(), row.3.as_str()),
        ("hashed", "mysql_native_password")
    );
    conn.disconnect().await.unwrap();

    // Native-password greeting answered by a hashed user directly.
    let mut native = start_server(AuthMethod::NativePassword, false).await;
    let conn = mysql_async::Conn::new(async_opts(native.port, "hashed", "hashed-pw"))
        .await
        .expect("native auth");
    assert_eq!(next_outcome(&mut native).await.unwrap().user, "hashed");
    conn.disconnect().await.unwrap();

    let err = mysql_async::Conn::new(async_opts(server.port, "alice", "wrong"))
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1045);
            assert_eq!(e.state, "28000");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn change_user_with_wrong_password_is_denied() {
    let mut server = start_server(AuthMethod::NativePassword, false).await;
    let mut conn = mysql_async::Conn::new(async_opts(server.port, "alice", "alice-pw"))
        .await
        .unwrap();
    next_outcome(&mut server).await.unwrap();
    let err = conn
        .change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some("hashed".into()))
                .with_pass(Some("bad".into())),
        )
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("1045"), "{err:?}");
    match next_outcome(&mut server).await {
        Err(message) => assert!(
            message.contains("access denied for user 'hashed'"),
            "{message}"
        ),
        Ok(hs) => panic!("accepted {}", hs.user),
    }
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_response_is_a_protocol_error() {
    let mut server = start_server(AuthMethod::NativePassword, false).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let mut greeting = vec![0u8; 4];
    stream.read_exact(&mut greeting).await.unwrap();
    let len = u32::from_le_bytes([greeting[0], greeting[1], greeting[2], 0]) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.unwrap();
    assert_eq!(body[0], 10);
    stream.write_all(&[3, 0, 0, 1, 1, 2, 3]).await.unwrap();
    match next_outcome(&mut server).await {
        Err(message) => assert!(message.contains("protocol"), "{message}"),
        Ok(_) => panic!("garbage accepted"),
    }
    let _ = HandshakeError::Protocol(String::new());
}
