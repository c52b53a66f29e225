//! Builders and parsers for the generic MySQL packets (OK, EOF, ERR, column definitions,
//! text rows) and the length-encoded integer and string helpers they rest on.

use bytes::BufMut;
use mysql_common::constants::{CapabilityFlags, ColumnType, StatusFlags};

use crate::packet::PacketConn;

/// Command bytes the gate and the backend side use (see `mysql_common::constants::Command`).
pub mod command {
    pub const COM_QUIT: u8 = 0x01;
    pub const COM_INIT_DB: u8 = 0x02;
    pub const COM_QUERY: u8 = 0x03;
    pub const COM_FIELD_LIST: u8 = 0x04;
    pub const COM_STATISTICS: u8 = 0x09;
    pub const COM_PING: u8 = 0x0e;
    pub const COM_CHANGE_USER: u8 = 0x11;
    pub const COM_STMT_PREPARE: u8 = 0x16;
    pub const COM_STMT_EXECUTE: u8 = 0x17;
    pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const COM_STMT_CLOSE: u8 = 0x19;
    pub const COM_STMT_RESET: u8 = 0x1a;
    pub const COM_SET_OPTION: u8 = 0x1b;
    pub const COM_STMT_FETCH: u8 = 0x1c;
    pub const COM_RESET_CONNECTION: u8 = 0x1f;
}

/// utf8mb4_general_ci, the collation the gate announces and asks backends for.
pub const UTF8MB4_GENERAL_CI: u8 = 45;
/// binary collation, used for numeric columns in result sets the gate builds.
pub const BINARY_COLLATION: u16 = 63;

// ---------------------------------------------------------------- lenenc helpers

/// Appends a length-encoded integer.
pub fn put_lenenc_int<B: BufMut>(buf: &mut B, value: u64) {
    if value < 0xFB {
        buf.put_u8(value as u8);
    } else if value <= 0xFFFF {
        buf.put_u8(0xFC);
        buf.put_u16_le(value as u16);
    } else if value <= 0xFF_FFFF {
        buf.put_u8(0xFD);
        buf.put_uint_le(value, 3);
    } else {
        buf.put_u8(0xFE);
        buf.put_u64_le(value);
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_str<B: BufMut>(buf: &mut B, value: &[u8]) {
    put_lenenc_int(buf, value.len() as u64);
    buf.put_slice(value);
}

/// How many bytes `put_lenenc_int(value)` writes.
pub fn lenenc_int_len(value: u64) -> usize {
    match value {
        0..=0xFA => 1,
        0xFB..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 9,
    }
}

/// Reads a length-encoded integer from the front of `buf` and advances it. None when the
/// bytes are truncated or start with 0xFB (NULL) or 0xFF (not an integer).
pub fn read_lenenc_int(buf: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = buf.split_first()?;
    let (value, used) = match first {
        0..=0xFA => (first as u64, 0),
        0xFC => (
            u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as u64,
            2,
        ),
        0xFD => {
            let b = rest.get(..3)?;
            (u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64, 3)
        }
        0xFE => (u64::from_le_bytes(rest.get(..8)?.try_into().ok()?), 8),
        _ => return None,
    };
    *buf = &rest[used..];
    Some(value)
}

/// Reads a length-encoded string from the front of `buf` and advances it.
pub fn read_lenenc_str<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut probe = *buf;
    let len = usize::try_from(read_lenenc_int(&mut probe)?).ok()?;
    let value = probe.get(..len)?;
    *buf = &probe[len..];
    Some(value)
}

/// Reads a NUL-terminated string and advances past the NUL. None when there is no NUL.
pub fn read_null_str<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = memchr::memchr(0, buf)?;
    let value = &buf[..end];
    *buf = &buf[end + 1..];
    Some(value)
}

pub(crate) fn read_u8(buf: &mut &[u8]) -> Option<u8> {
    let (&b, rest) = buf.split_first()?;
    *buf = rest;
    Some(b)
}

pub(crate) fn read_u16(buf: &mut &[u8]) -> Option<u16> {
    let v = u16::from_le_bytes(buf.get(..2)?.try_into().ok()?);
    *buf = &buf[2..];
    Some(v)
}

pub(crate) fn read_u32(buf: &mut &[u8]) -> Option<u32> {
    let v = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?);
    *buf = &buf[4..];
    Some(v)
}

