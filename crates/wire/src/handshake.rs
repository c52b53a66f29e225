//! Server side of connection setup: the gate greets clients, upgrades to TLS on request,
//! reads the handshake response and authenticates it (mysql_native_password or
//! caching_sha2_password, switching plugins when needed); also COM_CHANGE_USER.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use mysql_common::constants::{CapabilityFlags, StatusFlags};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::{self, CACHING_SHA2_PASSWORD, NATIVE_PASSWORD};
use crate::packet::{ClientStream, PacketConn};
use crate::protocol::{
    self, err_packet, ok_packet, read_lenenc_int, read_lenenc_str, read_null_str, read_u8,
    read_u16, read_u32,
};

/// How the gate presents itself to clients.
#[derive(Clone)]
pub struct ServerAuthConfig {
    /// e.g. "10.11.19-MariaDB-tessera"
    pub server_version: String,
    /// Offer TLS (CLIENT_SSL) when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub connection_id: u32,
}

/// The two password plugins the gate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    NativePassword,
    CachingSha2Password,
}

impl AuthMethod {
    pub fn plugin_name(self) -> &'static str {
        match self {
            AuthMethod::NativePassword => NATIVE_PASSWORD,
            AuthMethod::CachingSha2Password => CACHING_SHA2_PASSWORD,
        }
    }
}

/// What the gate knows about a user's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCredential {
    Cleartext(String),
    /// SHA1(SHA1(password)), as in "*HEX". Only mysql_native_password can check it.
    NativeHash([u8; 20]),
}

/// The gate's user accounts.
pub trait UserStore: Send + Sync {
    fn lookup(&self, user: &str) -> Option<UserCredential>;

    /// The plugin named in the greeting, before the user is known. Clients answer with it
    /// first; users it cannot serve are switched to the other plugin.
    fn default_auth_method(&self) -> AuthMethod {
        AuthMethod::NativePassword
    }

    /// Whether the database a client names at connect (or change-user) exists. When it
    /// does not, the handshake ends with ERROR 1049 (42000), as MariaDB's does, instead of
    /// an OK that leaves the client in a database nobody can use.
    fn database_exists(&self, _database: &str) -> bool {
        true
    }
}

/// What a successful handshake (or change-user) established.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    pub user: String,
    pub database: Option<String>,
    /// Negotiated: client's flags & server's flags.
    pub capabilities: CapabilityFlags,
    pub charset: u8,
    pub attrs: Vec<(String, String)>,
    /// Whether the connection runs over TLS. Change-user cannot see the stream and reports
    /// false; keep the handshake's value.
    pub tls: bool,
    /// The nonce passwords were checked against; change-user needs it later.
    pub scramble: [u8; 20],
    pub auth_method: AuthMethod,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("client i/o: {0}")]
    Io(#[from] io::Error),
    /// ERROR 1045 was sent to the client.
    #[error("access denied for user '{user}' (using password: {})", if *using_password { "YES" } else { "NO" })]
    AccessDenied { user: String, using_password: bool },
    #[error("handshake protocol error: {0}")]
    Protocol(String),
    /// ERROR 1049 was sent to the client.
    #[error("unknown database '{0}'")]
    UnknownDatabase(String),
}

fn protocol_err(what: impl Into<String>) -> HandshakeError {
    HandshakeError::Protocol(what.into())
}

/// Server capabilities offered to clients; negotiated flags are client & server.
pub fn server_capabilities(tls: bool) -> CapabilityFlags {
    let mut caps = CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_FOUND_ROWS
        | CapabilityFlags::CLIENT_LONG_FLAG
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB
        | CapabilityFlags::CLIENT_IGNORE_SPACE
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_INTERACTIVE
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_SESSION_TRACK
        | CapabilityFlags::CLIENT_DEPRECATE_EOF;
    if tls {
        caps |= CapabilityFlags::CLIENT_SSL;
    }
    caps
}

