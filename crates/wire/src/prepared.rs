//! Prepared-statement packets: preparing on a backend, answering a client's prepare with
//! the gate's own statement id, and rewriting a client's COM_STMT_EXECUTE for a backend.

use bytes::Bytes;
use mysql_common::constants::CapabilityFlags;

use crate::backend::{BackendConn, BackendError};
use crate::packet::PacketConn;
use crate::protocol::{self, command, parse_err};

/// A decoded COM_STMT_PREPARE_OK with its raw parameter and column definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareOk {
    pub statement_id: u32,
    pub num_columns: u16,
    pub num_params: u16,
    pub warnings: u16,
    /// Raw column-definition payloads of the parameters.
    pub param_defs: Vec<Bytes>,
    /// Raw column-definition payloads of the result columns.
    pub column_defs: Vec<Bytes>,
}

fn protocol_err(what: &str) -> BackendError {
    BackendError::Protocol(what.to_string())
}

/// Sends COM_STMT_PREPARE on `backend` and reads the whole response.
pub async fn prepare_on_backend(
    backend: &mut BackendConn,
    sql: &str,
) -> Result<PrepareOk, BackendError> {
    backend.write_command(command::COM_STMT_PREPARE, sql.as_bytes());
    backend.flush().await?;
    let (_, first) = read(backend).await?;
    if first.first() == Some(&0xFF) {
        return Err(BackendError::Server(
            parse_err(&first).ok_or_else(|| protocol_err("malformed ERR"))?,
        ));
    }
    let mut buf = &first[..];
    let bad = || protocol_err("malformed COM_STMT_PREPARE_OK");
    if protocol::read_u8(&mut buf).ok_or_else(bad)? != 0x00 {
        return Err(bad());
    }
    let statement_id = protocol::read_u32(&mut buf).ok_or_else(bad)?;
    let num_columns = protocol::read_u16(&mut buf).ok_or_else(bad)?;
    let num_params = protocol::read_u16(&mut buf).ok_or_else(bad)?;
    let warnings = match protocol::read_u8(&mut buf) {
        Some(_filler) => protocol::read_u16(&mut buf).unwrap_or(0),
        None => 0,
    };
    let classic_eof = !backend
        .capabilities
        .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    let mut param_defs = Vec::with_capacity(num_params as usize);
    for _ in 0..num_params {
        param_defs.push(read(backend).await?.1);
    }
    if num_params > 0 && classic_eof {
        read(backend).await?;
    }
    let mut column_defs = Vec::with_capacity(num_columns as usize);
    for _ in 0..num_columns {
        column_defs.push(read(backend).await?.1);
    }
    if num_columns > 0 && classic_eof {
        read(backend).await?;
    }
    Ok(PrepareOk {
        statement_id,
        num_columns,
        num_params,
        warnings,
        param_defs,
        column_defs,
    })
}

async fn read(backend: &mut BackendConn) -> Result<(u8, Bytes), BackendError> {
    backend
        .conn
        .read_packet()
        .await?
        .ok_or_else(|| BackendError::Io(std::io::ErrorKind::UnexpectedEof.into()))
}

/// Buffers a COM_STMT_PREPARE_OK response (seq 1 onwards, answering a command at seq 0)
/// carrying `stmt_id`, with classic EOF packets unless the client set DEPRECATE_EOF.
pub fn write_prepare_ok<S>(
    client: &mut PacketConn<S>,
    caps: CapabilityFlags,
    stmt_id: u32,
    p: &PrepareOk,
) {
    let mut seq = 1u8;
    let mut head = [0u8; 12];
    head[1..5].copy_from_slice(&stmt_id.to_le_bytes());
    head[5..7].copy_from_slice(&p.num_columns.to_le_bytes());
    head[7..9].copy_from_slice(&p.num_params.to_le_bytes());
    head[10..12].copy_from_slice(&p.warnings.to_le_bytes());
    client.write_packet(&mut seq, &head);
    let classic_eof = !caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
    // The EOF after definitions carries status the client ignores here; autocommit is what
    // servers send.
    let eof = protocol::eof_packet(
        mysql_common::constants::StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        0,
    );
    for def in &p.param_defs {
        client.write_packet(&mut seq, def);
    }
    if !p.param_defs.is_empty() && classic_eof {
        client.write_packet(&mut seq, &eof);
    }
    for def in &p.column_defs {
        client.write_packet(&mut seq, def);
    }
    if !p.column_defs.is_empty() && classic_eof {
        client.write_packet(&mut seq, &eof);
    }
}