pub(crate) fn read_bytes<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let v = buf.get(..n)?;
    *buf = &buf[n..];
    Some(v)
}

// ---------------------------------------------------------------- OK / EOF / ERR

/// An OK packet (header 0x00).
pub fn ok_packet(
    caps: CapabilityFlags,
    affected_rows: u64,
    last_insert_id: u64,
    status: StatusFlags,
    warnings: u16,
    info: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + info.len());
    put_ok_body(
        &mut out,
        0x00,
        caps,
        affected_rows,
        last_insert_id,
        status,
        warnings,
        info,
    );
    out
}

#[allow(clippy::too_many_arguments)]
fn put_ok_body(
    out: &mut Vec<u8>,
    header: u8,
    caps: CapabilityFlags,
    affected_rows: u64,
    last_insert_id: u64,
    status: StatusFlags,
    warnings: u16,
    info: &str,
) {
    out.put_u8(header);
    put_lenenc_int(out, affected_rows);
    put_lenenc_int(out, last_insert_id);
    // We never attach session-state data, so the flag promising it must not be set.
    let status = status - StatusFlags::SERVER_SESSION_STATE_CHANGED;
    if caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        out.put_u16_le(status.bits());
        out.put_u16_le(warnings);
    } else if caps.contains(CapabilityFlags::CLIENT_TRANSACTIONS) {
        out.put_u16_le(status.bits());
    }
    if caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
        if !info.is_empty() {
            put_lenenc_str(out, info.as_bytes());
        }
    } else {
        out.put_slice(info.as_bytes());
    }
}

/// The packet ending a result set: a classic EOF (0xFE, warnings, status) or, when the
/// client set CLIENT_DEPRECATE_EOF, an OK packet with the 0xFE header.
pub fn eof_or_ok_end(caps: CapabilityFlags, status: StatusFlags, warnings: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    if caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
        put_ok_body(&mut out, 0xFE, caps, 0, 0, status, warnings, "");
    } else {
        put_eof(&mut out, status, warnings);
    }
    out
}

/// A classic EOF packet, used after column definitions when DEPRECATE_EOF is off.
pub fn eof_packet(status: StatusFlags, warnings: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    put_eof(&mut out, status, warnings);
    out
}

fn put_eof(out: &mut Vec<u8>, status: StatusFlags, warnings: u16) {
    out.put_u8(0xFE);
    out.put_u16_le(warnings);
    out.put_u16_le(status.bits());
}

/// An ERR packet (protocol 4.1 layout, with SQLSTATE).
pub fn err_packet(code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + message.len());
    out.put_u8(0xFF);
    out.put_u16_le(code);
    out.put_u8(b'#');
    let mut state = [b'H', b'Y', b'0', b'0', b'0'];
    for (slot, byte) in state.iter_mut().zip(sqlstate.bytes()) {
        *slot = byte;
    }
    out.put_slice(&state);
    out.put_slice(message.as_bytes());
    out
}

/// A decoded ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrInfo {
    pub code: u16,
    pub sqlstate: String,
    pub message: String,
}

impl ErrInfo {
    pub fn new(code: u16, sqlstate: &str, message: impl Into<String>) -> Self {
        ErrInfo {
            code,
            sqlstate: sqlstate.to_string(),
            message: message.into(),
        }
    }

    /// This error as an ERR packet payload.
    pub fn to_packet(&self) -> Vec<u8> {
        err_packet(self.code, &self.sqlstate, &self.message)
    }
}

impl std::fmt::Display for ErrInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code, self.sqlstate, self.message
        )
    }
}

impl std::error::Error for ErrInfo {}

/// Decodes an ERR packet payload; None if it is not one.
pub fn parse_err(payload: &[u8]) -> Option<ErrInfo> {
    let mut buf = payload;
    if read_u8(&mut buf)? != 0xFF {
        return None;
    }
    let code = read_u16(&mut buf)?;
    let mut sqlstate = String::from("HY000");
    if buf.first() == Some(&b'#') && buf.len() >= 6 {
        sqlstate = String::from_utf8_lossy(&buf[1..6]).into_owned();
        buf = &buf[6..];
    }
    Some(ErrInfo {
        code,
        sqlstate,
        message: String::from_utf8_lossy(buf).into_owned(),
    })
}

/// A decoded OK packet (or the OK-shaped end of a result set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: StatusFlags,
    pub warnings: u16,
}