fn greeting(
    cfg: &ServerAuthConfig,
    caps: CapabilityFlags,
    scramble: &[u8; 20],
    method: AuthMethod,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(10);
    out.extend_from_slice(cfg.server_version.replace('\0', "").as_bytes());
    out.push(0);
    out.extend_from_slice(&cfg.connection_id.to_le_bytes());
    out.extend_from_slice(&scramble[..8]);
    out.push(0);
    out.extend_from_slice(&(caps.bits() as u16).to_le_bytes());
    out.push(protocol::UTF8MB4_GENERAL_CI);
    out.extend_from_slice(&StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits().to_le_bytes());
    out.extend_from_slice(&((caps.bits() >> 16) as u16).to_le_bytes());
    out.push(21);
    out.extend_from_slice(&[0; 10]);
    out.extend_from_slice(&scramble[8..]);
    out.push(0);
    out.extend_from_slice(method.plugin_name().as_bytes());
    out.push(0);
    out
}

/// A parsed HandshakeResponse41.
struct Response {
    caps: CapabilityFlags,
    charset: u8,
    user: String,
    auth_response: Vec<u8>,
    database: Option<String>,
    plugin: String,
    attrs: Vec<(String, String)>,
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_attrs(buf: &mut &[u8]) -> Result<Vec<(String, String)>, HandshakeError> {
    let bad = || protocol_err("malformed connection attributes");
    let total = read_lenenc_int(buf).ok_or_else(bad)? as usize;
    let mut attrs_buf = protocol::read_bytes(buf, total).ok_or_else(bad)?;
    let mut attrs = Vec::new();
    while !attrs_buf.is_empty() {
        let key = read_lenenc_str(&mut attrs_buf).ok_or_else(bad)?;
        let value = read_lenenc_str(&mut attrs_buf).ok_or_else(bad)?;
        attrs.push((lossy(key), lossy(value)));
    }
    Ok(attrs)
}

fn parse_response(payload: &[u8]) -> Result<Response, HandshakeError> {
    let bad = || protocol_err("malformed handshake response");
    let mut buf = payload;
    let caps = CapabilityFlags::from_bits_truncate(read_u32(&mut buf).ok_or_else(bad)?);
    if !caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        return Err(protocol_err(
            "client does not support protocol 4.1 (pre-MySQL-4.1 clients are not supported)",
        ));
    }
    let _max_packet = read_u32(&mut buf).ok_or_else(bad)?;
    let charset = read_u8(&mut buf).ok_or_else(bad)?;
    protocol::read_bytes(&mut buf, 23).ok_or_else(bad)?;
    let user = lossy(read_null_str(&mut buf).ok_or_else(bad)?);
    let auth_response = if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
        read_lenenc_str(&mut buf).ok_or_else(bad)?
    } else if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
        let len = read_u8(&mut buf).ok_or_else(bad)? as usize;
        protocol::read_bytes(&mut buf, len).ok_or_else(bad)?
    } else {
        read_null_str(&mut buf).ok_or_else(bad)?
    }
    .to_vec();
    let mut database = None;
    if caps.contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB) && !buf.is_empty() {
        let db = read_null_str(&mut buf).unwrap_or_else(|| std::mem::take(&mut buf));
        if !db.is_empty() {
            database = Some(lossy(db));
        }
    }
    let mut plugin = String::new();
    if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) && !buf.is_empty() {
        plugin = lossy(read_null_str(&mut buf).unwrap_or_else(|| std::mem::take(&mut buf)));
    }
    let mut attrs = Vec::new();
    if caps.contains(CapabilityFlags::CLIENT_CONNECT_ATTRS) && !buf.is_empty() {
        attrs = parse_attrs(&mut buf)?;
    }
    Ok(Response {
        caps,
        charset,
        user,
        auth_response,
        database,
        plugin,
        attrs,
    })
}

/// Reads one packet straight from the socket, never past its end: after an SSLRequest the
/// next bytes are the TLS ClientHello, which must stay in the socket for the TLS layer.
async fn read_exact_packet(stream: &mut TcpStream) -> Result<(u8, Vec<u8>), HandshakeError> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    if len >= crate::packet::MAX_FRAME {
        return Err(protocol_err("handshake response too large"));
    }
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await?;
    Ok((header[3], payload))
}

