//! Binary-protocol result rows (the answer to COM_STMT_EXECUTE) built from text-protocol
//! values: the gate merges scatter results as text and re-encodes them for clients that
//! executed a prepared statement, in the exact bytes mariadbd itself would send.

use bytes::BufMut;
use mysql_common::constants::{CapabilityFlags, ColumnType, StatusFlags};

use crate::packet::PacketConn;
use crate::protocol::{
    ColumnSpec, eof_or_ok_end, eof_packet, put_lenenc_int, put_lenenc_str, put_text_row,
};

const UNSIGNED_FLAG: u16 = 0x0020;

/// Appends one binary-protocol row: 0x00, the NULL bitmap (offset 2), then each non-NULL
/// value in its column type's binary form. Fails, naming the column, when a text value
/// does not parse as its column's type.
pub fn put_binary_row(
    out: &mut Vec<u8>,
    columns: &[ColumnSpec],
    values: &[Option<Vec<u8>>],
) -> Result<(), String> {
    if columns.len() != values.len() {
        return Err(format!(
            "a row of {} values for {} columns",
            values.len(),
            columns.len()
        ));
    }
    out.put_u8(0x00);
    let bitmap_start = out.len();
    out.resize(bitmap_start + (columns.len() + 7 + 2) / 8, 0);
    for (i, (column, value)) in columns.iter().zip(values).enumerate() {
        let value = match value {
            Some(v) if column.column_type != ColumnType::MYSQL_TYPE_NULL => v,
            _ => {
                let bit = i + 2;
                out[bitmap_start + bit / 8] |= 1 << (bit % 8);
                continue;
            }
        };
        put_binary_value(out, column, value).map_err(|what| {
            format!(
                "column `{}` ({:?}) holds {:?}, which is not {what}",
                column.name,
                column.column_type,
                String::from_utf8_lossy(value)
            )
        })?;
    }
    Ok(())
}

fn put_binary_value(
    out: &mut Vec<u8>,
    column: &ColumnSpec,
    text: &[u8],
) -> Result<(), &'static str> {
    use ColumnType::*;
    let unsigned = column.flags & UNSIGNED_FLAG != 0;
    match column.column_type {
        MYSQL_TYPE_TINY => put_int(out, text, 1, unsigned),
        MYSQL_TYPE_SHORT | MYSQL_TYPE_YEAR => put_int(out, text, 2, unsigned),
        MYSQL_TYPE_LONG | MYSQL_TYPE_INT24 => put_int(out, text, 4, unsigned),
        MYSQL_TYPE_LONGLONG => put_int(out, text, 8, unsigned),
        MYSQL_TYPE_FLOAT => {
            let v: f32 = parse(text).ok_or("a FLOAT")?;
            out.put_f32_le(v);
            Ok(())
        }
        MYSQL_TYPE_DOUBLE => {
            let v: f64 = parse(text).ok_or("a DOUBLE")?;
            out.put_f64_le(v);
            Ok(())
        }
        MYSQL_TYPE_DATE
        | MYSQL_TYPE_NEWDATE
        | MYSQL_TYPE_DATETIME
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIMESTAMP
        | MYSQL_TYPE_TIMESTAMP2 => put_datetime(out, text),
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => put_time(out, text),
        // DECIMAL, strings, blobs, JSON, BIT, ENUM, SET, GEOMETRY travel as they are.
        _ => {
            put_lenenc_str(out, text);
            Ok(())
        }
    }
}

fn parse<T: std::str::FromStr>(text: &[u8]) -> Option<T> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn put_int(
    out: &mut Vec<u8>,
    text: &[u8],
    width: usize,
    unsigned: bool,
) -> Result<(), &'static str> {
    // Two's complement makes one little-endian encoding serve both signednesses.
    let bits: u64 = if unsigned {
        parse::<u64>(text).ok_or("an unsigned integer")?
    } else {
        parse::<i64>(text).ok_or("an integer")? as u64
    };
    let fits = if unsigned {
        width == 8 || bits >> (width * 8) == 0
    } else {
        let signed = bits as i64;
        width == 8 || {
            let limit = 1i64 << (width * 8 - 1);
            (-limit..limit).contains(&signed)
        }
    };
    if !fits {
        return Err("an integer of the column's width");
    }
    out.put_uint_le(bits & (u64::MAX >> (64 - width * 8)), width);
    Ok(())
}