/// Decodes an OK packet: header 0x00, or 0xFE as sent at the end of a result set under
/// CLIENT_DEPRECATE_EOF. None if the payload is not an OK packet.
pub fn parse_ok(payload: &[u8], caps: CapabilityFlags) -> Option<OkInfo> {
    let mut buf = payload;
    match read_u8(&mut buf)? {
        0x00 => {}
        0xFE if payload.len() < MAX_FRAME_PAYLOAD => {}
        _ => return None,
    }
    let affected_rows = read_lenenc_int(&mut buf)?;
    let last_insert_id = read_lenenc_int(&mut buf)?;
    let (mut status, mut warnings) = (StatusFlags::empty(), 0);
    if caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
        status = StatusFlags::from_bits_retain(read_u16(&mut buf)?);
        warnings = read_u16(&mut buf)?;
    } else if caps.contains(CapabilityFlags::CLIENT_TRANSACTIONS) {
        status = StatusFlags::from_bits_retain(read_u16(&mut buf)?);
    }
    Some(OkInfo {
        affected_rows,
        last_insert_id,
        status,
        warnings,
    })
}

const MAX_FRAME_PAYLOAD: usize = crate::packet::MAX_FRAME;

/// Decodes a classic EOF packet (0xFE, shorter than 9 bytes) into (warnings, status).
pub fn parse_eof(payload: &[u8]) -> Option<(u16, StatusFlags)> {
    if payload.first() != Some(&0xFE) || payload.len() >= 9 {
        return None;
    }
    if payload.len() >= 5 {
        let warnings = u16::from_le_bytes([payload[1], payload[2]]);
        let status = StatusFlags::from_bits_retain(u16::from_le_bytes([payload[3], payload[4]]));
        Some((warnings, status))
    } else {
        Some((0, StatusFlags::empty()))
    }
}

/// Whether a packet read where a row may stand is instead the end of the result set:
/// `frame_len` is the length of the packet's first frame. Under DEPRECATE_EOF the end is an
/// OK packet with header 0xFE, which a row can only start with if it is at least 16 MiB long.
pub fn is_result_end(payload: &[u8], frame_len: usize, caps: CapabilityFlags) -> bool {
    payload.first() == Some(&0xFE)
        && if caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
            frame_len < MAX_FRAME_PAYLOAD
        } else {
            frame_len < 9
        }
}

/// Where the two status bytes of a final packet (OK, EOF or 0xFE-OK) start in its payload;
/// None for an ERR packet or one too short to hold them.
pub fn final_status_offset(payload: &[u8], caps: CapabilityFlags) -> Option<usize> {
    let offset = match payload.first()? {
        0xFE if !caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) => 1 + 2,
        0x00 | 0xFE => {
            let mut buf = &payload[1..];
            read_lenenc_int(&mut buf)?;
            read_lenenc_int(&mut buf)?;
            payload.len() - buf.len()
        }
        _ => return None,
    };
    (payload.len() >= offset + 2).then_some(offset)
}

/// Clears `flags` in the status of a final packet given as one whole frame (header
/// included); false when the frame holds no status (an ERR packet).
pub fn clear_final_status(frame: &mut [u8], caps: CapabilityFlags, flags: StatusFlags) -> bool {
    let Some(payload) = frame.get_mut(4..) else {
        return false;
    };
    let Some(at) = final_status_offset(payload, caps) else {
        return false;
    };
    let status = u16::from_le_bytes([payload[at], payload[at + 1]]) & !flags.bits();
    payload[at..at + 2].copy_from_slice(&status.to_le_bytes());
    true
}

/// Reads the final status and warnings from an end-of-result packet (EOF or 0xFE-OK).
pub fn parse_result_end(payload: &[u8], caps: CapabilityFlags) -> Option<OkInfo> {
    if caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
        parse_ok(payload, caps)
    } else {
        parse_eof(payload).map(|(warnings, status)| OkInfo {
            affected_rows: 0,
            last_insert_id: 0,
            status,
            warnings,
        })
    }
}

// ---------------------------------------------------------------- result sets

/// One column of a result set the gate builds itself, or a decoded column definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub column_type: ColumnType,
    pub charset: u16,
    pub length: u32,
    pub flags: u16,
    pub decimals: u8,
    pub schema: String,
    pub table: String,
}

