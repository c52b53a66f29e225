//! Client side of the protocol: the gate's connections to mysqld (handshake, auth, simple
//! commands, and a decoding `query` for the gate's own small statements).

use std::io;

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use tokio::net::TcpStream;

use crate::auth;
use crate::packet::{MAX_FRAME, PacketConn};
use crate::protocol::{
    self, ErrInfo, OkInfo, command, is_result_end, parse_err, parse_ok, parse_result_end,
    read_lenenc_int, read_null_str, read_u8, read_u16, read_u32,
};

/// Where and how to connect to one mysqld.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// host:port
    pub addr: String,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    /// Flags to request. Only the ones that shape responses (see `FLAVOUR_FLAGS`) are taken
    /// from here; the connection adds the ones it needs itself.
    pub capabilities: CapabilityFlags,
}

/// Errors of a backend connection.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend i/o: {0}")]
    Io(#[from] io::Error),
    #[error("backend {0}")]
    Server(ErrInfo),
    #[error("backend protocol: {0}")]
    Protocol(String),
}

/// Flags that change the bytes of responses, so the gate asks backends for exactly the ones
/// its client negotiated; relayed bytes are then valid for that client.
pub const FLAVOUR_FLAGS: CapabilityFlags = CapabilityFlags::CLIENT_FOUND_ROWS
    .union(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    .union(CapabilityFlags::CLIENT_SESSION_TRACK)
    .union(CapabilityFlags::CLIENT_MULTI_STATEMENTS)
    .union(CapabilityFlags::CLIENT_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_PS_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_IGNORE_SPACE)
    .union(CapabilityFlags::CLIENT_INTERACTIVE)
    .union(CapabilityFlags::CLIENT_LONG_FLAG);

/// Flags every backend connection uses.
const BASE_FLAGS: CapabilityFlags = CapabilityFlags::CLIENT_LONG_PASSWORD
    .union(CapabilityFlags::CLIENT_PROTOCOL_41)
    .union(CapabilityFlags::CLIENT_SECURE_CONNECTION)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
    .union(CapabilityFlags::CLIENT_TRANSACTIONS);

/// What the server's initial handshake packet told us.
struct Greeting {
    server_version: String,
    connection_id: u32,
    capabilities: CapabilityFlags,
    nonce: Vec<u8>,
    plugin: String,
}

fn protocol_err(what: &str) -> BackendError {
    BackendError::Protocol(what.to_string())
}

fn parse_greeting(payload: &[u8]) -> Result<Greeting, BackendError> {
    if let Some(err) = parse_err(payload) {
        return Err(BackendError::Server(err));
    }
    let bad = || protocol_err("malformed server greeting");
    let mut buf = payload;
    let version = read_u8(&mut buf).ok_or_else(bad)?;
    if version != 10 {
        return Err(BackendError::Protocol(format!(
            "unsupported handshake protocol version {version}"
        )));
    }
    let server_version =
        String::from_utf8_lossy(read_null_str(&mut buf).ok_or_else(bad)?).into_owned();
    let connection_id = read_u32(&mut buf).ok_or_else(bad)?;
    let mut nonce = protocol::read_bytes(&mut buf, 8).ok_or_else(bad)?.to_vec();
    read_u8(&mut buf).ok_or_else(bad)?;
    let caps_low = read_u16(&mut buf).ok_or_else(bad)? as u32;
    let mut caps_high = 0;
    let mut auth_data_len = 0usize;
    let mut plugin = auth::NATIVE_PASSWORD.to_string();
    if !buf.is_empty() {
        let _charset = read_u8(&mut buf).ok_or_else(bad)?;
        let _status = read_u16(&mut buf).ok_or_else(bad)?;
        caps_high = read_u16(&mut buf).ok_or_else(bad)? as u32;
        auth_data_len = read_u8(&mut buf).ok_or_else(bad)? as usize;
        protocol::read_bytes(&mut buf, 10).ok_or_else(bad)?;
    }
    let capabilities = CapabilityFlags::from_bits_truncate(caps_low | (caps_high << 16));
    if capabilities.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) && !buf.is_empty() {
        let len = auth_data_len.saturating_sub(8).max(13).min(buf.len());
        let part2 = protocol::read_bytes(&mut buf, len).ok_or_else(bad)?;
        // The second part is NUL-terminated; the nonce itself is 20 bytes.
        nonce.extend_from_slice(part2.strip_suffix(&[0]).unwrap_or(part2));
    }
    if capabilities.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) && !buf.is_empty() {
        let name = read_null_str(&mut buf).unwrap_or(buf);
        plugin = String::from_utf8_lossy(name).into_owned();
    }
    Ok(Greeting {
        server_version,
        connection_id,
        capabilities,
        nonce,
        plugin,
    })
}