/// Parses "SS" or "SS.ffffff" into (seconds, microseconds).
fn seconds_and_micros(text: &str) -> Option<(u32, u32)> {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").parse().ok()?
    };
    Some((number(seconds)?, micros))
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// DATE/DATETIME/TIMESTAMP: a length of 0, 4, 7 or 11 bytes, the shortest that holds the
/// value, as the server sends it.
fn put_datetime(out: &mut Vec<u8>, text: &[u8]) -> Result<(), &'static str> {
    const WHAT: &str = "a date or datetime";
    let text = std::str::from_utf8(text).map_err(|_| WHAT)?;
    let (date, clock) = text.split_once(' ').unwrap_or((text, ""));
    let mut parts = date.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(WHAT);
    };
    let year = u16::try_from(number(year).ok_or(WHAT)?).map_err(|_| WHAT)?;
    let month = u8::try_from(number(month).ok_or(WHAT)?).map_err(|_| WHAT)?;
    let day = u8::try_from(number(day).ok_or(WHAT)?).map_err(|_| WHAT)?;
    let (hour, minute, second, micros) = if clock.is_empty() {
        (0, 0, 0, 0)
    } else {
        let mut parts = clock.split(':');
        let (Some(h), Some(m), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(WHAT);
        };
        let (second, micros) = seconds_and_micros(s).ok_or(WHAT)?;
        (
            u8::try_from(number(h).ok_or(WHAT)?).map_err(|_| WHAT)?,
            u8::try_from(number(m).ok_or(WHAT)?).map_err(|_| WHAT)?,
            u8::try_from(second).map_err(|_| WHAT)?,
            micros,
        )
    };
    let length: u8 = if micros != 0 {
        11
    } else if hour != 0 || minute != 0 || second != 0 {
        7
    } else if year != 0 || month != 0 || day != 0 {
        4
    } else {
        0
    };
    out.put_u8(length);
    if length >= 4 {
        out.put_u16_le(year);
        out.put_u8(month);
        out.put_u8(day);
    }
    if length >= 7 {
        out.put_u8(hour);
        out.put_u8(minute);
        out.put_u8(second);
    }
    if length == 11 {
        out.put_u32_le(micros);
    }
    Ok(())
}

/// TIME: a length of 0, 8 or 12 bytes: sign, days, hours, minutes, seconds, microseconds.
fn put_time(out: &mut Vec<u8>, text: &[u8]) -> Result<(), &'static str> {
    const WHAT: &str = "a TIME";
    let text = std::str::from_utf8(text).map_err(|_| WHAT)?;
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut parts = body.split(':');
    let (Some(h), Some(m), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(WHAT);
    };
    let hours = number(h).ok_or(WHAT)?;
    let minutes = u8::try_from(number(m).ok_or(WHAT)?).map_err(|_| WHAT)?;
    let (seconds, micros) = seconds_and_micros(s).ok_or(WHAT)?;
    let seconds = u8::try_from(seconds).map_err(|_| WHAT)?;
    let (days, hours) = (hours / 24, (hours % 24) as u8);
    let length: u8 = if micros != 0 {
        12
    } else if days != 0 || hours != 0 || minutes != 0 || seconds != 0 {
        8
    } else {
        0
    };
    out.put_u8(length);
    if length >= 8 {
        out.put_u8(u8::from(negative));
        out.put_u32_le(days);
        out.put_u8(hours);
        out.put_u8(minutes);
        out.put_u8(seconds);
    }
    if length == 12 {
        out.put_u32_le(micros);
    }
    Ok(())
}