impl ColumnSpec {
    /// A VARCHAR column in utf8mb4, the shape of most answers the gate makes itself.
    pub fn varchar(name: &str) -> Self {
        ColumnSpec {
            name: name.to_string(),
            column_type: ColumnType::MYSQL_TYPE_VAR_STRING,
            charset: UTF8MB4_GENERAL_CI as u16,
            length: 1024,
            flags: 0,
            decimals: 0,
            schema: String::new(),
            table: String::new(),
        }
    }

    /// A BIGINT column.
    pub fn bigint(name: &str) -> Self {
        ColumnSpec {
            name: name.to_string(),
            column_type: ColumnType::MYSQL_TYPE_LONGLONG,
            charset: BINARY_COLLATION,
            length: 20,
            flags: 0x0080, // BINARY_FLAG, as servers mark numbers
            decimals: 0,
            schema: String::new(),
            table: String::new(),
        }
    }

    /// Encodes the column as a ColumnDefinition41 payload.
    pub fn to_packet(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.name.len() * 2 + self.schema.len());
        put_lenenc_str(&mut out, b"def");
        put_lenenc_str(&mut out, self.schema.as_bytes());
        put_lenenc_str(&mut out, self.table.as_bytes());
        put_lenenc_str(&mut out, self.table.as_bytes());
        put_lenenc_str(&mut out, self.name.as_bytes());
        put_lenenc_str(&mut out, self.name.as_bytes());
        out.put_u8(0x0C);
        out.put_u16_le(self.charset);
        out.put_u32_le(self.length);
        out.put_u8(self.column_type as u8);
        out.put_u16_le(self.flags);
        out.put_u8(self.decimals);
        out.put_u16_le(0);
        out
    }

    /// Decodes a ColumnDefinition41 payload. Unknown type codes become MYSQL_TYPE_UNKNOWN.
    pub fn parse(payload: &[u8]) -> Option<ColumnSpec> {
        let mut buf = payload;
        let _catalog = read_lenenc_str(&mut buf)?;
        let schema = read_lenenc_str(&mut buf)?;
        let table = read_lenenc_str(&mut buf)?;
        let _org_table = read_lenenc_str(&mut buf)?;
        let name = read_lenenc_str(&mut buf)?;
        let _org_name = read_lenenc_str(&mut buf)?;
        let _fixed_len = read_lenenc_int(&mut buf)?;
        let charset = read_u16(&mut buf)?;
        let length = read_u32(&mut buf)?;
        let type_code = read_u8(&mut buf)?;
        let flags = read_u16(&mut buf)?;
        let decimals = read_u8(&mut buf)?;
        Some(ColumnSpec {
            name: String::from_utf8_lossy(name).into_owned(),
            column_type: ColumnType::try_from(type_code).unwrap_or(ColumnType::MYSQL_TYPE_UNKNOWN),
            charset,
            length,
            flags,
            decimals,
            schema: String::from_utf8_lossy(schema).into_owned(),
            table: String::from_utf8_lossy(table).into_owned(),
        })
    }
}

/// Appends one text-protocol row (lenenc strings, 0xFB for NULL) to `out`.
pub fn put_text_row<B: BufMut>(out: &mut B, values: &[Option<Vec<u8>>]) {
    for value in values {
        match value {
            Some(v) => put_lenenc_str(out, v),
            None => out.put_u8(0xFB),
        }
    }
}

/// Decodes one text-protocol row of `columns` values. None if the payload is malformed.
pub fn parse_text_row(payload: &[u8], columns: usize) -> Option<Vec<Option<&[u8]>>> {
    let mut buf = payload;
    let mut values = Vec::with_capacity(columns);
    for _ in 0..columns {
        if buf.first() == Some(&0xFB) {
            buf = &buf[1..];
            values.push(None);
        } else {
            values.push(Some(read_lenenc_str(&mut buf)?));
        }
    }
    buf.is_empty().then_some(values)
}

