//! The hot path: copies one whole backend response to the client frame by frame, without
//! decoding rows, while tracking just enough protocol state to know where it ends.

use std::io;

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::backend::BackendConn;
use crate::packet::{MAX_FRAME, PacketConn};
use crate::protocol::{ErrInfo, OkInfo, is_result_end, parse_err, parse_ok, parse_result_end};

/// The client's buffer is written out once it holds this much; frames at least this big
/// bypass the buffer. Memory stays bounded whatever the result size.
pub const FLUSH_THRESHOLD: usize = 64 * 1024;

/// What a relayed response contained.
#[derive(Debug, Clone, Default)]
pub struct ResponseSummary {
    /// The final OK, or end-of-result packet, of the response.
    pub ok: Option<OkInfo>,
    pub error: Option<ErrInfo>,
    /// Status flags of the final packet (the backend's transaction state).
    pub status: StatusFlags,
    pub result_sets: u32,
    pub rows: u64,
    /// For a held response: where its final packet (OK, end of rows or ERR) starts in the
    /// client's write buffer.
    pub held_final_at: Option<usize>,
}

/// Why a relay stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The backend connection failed; it must be discarded.
    #[error("backend connection failed: {0}")]
    Backend(io::Error),
    /// Writing to the client failed; the backend response was fully read, so the backend
    /// connection is still usable.
    #[error("client connection failed: {0}")]
    Client(io::Error),
    /// The backend said something we do not relay (e.g. LOCAL INFILE) or that makes no
    /// sense; the response was drained where possible.
    #[error("protocol error: {0}")]
    Protocol(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// First packet of a response, or of the next result after MORE_RESULTS_EXISTS.
    ResponseStart,
    ColumnDefs(u64),
    ColumnsEof,
    Rows,
    /// COM_FIELD_LIST: column definitions until an end packet.
    FieldList,
}

/// What happens to the frames of a response.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SinkMode {
    /// Copied to the client, flushed as the buffer fills and at the end.
    Relay,
    /// Appended to the client's write buffer and never flushed: the caller decides later
    /// whether the client sees them.
    Hold,
    /// Read and dropped.
    Discard,
}

/// Client writes, remembering the first failure instead of stopping the relay.
struct ClientSink<'c, C> {
    client: Option<&'c mut PacketConn<C>>,
    mode: SinkMode,
    error: Option<io::Error>,
    /// Set once the rest of the response must not reach the client.
    discarding: bool,
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send> ClientSink<'_, C> {
    fn buffered(&self) -> usize {
        self.client.as_ref().map_or(0, |c| c.write_buffer_len())
    }

    async fn copy(&mut self, raw: &[u8]) {
        if self.error.is_some() || self.discarding {
            return;
        }
        let Some(client) = self.client.as_deref_mut() else {
            return;
        };
        if self.mode == SinkMode::Hold {
            client.write_raw(raw);
            return;
        }
        let result = if raw.len() >= FLUSH_THRESHOLD {
            client.write_through(raw).await
        } else {
            client.write_raw(raw);
            if client.write_buffer_len() >= FLUSH_THRESHOLD {
                client.flush().await
            } else {
                Ok(())
            }
        };
        if let Err(err) = result {
            client.clear_write_buffer();
            self.error = Some(err);
        }
    }

    async fn finish(mut self) -> Result<(), RelayError> {
        if self.error.is_none()
            && self.mode == SinkMode::Relay
            && let Some(client) = self.client.as_deref_mut()
            && let Err(err) = client.flush().await
        {
            client.clear_write_buffer();
            self.error = Some(err);
        }
        match self.error {
            Some(err) => Err(RelayError::Client(err)),
            None => Ok(()),
        }
    }
}

/// Reads one whole response to a command from `backend` and copies every frame unchanged to
/// `client`: OK, ERR, or result sets (text, or binary when `binary`) for as long as
/// SERVER_MORE_RESULTS_EXISTS is set. Flushes the client when its buffer passes
/// FLUSH_THRESHOLD and at the end.
///
/// A LOCAL INFILE request (only possible if CLIENT_LOCAL_FILES was negotiated, which
/// backends never ask for) is refused with an empty file, the rest of the response drained
/// unseen, and `Protocol` returned; the backend stays usable. If the client fails, the
/// backend response is still drained and `Client` returned afterwards. After any other
/// `Protocol` error the backend connection's position is unknown: discard it.
pub async fn relay_response<C: AsyncWrite + AsyncRead + Unpin + Send>(
    backend: &mut BackendConn,
    client: &mut PacketConn<C>,
    binary: bool,
) -> Result<ResponseSummary, RelayError> {
    // Binary rows start with 0x00 and text rows with a length; the end-of-rows rules are the
    // same for both, so `binary` only documents the caller's intent.
    let _ = binary;
    relay(
        backend,
        Some(client),
        Expect::ResponseStart,
        SinkMode::Relay,
    )
    .await
}