fn auth_answer(plugin: &str, password: &str, nonce: &[u8]) -> Result<Vec<u8>, BackendError> {
    match plugin {
        auth::NATIVE_PASSWORD => Ok(auth::native_scramble(password.as_bytes(), nonce)),
        auth::CACHING_SHA2_PASSWORD => Ok(auth::sha2_scramble(password.as_bytes(), nonce)),
        other => Err(BackendError::Protocol(format!(
            "backend asks for unsupported auth plugin {other:?}"
        ))),
    }
}

/// One authenticated connection to a mysqld.
pub struct BackendConn {
    pub conn: PacketConn<TcpStream>,
    /// Negotiated flags: what the server's responses on this connection are shaped by.
    pub capabilities: CapabilityFlags,
    pub connection_id: u32,
    pub server_version: String,
    /// Status of the last response read by `query` or the relay.
    pub status: StatusFlags,
}

/// A server that vanished without closing (host down, network cut) is
/// noticed in seconds rather than at the kernel's default of many minutes:
/// unacknowledged writes fail after `USER_TIMEOUT`, and an idle connection
/// waiting for an answer is probed. A live server acknowledges probes, so
/// long queries are not cut.
fn detect_dead_peer(stream: &TcpStream) -> io::Result<()> {
    use std::time::Duration;
    const USER_TIMEOUT: Duration = Duration::from_secs(10);
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(5))
            .with_interval(Duration::from_secs(2))
            .with_retries(3),
    )?;
    socket.set_tcp_user_timeout(Some(USER_TIMEOUT))
}

