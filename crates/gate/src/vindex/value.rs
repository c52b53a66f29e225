//! Turning a planner value into the integer or bytes a vindex hashes, the
//! way Vitess converts its values.

use std::borrow::Cow;

use super::VindexValue;

/// The value's bytes as Vitess sees them: integers as decimal text, NULL as
/// nothing.
pub(super) fn value_bytes<'a>(value: &VindexValue<'a>) -> Cow<'a, [u8]> {
    match value {
        VindexValue::Null => Cow::Borrowed(&[]),
        VindexValue::Int(i) => Cow::Owned(i.to_string().into_bytes()),
        VindexValue::UInt(u) => Cow::Owned(u.to_string().into_bytes()),
        VindexValue::Bytes(b) => Cow::Borrowed(b),
    }
}

/// Why a value is not an unsigned 64-bit integer.
pub(super) type NotUnsigned = String;

/// An unsigned integer: signed integers must not be negative, text must be
/// a decimal integer in range. `None` for NULL.
pub(super) fn to_u64(value: &VindexValue<'_>) -> Result<Option<u64>, NotUnsigned> {
    match value {
        VindexValue::Null => Ok(None),
        VindexValue::Int(i) => u64::try_from(*i)
            .map(Some)
            .map_err(|_| format!("negative number cannot be converted to unsigned: {i}")),
        VindexValue::UInt(u) => Ok(Some(*u)),
        VindexValue::Bytes(b) => parse_unsigned_text(b).map(Some),
    }
}

/// Like [`to_u64`], but a negative signed integer becomes its
/// two's-complement bits, as Vitess's `hash` does.
pub(super) fn to_u64_wrapping(value: &VindexValue<'_>) -> Result<Option<u64>, NotUnsigned> {
    match value {
        VindexValue::Int(i) => Ok(Some(*i as u64)),
        other => to_u64(other),
    }
}

fn parse_unsigned_text(bytes: &[u8]) -> Result<u64, NotUnsigned> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "not a number (invalid UTF-8)".to_string())?;
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Some(rest) = text.strip_prefix('-')
            && !rest.is_empty()
            && rest.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!(
                "negative number cannot be converted to unsigned: {text}"
            ));
        }
        return Err("not an integer".to_string());
    }
    digits
        .parse::<u64>()
        .map_err(|_| "integer out of the unsigned 64-bit range".to_string())
}