/// Greets a client, upgrades to TLS if it asks, reads its HandshakeResponse41 and
/// authenticates it. Sends OK on success; on failure sends ERROR 1045 (28000) and returns
/// AccessDenied.
pub async fn server_handshake(
    mut stream: TcpStream,
    peer: SocketAddr,
    cfg: &ServerAuthConfig,
    users: &dyn UserStore,
) -> Result<(PacketConn<ClientStream>, ClientHandshake), HandshakeError> {
    let mut scramble = auth::new_scramble();
    let server_caps = server_capabilities(cfg.tls.is_some());
    let default_method = users.default_auth_method();
    let hello = greeting(cfg, server_caps, &scramble, default_method);
    let mut framed = Vec::with_capacity(hello.len() + 4);
    framed.extend_from_slice(&(hello.len() as u32).to_le_bytes()[..3]);
    framed.push(0);
    framed.extend_from_slice(&hello);
    stream.write_all(&framed).await?;

    let (first_seq, first) = read_exact_packet(&mut stream).await?;
    let ssl_requested = first.len() == 32
        && CapabilityFlags::from_bits_truncate(u32::from_le_bytes(
            first[..4].try_into().expect("4 bytes"),
        ))
        .contains(CapabilityFlags::CLIENT_SSL);
    let (mut conn, seq, payload, tls) = if ssl_requested {
        let Some(tls_config) = &cfg.tls else {
            return Err(protocol_err("client requested TLS, which is not enabled"));
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls_config.clone());
        let tls_stream = acceptor
            .accept(stream)
            .await
            .map_err(|e| protocol_err(format!("TLS handshake failed: {e}")))?;
        let mut conn = PacketConn::new(ClientStream::Tls(Box::new(tls_stream)));
        let (seq, payload) = conn
            .read_packet()
            .await?
            .ok_or_else(|| protocol_err("client closed the connection after the TLS handshake"))?;
        (conn, seq, payload.to_vec(), true)
    } else {
        (
            PacketConn::new(ClientStream::Plain(stream)),
            first_seq,
            first,
            false,
        )
    };
    let response = parse_response(&payload)?;
    let caps = response.caps & server_caps;
    let mut seq = seq.wrapping_add(1);
    let auth_method = authenticate(
        &mut conn,
        &mut seq,
        AuthRequest {
            user: &response.user,
            plugin: &response.plugin,
            auth_response: response.auth_response,
            client_caps: response.caps,
            caps,
            database: response.database.as_deref(),
        },
        &mut scramble,
        users,
        peer,
    )
    .await?;
    Ok((
        conn,
        ClientHandshake {
            user: response.user,
            database: response.database,
            capabilities: caps,
            charset: response.charset,
            attrs: response.attrs,
            tls,
            scramble,
            auth_method,
        },
    ))
}

/// Handles COM_CHANGE_USER (`payload` is what follows the command byte): authenticates the
/// new user like the handshake does and writes OK or ERROR 1045.
pub async fn server_change_user<S: AsyncRead + AsyncWrite + Unpin + Send>(
    conn: &mut PacketConn<S>,
    payload: &[u8],
    caps: CapabilityFlags,
    cfg: &ServerAuthConfig,
    users: &dyn UserStore,
    peer: SocketAddr,
    scramble: &mut [u8; 20],
) -> Result<ClientHandshake, HandshakeError> {
    let _ = cfg;
    let bad = || protocol_err("malformed COM_CHANGE_USER packet");
    let mut buf = payload;
    let user = lossy(read_null_str(&mut buf).ok_or_else(bad)?);
    let auth_response = if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
        let len = read_u8(&mut buf).ok_or_else(bad)? as usize;
        protocol::read_bytes(&mut buf, len).ok_or_else(bad)?
    } else {
        read_null_str(&mut buf).ok_or_else(bad)?
    }
    .to_vec();
    let db = read_null_str(&mut buf).unwrap_or_else(|| std::mem::take(&mut buf));
    let database = (!db.is_empty()).then(|| lossy(db));
    let mut charset = protocol::UTF8MB4_GENERAL_CI;
    if buf.len() >= 2 {
        charset = read_u16(&mut buf).ok_or_else(bad)? as u8;
    }
    let mut plugin = String::new();
    if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) && !buf.is_empty() {
        plugin = lossy(read_null_str(&mut buf).unwrap_or_else(|| std::mem::take(&mut buf)));
    }
    let mut attrs = Vec::new();
    if caps.contains(CapabilityFlags::CLIENT_CONNECT_ATTRS) && !buf.is_empty() {
        attrs = parse_attrs(&mut buf)?;
    }
    let mut seq = 1u8;
    let auth_method = authenticate(
        conn,
        &mut seq,
        AuthRequest {
            user: &user,
            plugin: &plugin,
            auth_response,
            client_caps: caps,
            caps,
            database: database.as_deref(),
        },
        scramble,
        users,
        peer,
    )
    .await?;
    Ok(ClientHandshake {
        user,
        database,
        capabilities: caps,
        charset,
        attrs,
        tls: false,
        scramble: *scramble,
        auth_method,
    })
}

