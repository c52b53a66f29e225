//! How the values of one result column compare: the column's kind (from its type, flags
//! and declared collation) and the sort/group keys its text values turn into.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use tessera_wire::{ColumnSpec, ColumnType};

use super::MergeError;
use super::collation::{self, Collation, Encoding};
use super::decimal::Decimal;

pub(crate) const NOT_NULL_FLAG: u16 = 0x0001;
pub(crate) const UNSIGNED_FLAG: u16 = 0x0020;
pub(crate) const BINARY_FLAG: u16 = 0x0080;
pub(crate) const ENUM_FLAG: u16 = 0x0100;
pub(crate) const SET_FLAG: u16 = 0x0800;
/// 0x8000: NUM_FLAG to client libraries (which set it themselves), GROUP_FLAG inside the
/// server, which leaks it on GROUP BY columns.
pub(crate) const GROUP_FLAG: u16 = 0x8000;

/// What a column's values are for comparison purposes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// Integer types and YEAR; `unsigned` from the UNSIGNED flag.
    Int {
        unsigned: bool,
    },
    Decimal,
    Double,
    /// DATE, DATETIME, TIMESTAMP: fixed-width text that compares bytewise.
    Temporal,
    /// TIME: may be negative and have 3-digit hours, so compared as microseconds.
    Time,
    /// Character data with a known collation.
    Text {
        collation: Collation,
        encoding: Encoding,
    },
    /// Binary strings, BIT: bytes, NO PAD.
    Bytes,
    /// The NULL type (`SELECT NULL`): every value is NULL.
    Null,
}

/// Resolves a column's kind. `declared` is the column's own collation as the schema knows
/// it (result metadata does not carry it). Errors only matter if the column is compared.
pub(crate) fn column_kind(spec: &ColumnSpec, declared: Option<u16>) -> Result<Kind, MergeError> {
    use ColumnType::*;
    let unsigned = spec.flags & UNSIGNED_FLAG != 0;
    Ok(match spec.column_type {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_LONG | MYSQL_TYPE_LONGLONG
        | MYSQL_TYPE_INT24 | MYSQL_TYPE_YEAR => Kind::Int { unsigned },
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => Kind::Decimal,
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => Kind::Double,
        MYSQL_TYPE_DATE
        | MYSQL_TYPE_NEWDATE
        | MYSQL_TYPE_DATETIME
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIMESTAMP
        | MYSQL_TYPE_TIMESTAMP2 => Kind::Temporal,
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => Kind::Time,
        MYSQL_TYPE_BIT => Kind::Bytes,
        MYSQL_TYPE_NULL => Kind::Null,
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_JSON
        | MYSQL_TYPE_ENUM
        | MYSQL_TYPE_SET => {
            if spec.flags & (ENUM_FLAG | SET_FLAG) != 0
                || matches!(spec.column_type, MYSQL_TYPE_ENUM | MYSQL_TYPE_SET)
            {
                // ENUM and SET sort by their member index, which results do not carry.
                return Err(MergeError::Unsupported(format!(
                    "comparing ENUM/SET column `{}` across shards",
                    spec.name
                )));
            }
            if spec.charset == 63 {
                Kind::Bytes
            } else {
                let encoding = collation::encoding_of(spec.charset).ok_or_else(|| {
                    MergeError::Unsupported(format!(
                        "result character set (collation id {}) of column `{}`",
                        spec.charset, spec.name
                    ))
                })?;
                let id = declared.ok_or_else(|| {
                    MergeError::Unsupported(format!(
                        "comparing text column `{}` across shards without knowing its collation",
                        spec.name
                    ))
                })?;
                let collation = Collation::by_id(id).ok_or_else(|| {
                    MergeError::Unsupported(format!(
                        "collation id {id} of column `{}` in a cross-shard comparison",
                        spec.name
                    ))
                })?;
                Kind::Text {
                    collation,
                    encoding,
                }
            }
        }
        other => {
            return Err(MergeError::Unsupported(format!(
                "comparing column `{}` of type {other:?} across shards",
                spec.name
            )));
        }
    })
}

/// One value as it sorts and groups.
#[derive(Debug, Clone)]
pub(crate) enum Key {
    Null,
    Int(i128),
    Dec(Decimal),
    Double(f64),
    Bytes(Vec<u8>),
    Time(i64),
    Text { weights: Vec<u32>, pad: bool },
}

impl Key {
    fn rank(&self) -> u8 {
        match self {
            Key::Null => 0,
            Key::Int(_) => 1,
            Key::Dec(_) => 2,
            Key::Double(_) => 3,
            Key::Bytes(_) => 4,
            Key::Time(_) => 5,
            Key::Text { .. } => 6,
        }
    }
}