/// The parts of a client's COM_STMT_EXECUTE payload (after the command byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecuteHeader<'a> {
    pub stmt_id: u32,
    pub flags: u8,
    pub null_bitmap: &'a [u8],
    pub new_params_bound: bool,
    /// Two bytes per parameter (type, unsigned flag), when the client sent them.
    pub param_types: Option<&'a [u8]>,
    /// Parameter values, binary-encoded, up to the end of the payload.
    pub values: &'a [u8],
}

/// Splits a COM_STMT_EXECUTE payload (after the command byte) for a statement with
/// `num_params` parameters. Errors are messages fit for the client.
pub fn parse_execute(payload: &[u8], num_params: u16) -> Result<ExecuteHeader<'_>, String> {
    let mut buf = payload;
    let truncated = || "malformed COM_STMT_EXECUTE packet: too short".to_string();
    let stmt_id = protocol::read_u32(&mut buf).ok_or_else(truncated)?;
    let flags = protocol::read_u8(&mut buf).ok_or_else(truncated)?;
    let _iterations = protocol::read_u32(&mut buf).ok_or_else(truncated)?;
    if num_params == 0 {
        return Ok(ExecuteHeader {
            stmt_id,
            flags,
            null_bitmap: &[],
            new_params_bound: false,
            param_types: None,
            values: buf,
        });
    }
    let bitmap_len = (num_params as usize).div_ceil(8);
    let null_bitmap = protocol::read_bytes(&mut buf, bitmap_len).ok_or_else(truncated)?;
    let new_params_bound = match protocol::read_u8(&mut buf).ok_or_else(truncated)? {
        0 => false,
        1 => true,
        other => {
            return Err(format!(
                "malformed COM_STMT_EXECUTE packet: new-params-bound flag is {other}"
            ));
        }
    };
    let param_types = if new_params_bound {
        Some(protocol::read_bytes(&mut buf, 2 * num_params as usize).ok_or_else(truncated)?)
    } else {
        None
    };
    Ok(ExecuteHeader {
        stmt_id,
        flags,
        null_bitmap,
        new_params_bound,
        param_types,
        values: buf,
    })
}