impl BackendConn {
    /// Connects, authenticates (mysql_native_password, or caching_sha2_password's fast
    /// path) and returns a connection ready for commands.
    pub async fn connect(cfg: &BackendConfig) -> Result<BackendConn, BackendError> {
        let stream = TcpStream::connect(&cfg.addr).await?;
        stream.set_nodelay(true)?;
        detect_dead_peer(&stream)?;
        let mut conn = PacketConn::new(stream);
        let (seq, greeting) = conn
            .read_packet()
            .await?
            .ok_or_else(|| protocol_err("backend closed the connection before greeting"))?;
        let greeting = parse_greeting(&greeting)?;
        if !greeting
            .capabilities
            .contains(CapabilityFlags::CLIENT_PROTOCOL_41)
        {
            return Err(protocol_err("backend does not speak protocol 4.1"));
        }
        let mut caps = ((cfg.capabilities & FLAVOUR_FLAGS) | BASE_FLAGS) & greeting.capabilities;
        // MariaDB announces itself by clearing bit 0; we still send it so the server treats
        // us as a plain MySQL client and keeps MariaDB-only extensions off.
        caps |= CapabilityFlags::CLIENT_LONG_PASSWORD;
        if cfg.database.is_some() {
            caps |= CapabilityFlags::CLIENT_CONNECT_WITH_DB;
        }
        let plugin = match greeting.plugin.as_str() {
            auth::NATIVE_PASSWORD | auth::CACHING_SHA2_PASSWORD => greeting.plugin.clone(),
            // Answer with native; the server will switch us if it really needs the other.
            _ => auth::NATIVE_PASSWORD.to_string(),
        };
        let answer = auth_answer(&plugin, &cfg.password, &greeting.nonce)?;

        let mut response = Vec::with_capacity(128);
        response.extend_from_slice(&caps.bits().to_le_bytes());
        response.extend_from_slice(&(1u32 << 30).to_le_bytes());
        response.push(protocol::UTF8MB4_GENERAL_CI);
        response.extend_from_slice(&[0; 23]);
        response.extend_from_slice(cfg.user.as_bytes());
        response.push(0);
        if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
            protocol::put_lenenc_str(&mut response, &answer);
        } else {
            response.push(answer.len() as u8);
            response.extend_from_slice(&answer);
        }
        if let Some(db) = &cfg.database {
            response.extend_from_slice(db.as_bytes());
            response.push(0);
        }
        if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
            response.extend_from_slice(plugin.as_bytes());
            response.push(0);
        }
        let mut seq = seq.wrapping_add(1);
        conn.write_packet(&mut seq, &response);
        conn.flush().await?;

        let mut plugin = plugin;
        let mut nonce = greeting.nonce.clone();
        let status = loop {
            let (reply_seq, reply) = conn
                .read_packet()
                .await?
                .ok_or_else(|| protocol_err("backend closed the connection during auth"))?;
            let mut seq = reply_seq.wrapping_add(1);
            match reply.first() {
                Some(0x00) => {
                    let ok = parse_ok(&reply, caps)
                        .ok_or_else(|| protocol_err("malformed OK after auth"))?;
                    break ok.status;
                }
                Some(0xFF) => {
                    return Err(BackendError::Server(
                        parse_err(&reply).ok_or_else(|| protocol_err("malformed ERR"))?,
                    ));
                }
                Some(0xFE) => {
                    // AuthSwitchRequest: plugin name, then a new nonce.
                    let mut buf = &reply[1..];
                    let name = read_null_str(&mut buf).unwrap_or(buf);
                    plugin = String::from_utf8_lossy(name).into_owned();
                    nonce = buf.strip_suffix(&[0]).unwrap_or(buf).to_vec();
                    let answer = auth_answer(&plugin, &cfg.password, &nonce)?;
                    conn.write_packet(&mut seq, &answer);
                    conn.flush().await?;
                }
                Some(0x01) if plugin == auth::CACHING_SHA2_PASSWORD => match reply.get(1) {
                    // Fast auth succeeded; the OK follows.
                    Some(0x03) => {}
                    Some(0x04) => {
                        return Err(protocol_err(
                            "backend wants caching_sha2_password full authentication, which \
                             needs TLS or RSA; use mysql_native_password for the gate's user",
                        ));
                    }
                    _ => return Err(protocol_err("unexpected caching_sha2_password message")),
                },
                _ => return Err(protocol_err("unexpected packet during backend auth")),
            }
        };
        let _ = nonce;
        Ok(BackendConn {
            conn,
            capabilities: caps,
            connection_id: greeting.connection_id,
            server_version: greeting.server_version,
            status,
        })
    }

    /// Buffers a command packet (seq 0) of `command` followed by `body`; does not flush.
    pub fn write_command(&mut self, command: u8, body: &[u8]) {
        let mut seq = 0;
        self.conn.write_packet_parts(&mut seq, &[&[command], body]);
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.conn.flush().await
    }

    async fn read_packet(&mut self) -> Result<(u8, bytes::Bytes), BackendError> {
        self.conn
            .read_packet()
            .await?
            .ok_or_else(|| BackendError::Io(io::ErrorKind::UnexpectedEof.into()))
    }

    /// Runs `sql` and decodes its whole response. Rows of the first result set are returned
    /// as text; later result sets of a multi-statement are read and dropped. An error in any
    /// statement is returned as `Server`.
    pub async fn query(&mut self, sql: &str) -> Result<QueryResult, BackendError> {
        self.write_command(command::COM_QUERY, sql.as_bytes());
        self.flush().await?;
        let mut result = QueryResult::default();
        let mut first = true;
        let mut error = None;
        let mut refused_local_infile = false;
        loop {
            let (seq, packet) = self.read_packet().await?;
            let more = match packet.first() {
                Some(0x00) => {
                    let ok = parse_ok(&packet, self.capabilities)
                        .ok_or_else(|| protocol_err("malformed OK"))?;
                    self.status = ok.status;
                    result.ok = Some(ok);
                    ok.status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS)
                }
                Some(0xFF) => {
                    error = parse_err(&packet);
                    false
                }
                Some(0xFB) => {
                    // Refuse with an empty file, then read on to the statement's own answer.
                    let mut next = seq.wrapping_add(1);
                    self.conn.write_packet(&mut next, &[]);
                    self.flush().await?;
                    refused_local_infile = true;
                    continue;
                }
                _ => {
                    let mut buf = &packet[..];
                    let count = read_lenenc_int(&mut buf)
                        .ok_or_else(|| protocol_err("malformed column count"))?;
                    let mut columns = Vec::with_capacity(count as usize);
                    let mut specs = Vec::with_capacity(count as usize);
                    for _ in 0..count {
                        let (_, def) = self.read_packet().await?;
                        let column = protocol::ColumnSpec::parse(&def)
                            .ok_or_else(|| protocol_err("malformed column definition"))?;
                        columns.push(column.name.clone());
                        specs.push(column);
                    }
                    if !self
                        .capabilities
                        .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
                    {
                        self.read_packet().await?;
                    }
                    let mut rows = Vec::new();
                    let end = loop {
                        let (_, row) = self.read_packet().await?;
                        let first_frame_len = row.len().min(MAX_FRAME);
                        if is_result_end(&row, first_frame_len, self.capabilities) {
                            break parse_result_end(&row, self.capabilities)
                                .ok_or_else(|| protocol_err("malformed end of result set"))?;
                        }
                        if row.first() == Some(&0xFF) {
                            error = parse_err(&row);
                            break OkInfo {
                                affected_rows: 0,
                                last_insert_id: 0,
                                status: StatusFlags::empty(),
                                warnings: 0,
                            };
                        }
                        if first {
                            let values = protocol::parse_text_row(&row, columns.len())
                                .ok_or_else(|| protocol_err("malformed text row"))?;
                            rows.push(values.into_iter().map(|v| v.map(<[u8]>::to_vec)).collect());
                        }
                    };
                    if error.is_some() {
                        false
                    } else {
                        self.status = end.status;
                        if first {
                            result.columns = columns;
                            result.specs = specs;
                            result.rows = rows;
                            first = false;
                        }
                        result.ok = Some(end);
                        end.status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS)
                    }
                }
            };
            if !more {
                break;
            }
        }
        if refused_local_infile {
            return Err(protocol_err("LOAD DATA LOCAL INFILE is not supported"));
        }
        match error {
            Some(err) => Err(BackendError::Server(err)),
            None => Ok(result),
        }
    }
}

/// A decoded response of `BackendConn::query`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    /// The full column definitions of the first result set, as the server sent them.
    pub specs: Vec<protocol::ColumnSpec>,
    pub rows: Vec<Vec<Option<Vec<u8>>>>,
    /// The final OK (or end-of-result) of the response.
    pub ok: Option<OkInfo>,
}

impl QueryResult {
    /// The value at `row`, `column` as UTF-8 text (None for NULL or out of range).
    pub fn text(&self, row: usize, column: usize) -> Option<String> {
        let value = self.rows.get(row)?.get(column)?.as_ref()?;
        Some(String::from_utf8_lossy(value).into_owned())
    }
}