struct AuthRequest<'a> {
    user: &'a str,
    plugin: &'a str,
    auth_response: Vec<u8>,
    client_caps: CapabilityFlags,
    /// Negotiated flags, for the OK packet.
    caps: CapabilityFlags,
    /// The database the client asked for, checked once the password is.
    database: Option<&'a str>,
}

/// Checks the client's answer, switching plugins first if the one it used cannot verify
/// this user's credential; writes OK or ERROR 1045 and flushes.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin + Send>(
    conn: &mut PacketConn<S>,
    seq: &mut u8,
    req: AuthRequest<'_>,
    scramble: &mut [u8; 20],
    users: &dyn UserStore,
    peer: SocketAddr,
) -> Result<AuthMethod, HandshakeError> {
    let credential = users.lookup(req.user);
    let can_switch = req
        .client_caps
        .contains(CapabilityFlags::CLIENT_PLUGIN_AUTH);
    let client_method = match req.plugin {
        NATIVE_PASSWORD => Some(AuthMethod::NativePassword),
        CACHING_SHA2_PASSWORD => Some(AuthMethod::CachingSha2Password),
        // Clients without plugin auth always answer the native way.
        "" if !can_switch => Some(AuthMethod::NativePassword),
        _ => None,
    };
    let method = match (&credential, client_method) {
        (Some(UserCredential::NativeHash(_)), _) => AuthMethod::NativePassword,
        (_, Some(method)) => method,
        (_, None) => users.default_auth_method(),
    };
    let mut response = req.auth_response;
    if client_method != Some(method) && can_switch {
        let mut switch = Vec::with_capacity(48);
        switch.push(0xFE);
        switch.extend_from_slice(method.plugin_name().as_bytes());
        switch.push(0);
        switch.extend_from_slice(scramble);
        switch.push(0);
        conn.write_packet(seq, &switch);
        conn.flush().await?;
        let (reply_seq, reply) = conn
            .read_packet()
            .await?
            .ok_or_else(|| protocol_err("client closed the connection during auth switch"))?;
        *seq = reply_seq.wrapping_add(1);
        response = reply.to_vec();
    }
    let accepted = match (&credential, method) {
        (None, _) => false,
        (Some(UserCredential::NativeHash(hash)), _) => {
            auth::verify_native(Some(hash), scramble, &response)
        }
        (Some(UserCredential::Cleartext(pw)), AuthMethod::NativePassword) => {
            let stored = (!pw.is_empty()).then(|| auth::native_hash(pw.as_bytes()));
            auth::verify_native(stored.as_ref(), scramble, &response)
        }
        (Some(UserCredential::Cleartext(pw)), AuthMethod::CachingSha2Password) => {
            let ok = auth::verify_sha2(pw.as_bytes(), scramble, &response);
            if ok && !pw.is_empty() {
                // "fast auth success": the cleartext is known, so every check is a cache hit.
                conn.write_packet(seq, &[0x01, 0x03]);
            }
            ok
        }
    };
    if !accepted {
        let using_password = !response.is_empty();
        let message = format!(
            "Access denied for user '{}'@'{}' (using password: {})",
            req.user,
            peer.ip(),
            if using_password { "YES" } else { "NO" }
        );
        conn.write_packet(seq, &err_packet(1045, "28000", &message));
        conn.flush().await?;
        return Err(HandshakeError::AccessDenied {
            user: req.user.to_string(),
            using_password,
        });
    }
    if let Some(db) = req.database.filter(|db| !users.database_exists(db)) {
        let message = format!("Unknown database '{db}'");
        conn.write_packet(seq, &err_packet(1049, "42000", &message));
        conn.flush().await?;
        return Err(HandshakeError::UnknownDatabase(db.to_string()));
    }
    let ok = ok_packet(req.caps, 0, 0, StatusFlags::SERVER_STATUS_AUTOCOMMIT, 0, "");
    conn.write_packet(seq, &ok);
    conn.flush().await?;
    Ok(method)
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("choosing TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("loading the TLS certificate and key")?;
    Ok(Arc::new(config))
}

/// A TLS server config with a fresh self-signed certificate for localhost / 127.0.0.1.
pub fn self_signed_tls_config() -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .context("generating a self-signed certificate")?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    server_config(vec![certified.cert.der().clone()], key)
}