/// Reads one whole response like [`relay_response`] but only appends its frames to the
/// client's write buffer, never flushing it, and says where its final packet starts there
/// (`held_final_at`): the caller later lets the client see it (flush), amends it, or takes
/// it back (truncate the buffer). For responses the caller knows to be small (the answer
/// to a write), since all of it stays in memory.
pub async fn hold_response<C: AsyncWrite + AsyncRead + Unpin + Send>(
    backend: &mut BackendConn,
    client: &mut PacketConn<C>,
) -> Result<ResponseSummary, RelayError> {
    relay(backend, Some(client), Expect::ResponseStart, SinkMode::Hold).await
}

/// Reads one whole response and drops it, for commands the gate sends on its own behalf
/// in a pipeline with the client's.
pub async fn discard_response(backend: &mut BackendConn) -> Result<ResponseSummary, RelayError> {
    relay::<tokio::net::TcpStream>(backend, None, Expect::ResponseStart, SinkMode::Discard).await
}

/// Relays a COM_FIELD_LIST response: column definitions until EOF (or ERR).
pub async fn relay_field_list<C: AsyncWrite + AsyncRead + Unpin + Send>(
    backend: &mut BackendConn,
    client: &mut PacketConn<C>,
) -> Result<ResponseSummary, RelayError> {
    relay(backend, Some(client), Expect::FieldList, SinkMode::Relay).await
}

async fn relay<C: AsyncWrite + AsyncRead + Unpin + Send>(
    backend: &mut BackendConn,
    client: Option<&mut PacketConn<C>>,
    mut expect: Expect,
    mode: SinkMode,
) -> Result<ResponseSummary, RelayError> {
    let caps = backend.capabilities;
    let mut summary = ResponseSummary::default();
    let mut sink = ClientSink {
        client,
        mode,
        error: None,
        discarding: false,
    };
    // True while the frames being read continue a packet of MAX_FRAME-sized frames.
    let mut continuing = false;
    let mut refused_local_infile = false;
    loop {
        let frame = match backend.conn.read_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                return Err(RelayError::Backend(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "backend closed the connection in the middle of a response",
                )));
            }
            Err(err) => return Err(RelayError::Backend(err)),
        };
        let payload = frame.payload;
        let starts_packet = !continuing;
        continuing = payload.len() == MAX_FRAME;
        if !starts_packet {
            sink.copy(frame.raw).await;
            continue;
        }
        let mut done = false;
        match expect {
            Expect::ResponseStart => match payload.first() {
                Some(0x00) => {
                    let ok = parse_ok(payload, caps)
                        .ok_or_else(|| RelayError::Protocol("malformed OK packet".into()))?;
                    summary.status = ok.status;
                    summary.ok = Some(ok);
                    done = !ok.status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS);
                }
                Some(0xFF) => {
                    summary.error = parse_err(payload);
                    done = true;
                }
                Some(0xFB) => {
                    // Refuse with an empty file; the statement's own OK/ERR (and any further
                    // results) follow and are drained without reaching the client.
                    let mut seq = frame.seq.wrapping_add(1);
                    backend.conn.write_packet(&mut seq, &[]);
                    backend.conn.flush().await.map_err(RelayError::Backend)?;
                    refused_local_infile = true;
                    sink.discarding = true;
                    continue;
                }
                _ => {
                    let mut buf = payload;
                    let count = crate::protocol::read_lenenc_int(&mut buf)
                        .filter(|&n| n > 0 && buf.is_empty())
                        .ok_or_else(|| {
                            RelayError::Protocol("malformed result-set column count".into())
                        })?;
                    expect = Expect::ColumnDefs(count);
                }
            },
            Expect::ColumnDefs(left) => {
                expect = if left > 1 {
                    Expect::ColumnDefs(left - 1)
                } else if caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
                    Expect::Rows
                } else {
                    Expect::ColumnsEof
                };
            }
            Expect::ColumnsEof => {
                if payload.first() == Some(&0xFF) {
                    summary.error = parse_err(payload);
                    done = true;
                } else {
                    expect = Expect::Rows;
                }
            }
            Expect::Rows => {
                if is_result_end(payload, payload.len(), caps) {
                    let end = parse_result_end(payload, caps).ok_or_else(|| {
                        RelayError::Protocol("malformed end of result set".into())
                    })?;
                    summary.status = end.status;
                    summary.ok = Some(end);
                    summary.result_sets += 1;
                    done = !end.status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS);
                    expect = Expect::ResponseStart;
                } else if payload.first() == Some(&0xFF) && payload.len() < MAX_FRAME {
                    summary.error = parse_err(payload);
                    done = true;
                } else {
                    summary.rows += 1;
                }
            }
            Expect::FieldList => {
                if payload.first() == Some(&0xFF) {
                    summary.error = parse_err(payload);
                    done = true;
                } else if is_result_end(payload, payload.len(), caps) {
                    let end = parse_result_end(payload, caps).ok_or_else(|| {
                        RelayError::Protocol("malformed end of field list".into())
                    })?;
                    summary.status = end.status;
                    summary.ok = Some(end);
                    done = true;
                }
            }
        }
        if done && mode == SinkMode::Hold {
            summary.held_final_at = Some(sink.buffered());
        }
        sink.copy(frame.raw).await;
        if done {
            break;
        }
    }
    backend.status = summary.status;
    sink.finish().await?;
    if refused_local_infile {
        return Err(RelayError::Protocol(
            "LOAD DATA LOCAL INFILE is not supported".into(),
        ));
    }
    Ok(summary)
}