/// Writes into `out` (cleared first) a COM_STMT_EXECUTE payload, without the command byte,
/// for the backend statement `backend_stmt_id`: cursor flags cleared, iteration count 1, the
/// client's NULL bitmap and values, and always new-params-bound = 1 with `param_types`
/// (2 bytes per parameter), since the backend statement may never have seen them. Send it
/// with `BackendConn::write_command(COM_STMT_EXECUTE, out)`.
pub fn rewrite_execute(
    out: &mut Vec<u8>,
    backend_stmt_id: u32,
    h: &ExecuteHeader<'_>,
    param_types: &[u8],
    num_params: u16,
) {
    out.clear();
    out.reserve(10 + h.null_bitmap.len() + param_types.len() + h.values.len());
    out.extend_from_slice(&backend_stmt_id.to_le_bytes());
    out.push(0); // CURSOR_TYPE_NO_CURSOR: the gate relays whole results, never cursors.
    out.extend_from_slice(&1u32.to_le_bytes());
    if num_params > 0 {
        out.extend_from_slice(h.null_bitmap);
        out.push(1);
        out.extend_from_slice(param_types);
        out.extend_from_slice(h.values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execute_payload(
        stmt: u32,
        flags: u8,
        bitmap: &[u8],
        types: Option<&[u8]>,
        values: &[u8],
    ) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&stmt.to_le_bytes());
        p.push(flags);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(bitmap);
        match types {
            Some(t) => {
                p.push(1);
                p.extend_from_slice(t);
            }
            None => p.push(0),
        }
        p.extend_from_slice(values);
        p
    }

    #[test]
    fn parse_and_rewrite_with_bound_types() {
        // Two params: LONGLONG 7 and NULL string.
        let types = [8u8, 0, 253, 0];
        let values = 7u64.to_le_bytes();
        let payload = execute_payload(3, 0x01, &[0b10], Some(&types), &values);
        let h = parse_execute(&payload, 2).unwrap();
        assert_eq!(h.stmt_id, 3);
        assert_eq!(h.flags, 0x01);
        assert_eq!(h.null_bitmap, &[0b10]);
        assert!(h.new_params_bound);
        assert_eq!(h.param_types, Some(&types[..]));
        assert_eq!(h.values, &values);

        let mut out = vec![0xAA; 3];
        rewrite_execute(&mut out, 99, &h, &types, 2);
        let expected = execute_payload(99, 0, &[0b10], Some(&types), &values);
        assert_eq!(out, expected, "id replaced, cursor flag cleared");
    }

    #[test]
    fn rewrite_supplies_types_the_client_did_not_resend() {
        let types = [3u8, 0x80];
        let values = 5u32.to_le_bytes();
        let payload = execute_payload(1, 0, &[0], None, &values);
        let h = parse_execute(&payload, 1).unwrap();
        assert!(!h.new_params_bound);
        assert_eq!(h.param_types, None);
        assert_eq!(h.values, &values);
        let mut out = Vec::new();
        rewrite_execute(&mut out, 12, &h, &types, 1);
        assert_eq!(out, execute_payload(12, 0, &[0], Some(&types), &values));
    }

    #[test]
    fn no_params_and_many_params() {
        let mut payload = Vec::new();
        payload.extend_from_slice(&5u32.to_le_bytes());
        payload.push(0);
        payload.extend_from_slice(&1u32.to_le_bytes());
        let h = parse_execute(&payload, 0).unwrap();
        assert_eq!((h.stmt_id, h.values.len()), (5, 0));
        let mut out = Vec::new();
        rewrite_execute(&mut out, 6, &h, &[], 0);
        assert_eq!(out.len(), 9);
        assert_eq!(&out[..4], &6u32.to_le_bytes());

        // Nine parameters need a two-byte NULL bitmap.
        let types: Vec<u8> = (0..9).flat_map(|_| [6u8, 0]).collect();
        let payload = execute_payload(2, 0, &[0xFF, 0x01], Some(&types), &[]);
        let h = parse_execute(&payload, 9).unwrap();
        assert_eq!(h.null_bitmap, &[0xFF, 0x01]);
        assert_eq!(h.param_types.unwrap().len(), 18);
    }

    #[test]
    fn malformed_execute_is_an_error() {
        assert!(parse_execute(&[1, 0, 0], 0).is_err());
        let payload = execute_payload(1, 0, &[0], Some(&[8]), &[]);
        assert!(
            parse_execute(&payload, 1)
                .unwrap_err()
                .contains("too short")
        );
        let mut payload = execute_payload(1, 0, &[0], None, &[]);
        *payload.last_mut().unwrap() = 7;
        assert!(
            parse_execute(&payload, 1)
                .unwrap_err()
                .contains("new-params-bound")
        );
    }

    #[test]
    fn prepare_ok_layout_follows_client_caps() {
        let p = PrepareOk {
            statement_id: 900,
            num_columns: 1,
            num_params: 2,
            warnings: 0,
            param_defs: vec![Bytes::from_static(b"p1"), Bytes::from_static(b"p2")],
            column_defs: vec![Bytes::from_static(b"c1")],
        };
        for (caps, packets) in [
            (CapabilityFlags::CLIENT_PROTOCOL_41, 6),
            (
                CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_DEPRECATE_EOF,
                4,
            ),
        ] {
            let (a, _b) = tokio::io::duplex(64);
            let mut conn = PacketConn::new(a);
            write_prepare_ok(&mut conn, caps, 7, &p);
            assert!(conn.write_buffer_len() > 0);
            let bytes = conn.take_write_buffer_for_test();
            let mut rest = &bytes[..];
            let mut seen = Vec::new();
            while !rest.is_empty() {
                let len = rest[0] as usize;
                seen.push((rest[3], rest[4..4 + len].to_vec()));
                rest = &rest[4 + len..];
            }
            assert_eq!(seen.len(), packets);
            assert_eq!(seen[0].0, 1, "response starts at seq 1");
            assert_eq!(&seen[0].1[1..5], &7u32.to_le_bytes(), "gate's statement id");
            assert_eq!(&seen[0].1[5..9], &[1, 0, 2, 0]);
            assert_eq!(seen[1].1, b"p1");
            assert_eq!(seen.last().unwrap().0 as usize, packets);
        }
    }
}