/// A TLS server config from a PEM certificate chain and a PEM private key.
pub fn tls_config_from_pem(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificates from {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate found in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading a private key from {}", key.display()))?;
    server_config(certs, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_parsing_handles_all_auth_encodings_and_rejects_garbage() {
        let mut payload = Vec::new();
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_CONNECT_WITH_DB
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_CONNECT_ATTRS;
        payload.extend_from_slice(&caps.bits().to_le_bytes());
        payload.extend_from_slice(&0u32.to_le_bytes());
        payload.push(33);
        payload.extend_from_slice(&[0; 23]);
        payload.extend_from_slice(b"bob\0");
        payload.push(3);
        payload.extend_from_slice(b"abc");
        payload.extend_from_slice(b"ks\0mysql_native_password\0");
        let mut attrs = Vec::new();
        protocol::put_lenenc_str(&mut attrs, b"_client_name");
        protocol::put_lenenc_str(&mut attrs, b"test");
        protocol::put_lenenc_int(&mut payload, attrs.len() as u64);
        payload.extend_from_slice(&attrs);
        let r = parse_response(&payload).unwrap();
        assert_eq!(r.user, "bob");
        assert_eq!(r.auth_response, b"abc");
        assert_eq!(r.database.as_deref(), Some("ks"));
        assert_eq!(r.plugin, NATIVE_PASSWORD);
        assert_eq!(r.charset, 33);
        assert_eq!(
            r.attrs,
            vec![("_client_name".to_string(), "test".to_string())]
        );
        for cut in [3, 10, 33, 38] {
            assert!(parse_response(&payload[..cut]).is_err(), "cut at {cut}");
        }
        let mut old = payload.clone();
        old[1] &= !0x02; // drop CLIENT_PROTOCOL_41
        assert!(
            matches!(parse_response(&old), Err(HandshakeError::Protocol(m)) if m.contains("4.1"))
        );
    }

    #[test]
    fn greeting_carries_the_scramble_and_plugin() {
        let cfg = ServerAuthConfig {
            server_version: "10.11.19-MariaDB-tessera".into(),
            tls: None,
            connection_id: 42,
        };
        let scramble = auth::new_scramble();
        let caps = server_capabilities(false);
        let g = greeting(&cfg, caps, &scramble, AuthMethod::CachingSha2Password);
        assert_eq!(g[0], 10);
        let after_version = 1 + cfg.server_version.len() + 1;
        assert_eq!(&g[after_version..after_version + 4], &42u32.to_le_bytes());
        assert_eq!(&g[after_version + 4..after_version + 12], &scramble[..8]);
        assert!(g.ends_with(b"caching_sha2_password\0"));
        assert!(!caps.contains(CapabilityFlags::CLIENT_SSL));
        assert!(server_capabilities(true).contains(CapabilityFlags::CLIENT_SSL));
        assert!(!caps.contains(CapabilityFlags::CLIENT_LOCAL_FILES));
    }

    #[test]
    fn tls_configs_build() {
        self_signed_tls_config().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        tls_config_from_pem(&cert, &key).unwrap();
        let err = tls_config_from_pem(&key, &key).unwrap_err();
        assert!(format!("{err:#}").contains("no certificate"), "{err:#}");
        assert!(tls_config_from_pem(&dir.path().join("missing"), &key).is_err());
    }
}