/// Writes a whole text-protocol result set (the gate's own answers) into the write buffer,
/// starting at `*seq`. Does not flush.
pub fn write_text_resultset<S>(
    conn: &mut PacketConn<S>,
    seq: &mut u8,
    caps: CapabilityFlags,
    columns: &[ColumnSpec],
    rows: &[Vec<Option<Vec<u8>>>],
    status: StatusFlags,
) {
    let mut scratch = Vec::with_capacity(256);
    put_lenenc_int(&mut scratch, columns.len() as u64);
    conn.write_packet(seq, &scratch);
    for column in columns {
        conn.write_packet(seq, &column.to_packet());
    }
    if !caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
        conn.write_packet(seq, &eof_packet(status, 0));
    }
    for row in rows {
        scratch.clear();
        put_text_row(&mut scratch, row);
        conn.write_packet(seq, &scratch);
    }
    conn.write_packet(seq, &eof_or_ok_end(caps, status, 0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearing_a_status_flag_in_ok_eof_and_err_frames() {
        let frame = |payload: &[u8]| {
            let mut f = (payload.len() as u32).to_le_bytes()[..3].to_vec();
            f.push(1);
            f.extend_from_slice(payload);
            f
        };
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41;
        let both = StatusFlags::SERVER_STATUS_IN_TRANS | StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        // An OK with a two-byte affected-rows count and a three-byte insert id.
        let ok = ok_packet(caps, 300, 70_000, both, 2, "");
        let mut f = frame(&ok);
        assert!(clear_final_status(
            &mut f,
            caps,
            StatusFlags::SERVER_STATUS_IN_TRANS
        ));
        let parsed = parse_ok(&f[4..], caps).unwrap();
        assert_eq!(parsed.status, StatusFlags::SERVER_STATUS_AUTOCOMMIT);
        assert_eq!(
            (parsed.affected_rows, parsed.last_insert_id, parsed.warnings),
            (300, 70_000, 2)
        );
        // A classic EOF, and the OK that replaces it with CLIENT_DEPRECATE_EOF.
        let mut f = frame(&eof_packet(both, 1));
        assert!(clear_final_status(
            &mut f,
            caps,
            StatusFlags::SERVER_STATUS_IN_TRANS
        ));
        assert_eq!(
            parse_eof(&f[4..]),
            Some((1, StatusFlags::SERVER_STATUS_AUTOCOMMIT))
        );
        let deprecate = caps | CapabilityFlags::CLIENT_DEPRECATE_EOF;
        let mut f = frame(&eof_or_ok_end(deprecate, both, 0));
        assert!(clear_final_status(
            &mut f,
            deprecate,
            StatusFlags::SERVER_STATUS_IN_TRANS
        ));
        assert_eq!(
            parse_result_end(&f[4..], deprecate).unwrap().status,
            StatusFlags::SERVER_STATUS_AUTOCOMMIT
        );
        let mut f = frame(&err_packet(1062, "23000", "Duplicate entry"));
        let before = f.clone();
        assert!(!clear_final_status(
            &mut f,
            caps,
            StatusFlags::SERVER_STATUS_IN_TRANS
        ));
        assert_eq!(f, before);
    }

    #[test]
    fn lenenc_round_trip_at_every_boundary() {
        for value in [
            0u64,
            1,
            250,
            251,
            252,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_lenenc_int(&mut buf, value);
            assert_eq!(buf.len(), lenenc_int_len(value), "length of {value}");
            let mut slice = &buf[..];
            assert_eq!(read_lenenc_int(&mut slice), Some(value));
            assert!(slice.is_empty());
        }
        let mut slice: &[u8] = &[0xFC, 0x01];
        assert_eq!(read_lenenc_int(&mut slice), None, "truncated 2-byte int");
        let mut slice: &[u8] = &[0xFB];
        assert_eq!(read_lenenc_int(&mut slice), None, "NULL is not an int");
        let mut slice: &[u8] = &[0xFF];
        assert_eq!(read_lenenc_int(&mut slice), None, "0xFF is not an int");
    }

    #[test]
    fn lenenc_str_round_trip_and_truncation() {
        let long = vec![b'a'; 300];
        let mut buf = Vec::new();
        put_lenenc_str(&mut buf, b"hello");
        put_lenenc_str(&mut buf, &long);
        put_lenenc_str(&mut buf, b"");
        let mut slice = &buf[..];
        assert_eq!(read_lenenc_str(&mut slice), Some(&b"hello"[..]));
        assert_eq!(read_lenenc_str(&mut slice), Some(&long[..]));
        assert_eq!(read_lenenc_str(&mut slice), Some(&b""[..]));
        assert!(slice.is_empty());
        let mut truncated: &[u8] = &[5, b'a', b'b'];
        assert_eq!(read_lenenc_str(&mut truncated), None);
        assert_eq!(truncated.len(), 3, "failed reads do not advance");
    }

    #[test]
    fn ok_packet_round_trip() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_TRANSACTIONS;
        let status =
            StatusFlags::SERVER_STATUS_AUTOCOMMIT | StatusFlags::SERVER_MORE_RESULTS_EXISTS;
        let packet = ok_packet(caps, 70_000, 1 << 40, status, 3, "Rows matched: 1");
        assert_eq!(packet[0], 0x00);
        assert!(packet.ends_with(b"Rows matched: 1"));
        let ok = parse_ok(&packet, caps).unwrap();
        assert_eq!(
            ok,
            OkInfo {
                affected_rows: 70_000,
                last_insert_id: 1 << 40,
                status,
                warnings: 3
            }
        );
        let tracked = caps | CapabilityFlags::CLIENT_SESSION_TRACK;
        let packet = ok_packet(
            tracked,
            1,
            0,
            status | StatusFlags::SERVER_SESSION_STATE_CHANGED,
            0,
            "info",
        );
        let ok = parse_ok(&packet, tracked).unwrap();
        assert_eq!(ok.status, status, "session-state flag is never promised");
        assert!(packet.ends_with(b"\x04info"));
        assert_eq!(parse_ok(&[0xFF, 1, 2], caps), None);
        assert_eq!(parse_ok(&[0x00, 0xFC], caps), None, "truncated");
    }

    #[test]
    fn end_packets_follow_deprecate_eof() {
        let base = CapabilityFlags::CLIENT_PROTOCOL_41;
        let status = StatusFlags::SERVER_STATUS_IN_TRANS;
        let eof = eof_or_ok_end(base, status, 7);
        assert_eq!(eof, vec![0xFE, 7, 0, 1, 0]);
        assert!(is_result_end(&eof, eof.len(), base));
        assert_eq!(parse_eof(&eof), Some((7, status)));
        let with_ok = base | CapabilityFlags::CLIENT_DEPRECATE_EOF;
        let ok = eof_or_ok_end(with_ok, status, 7);
        assert_eq!(ok[0], 0xFE);
        assert!(is_result_end(&ok, ok.len(), with_ok));
        let end = parse_result_end(&ok, with_ok).unwrap();
        assert_eq!((end.status, end.warnings), (status, 7));
        // A row whose first value has an 8-byte length prefix is not an end packet.
        let mut row = vec![0xFE];
        row.extend_from_slice(&[0; 8]);
        assert!(!is_result_end(&row, row.len(), base));
        assert!(!is_result_end(&row, MAX_FRAME_PAYLOAD, with_ok));
    }

    #[test]
    fn err_packet_round_trip() {
        let packet = err_packet(1045, "28000", "Access denied for user 'x'@'h'");
        let err = parse_err(&packet).unwrap();
        assert_eq!(
            err,
            ErrInfo::new(1045, "28000", "Access denied for user 'x'@'h'")
        );
        assert_eq!(err.to_packet(), packet);
        // Pre-4.1 layout without SQLSTATE.
        let bare = [0xFF, 0x10, 0x04, b'o', b'o', b'p', b's'];
        let err = parse_err(&bare).unwrap();
        assert_eq!(
            (err.code, err.sqlstate.as_str(), err.message.as_str()),
            (1040, "HY000", "oops")
        );
        assert_eq!(parse_err(&[0x00]), None);
        assert_eq!(parse_err(&[0xFF, 1]), None);
    }

    #[test]
    fn column_definition_and_text_row_round_trip() {
        let mut column = ColumnSpec::varchar("Database");
        column.schema = "information_schema".into();
        column.table = "SCHEMATA".into();
        let parsed = ColumnSpec::parse(&column.to_packet()).unwrap();
        assert_eq!(parsed, column);
        assert_eq!(ColumnSpec::parse(&column.to_packet()[..10]), None);
        let mut row = Vec::new();
        put_text_row(&mut row, &[Some(b"abc".to_vec()), None, Some(Vec::new())]);
        let values = parse_text_row(&row, 3).unwrap();
        assert_eq!(values, vec![Some(&b"abc"[..]), None, Some(&b""[..])]);
        assert_eq!(parse_text_row(&row, 2), None, "trailing bytes");
        assert_eq!(parse_text_row(&row, 4), None, "missing value");
    }
}