/// Writes a whole result set into the write buffer, starting at `*seq`: text rows, or
/// binary rows (for COM_STMT_EXECUTE) when `binary`. Does not flush. On a value that does
/// not fit its column nothing is written and the error names it.
pub fn write_resultset<S>(
    conn: &mut PacketConn<S>,
    seq: &mut u8,
    caps: CapabilityFlags,
    columns: &[ColumnSpec],
    rows: &[Vec<Option<Vec<u8>>>],
    status: StatusFlags,
    binary: bool,
) -> Result<(), String> {
    // Encode every row first so that a bad value leaves no half-written result behind.
    let mut encoded = Vec::with_capacity(rows.len());
    for row in rows {
        let mut payload = Vec::with_capacity(64);
        if binary {
            put_binary_row(&mut payload, columns, row)?;
        } else {
            if row.len() != columns.len() {
                return Err(format!(
                    "a row of {} values for {} columns",
                    row.len(),
                    columns.len()
                ));
            }
            put_text_row(&mut payload, row);
        }
        encoded.push(payload);
    }
    let mut count = Vec::with_capacity(9);
    put_lenenc_int(&mut count, columns.len() as u64);
    conn.write_packet(seq, &count);
    for column in columns {
        conn.write_packet(seq, &column.to_packet());
    }
    if !caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
        conn.write_packet(seq, &eof_packet(status, 0));
    }
    for payload in &encoded {
        conn.write_packet(seq, payload);
    }
    conn.write_packet(seq, &eof_or_ok_end(caps, status, 0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(column_type: ColumnType, flags: u16) -> ColumnSpec {
        ColumnSpec {
            name: "c".into(),
            column_type,
            charset: 63,
            length: 20,
            flags,
            decimals: 0,
            schema: String::new(),
            table: String::new(),
        }
    }

    fn encode(column_type: ColumnType, flags: u16, text: &str) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        put_binary_row(
            &mut out,
            &[column(column_type, flags)],
            &[Some(text.as_bytes().to_vec())],
        )?;
        Ok(out[2..].to_vec())
    }

    #[test]
    fn integers_are_little_endian_of_their_width() {
        use ColumnType::*;
        assert_eq!(encode(MYSQL_TYPE_TINY, 0, "-1").unwrap(), [0xFF]);
        assert_eq!(
            encode(MYSQL_TYPE_TINY, UNSIGNED_FLAG, "255").unwrap(),
            [0xFF]
        );
        assert_eq!(encode(MYSQL_TYPE_SHORT, 0, "258").unwrap(), [2, 1]);
        assert_eq!(
            encode(MYSQL_TYPE_INT24, 0, "-2").unwrap(),
            [0xFE, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(
            encode(MYSQL_TYPE_LONGLONG, UNSIGNED_FLAG, "18446744073709551615").unwrap(),
            [0xFF; 8]
        );
        assert!(encode(MYSQL_TYPE_TINY, 0, "128").is_err());
        assert!(encode(MYSQL_TYPE_LONG, 0, "x").is_err());
    }

    #[test]
    fn temporal_values_use_the_shortest_form() {
        use ColumnType::*;
        assert_eq!(encode(MYSQL_TYPE_DATE, 0, "0000-00-00").unwrap(), [0]);
        assert_eq!(
            encode(MYSQL_TYPE_DATE, 0, "2020-01-02").unwrap(),
            [4, 0xE4, 0x07, 1, 2]
        );
        assert_eq!(
            encode(MYSQL_TYPE_DATETIME, 0, "2020-01-02 03:04:05").unwrap(),
            [7, 0xE4, 0x07, 1, 2, 3, 4, 5]
        );
        assert_eq!(
            encode(MYSQL_TYPE_DATETIME, 0, "2020-01-02 00:00:00.5").unwrap(),
            [11, 0xE4, 0x07, 1, 2, 0, 0, 0, 0x20, 0xA1, 0x07, 0]
        );
        assert_eq!(encode(MYSQL_TYPE_TIME, 0, "00:00:00").unwrap(), [0]);
        assert_eq!(
            encode(MYSQL_TYPE_TIME, 0, "-49:02:03").unwrap(),
            [8, 1, 2, 0, 0, 0, 1, 2, 3]
        );
        assert!(encode(MYSQL_TYPE_DATE, 0, "2020-01").is_err());
        assert!(encode(MYSQL_TYPE_TIME, 0, "1:2").is_err());
    }

    #[test]
    fn null_bitmap_starts_at_bit_two() {
        let columns: Vec<ColumnSpec> = (0..7)
            .map(|_| column(ColumnType::MYSQL_TYPE_VAR_STRING, 0))
            .collect();
        let mut values = vec![Some(b"x".to_vec()); 7];
        values[0] = None;
        values[6] = None;
        let mut out = Vec::new();
        put_binary_row(&mut out, &columns, &values).unwrap();
        assert_eq!(&out[..3], &[0x00, 0b0000_0100, 0b0000_0001]);
        assert_eq!(&out[3..], b"\x01x\x01x\x01x\x01x\x01x");
        assert!(put_binary_row(&mut Vec::new(), &columns, &values[..6]).is_err());
    }

    #[tokio::test]
    async fn resultset_frames_follow_the_protocol() {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let mut conn = PacketConn::new(ours);
        let mut peer = PacketConn::new(theirs);
        let columns = vec![
            column(ColumnType::MYSQL_TYPE_LONG, 0),
            column(ColumnType::MYSQL_TYPE_VAR_STRING, 0),
        ];
        let rows = vec![
            vec![Some(b"7".to_vec()), None],
            vec![None, Some(b"ab".to_vec())],
        ];
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41;
        let status = StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        let mut seq = 1;
        write_resultset(&mut conn, &mut seq, caps, &columns, &rows, status, true).unwrap();
        conn.flush().await.unwrap();
        let mut packets = Vec::new();
        for _ in 0..7 {
            packets.push(peer.read_packet().await.unwrap().unwrap());
        }
        let ids: Vec<u8> = packets.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(&packets[0].1[..], [2]);
        assert_eq!(ColumnSpec::parse(&packets[1].1), Some(columns[0].clone()));
        assert_eq!(
            &packets[3].1[..],
            [0xFE, 0, 0, 2, 0],
            "EOF after the columns"
        );
        assert_eq!(&packets[4].1[..], [0x00, 0b1000, 7, 0, 0, 0]);
        assert_eq!(&packets[5].1[..], [0x00, 0b0100, 2, b'a', b'b']);
        assert_eq!(packets[6].1[0], 0xFE);
        assert_eq!(seq, 8);

        // A bad value writes nothing.
        let bad = vec![vec![Some(b"x".to_vec()), None]];
        let mut seq = 1;
        assert!(write_resultset(&mut conn, &mut seq, caps, &columns, &bad, status, true).is_err());
        assert_eq!((conn.write_buffer_len(), seq), (0, 1));
        // Text mode writes text rows.
        write_resultset(&mut conn, &mut seq, caps, &columns, &bad, status, false).unwrap();
        conn.flush().await.unwrap();
        for _ in 0..4 {
            peer.read_packet().await.unwrap();
        }
        assert_eq!(
            &peer.read_packet().await.unwrap().unwrap().1[..],
            [1, b'x', 0xFB]
        );
    }
}