impl Ord for Key {
    /// NULL first; values of one column always share a variant.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => a.cmp(b),
            (Key::Dec(a), Key::Dec(b)) => a.total_cmp(*b),
            (Key::Double(a), Key::Double(b)) => a.total_cmp(b),
            (Key::Bytes(a), Key::Bytes(b)) => a.cmp(b),
            (Key::Time(a), Key::Time(b)) => a.cmp(b),
            (Key::Text { weights: a, pad }, Key::Text { weights: b, .. }) => {
                collation::compare_weights(a, b, *pad)
            }
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl Hash for Key {
    /// Hashes the canonical form, so values `cmp` calls equal hash alike.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Key::Null => {}
            Key::Int(v) => v.hash(state),
            Key::Dec(d) => {
                let d = d.normalized();
                (d.coefficient, d.scale).hash(state)
            }
            Key::Double(v) => (if *v == 0.0 { 0.0f64 } else { *v }).to_bits().hash(state),
            Key::Bytes(b) => b.hash(state),
            Key::Time(t) => t.hash(state),
            Key::Text { weights, pad } => {
                collation::equality_form(weights.clone(), *pad).hash(state)
            }
        }
    }
}

/// Parses a TIME text ("-838:59:59.000001") into microseconds.
pub(crate) fn parse_time(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (clock, fraction) = match body.split_once('.') {
        Some((c, f)) => (c, f),
        None => (body, ""),
    };
    let mut parts = clock.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let micros: i64 = format!("{fraction:0<6}").parse().ok()?;
    let total = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
    Some(if negative { -total } else { total })
}

pub(crate) fn parse_int(text: &[u8]) -> Option<i128> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

pub(crate) fn parse_double(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The key of `value` in a column of `kind`; `column` names the column in errors.
pub(crate) fn key_of(kind: Kind, value: Option<&[u8]>, column: &str) -> Result<Key, MergeError> {
    let Some(value) = value else {
        return Ok(Key::Null);
    };
    let bad = |what: &str| {
        MergeError::Invalid(format!(
            "column `{column}` holds {:?}, which is not {what}",
            String::from_utf8_lossy(value)
        ))
    };
    Ok(match kind {
        Kind::Int { .. } => Key::Int(parse_int(value).ok_or_else(|| bad("an integer"))?),
        Kind::Decimal => {
            Key::Dec(Decimal::parse(value).ok_or_else(|| bad("a decimal of at most 38 digits"))?)
        }
        Kind::Double => Key::Double(parse_double(value).ok_or_else(|| bad("a number"))?),
        Kind::Temporal | Kind::Bytes => Key::Bytes(value.to_vec()),
        Kind::Time => Key::Time(parse_time(value).ok_or_else(|| bad("a TIME"))?),
        Kind::Text {
            collation,
            encoding,
        } => Key::Text {
            weights: collation
                .weights(encoding, value)
                .map_err(|e| MergeError::Invalid(format!("column `{column}`: {e}")))?,
            pad: collation.pads(),
        },
        Kind::Null => Key::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(column_type: ColumnType, charset: u16, flags: u16) -> ColumnSpec {
        ColumnSpec {
            name: "c".into(),
            column_type,
            charset,
            length: 10,
            flags,
            decimals: 0,
            schema: String::new(),
            table: String::new(),
        }
    }

    fn key(kind: Kind, text: &str) -> Key {
        key_of(kind, Some(text.as_bytes()), "c").unwrap()
    }

    #[test]
    fn numbers_compare_numerically_not_as_text() {
        let int = Kind::Int { unsigned: false };
        assert!(key(int, "9") < key(int, "10"));
        assert!(key(int, "-10") < key(int, "-9"));
        let unsigned = Kind::Int { unsigned: true };
        assert!(key(unsigned, "18446744073709551615") > key(unsigned, "9223372036854775808"));
        assert!(key(Kind::Decimal, "10.5") > key(Kind::Decimal, "9.75"));
        assert_eq!(key(Kind::Decimal, "1.50"), key(Kind::Decimal, "1.5"));
        assert!(key(Kind::Double, "1e20") > key(Kind::Double, "99999"));
        assert!(Key::Null < key(int, "-1000"));
    }

    #[test]
    fn negative_and_long_times_compare_by_duration() {
        assert!(key(Kind::Time, "-01:00:00") < key(Kind::Time, "00:00:00"));
        assert!(key(Kind::Time, "-10:00:00") < key(Kind::Time, "-09:59:59.5"));
        assert!(key(Kind::Time, "100:00:00") > key(Kind::Time, "99:59:59"));
        assert_eq!(parse_time(b"-00:00:01.5"), Some(-1_500_000));
        assert_eq!(parse_time(b"12:xx:00"), None);
    }

    #[test]
    fn text_columns_need_a_known_collation() {
        let varchar = spec(ColumnType::MYSQL_TYPE_VAR_STRING, 45, 0);
        assert!(matches!(
            column_kind(&varchar, None),
            Err(MergeError::Unsupported(_))
        ));
        assert!(matches!(
            column_kind(&varchar, Some(224)),
            Err(MergeError::Unsupported(_))
        ));
        let kind = column_kind(&varchar, Some(45)).unwrap();
        assert_eq!(key(kind, "abc"), key(kind, "ABC  "));
        let binary = spec(ColumnType::MYSQL_TYPE_BLOB, 63, BINARY_FLAG);
        assert_eq!(column_kind(&binary, None).unwrap(), Kind::Bytes);
        let enumeration = spec(ColumnType::MYSQL_TYPE_STRING, 45, ENUM_FLAG);
        assert!(column_kind(&enumeration, Some(45)).is_err());
        let bad = key_of(Kind::Int { unsigned: false }, Some(b"x1"), "c");
        assert!(matches!(bad, Err(MergeError::Invalid(_))));
    }
}
