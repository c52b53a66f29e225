//! Evaluation of HAVING (and later gate-side filter) expressions over merged rows, with
//! MariaDB's three-valued logic, its type rules for comparisons (int, exact decimal,
//! double; a string against a number compares as doubles) and exact decimal arithmetic.

use std::cmp::Ordering;

use super::collation::{self, Collation, Encoding};
use super::decimal::{Decimal, MAX_SCALE};
use super::value::{self, Kind};
use super::{ArithOp, CompareOp, Expr, MergeError, format_double};
use tessera_wire::ColumnSpec;

/// MariaDB's div_precision_increment default: scale added by `/`.
const DIV_PRECISION_INCREMENT: u32 = 4;

/// How a string value collates.
#[derive(Debug, Clone)]
enum StrCollation {
    /// A literal: takes the collation of what it is compared with.
    Literal,
    Known(Collation, Encoding),
    /// A column whose collation could not be established; the error is raised only if a
    /// string comparison actually needs it.
    Unknown(MergeError),
}

#[derive(Debug, Clone)]
enum Val {
    Null,
    Int {
        value: i128,
        unsigned: bool,
    },
    Dec(Decimal),
    Double(f64),
    Str {
        bytes: Vec<u8>,
        collation: StrCollation,
    },
    /// DATE/DATETIME/TIMESTAMP text; compared only with the same column type.
    Temporal(Vec<u8>),
    Time(i64),
}

/// A column of the merged row as expressions see it.
pub(crate) struct ExprColumn<'a> {
    pub name: &'a str,
    pub kind: &'a Result<Kind, MergeError>,
    /// Fraction digits MariaDB shows for the column (DECIMAL only; 0 otherwise).
    pub decimals: u32,
}

/// The merged row's columns as expressions see them.
pub(crate) fn columns_of<'a>(
    columns: &'a [ColumnSpec],
    kinds: &'a [Result<Kind, MergeError>],
) -> Vec<ExprColumn<'a>> {
    columns
        .iter()
        .zip(kinds)
        .map(|(c, kind)| ExprColumn {
            name: &c.name,
            kind,
            decimals: if super::is_decimal(c) {
                u32::from(c.decimals)
            } else {
                0
            },
        })
        .collect()
}

/// The value of a select-list expression the gate computes, as MariaDB would send it in
/// a column of type `output` (the type the shards reported for the same expression).
pub(crate) fn compute(
    expr: &Expr,
    columns: &[ExprColumn<'_>],
    row: &[Option<Vec<u8>>],
    output: &ColumnSpec,
) -> Result<Option<Vec<u8>>, MergeError> {
    let value = eval(expr, columns, row)?;
    let unsupported = |what: &str| {
        Err(MergeError::Unsupported(format!(
            "{what} as the value of `{}` computed in the gate",
            output.name
        )))
    };
    let too_wide = || {
        MergeError::Unsupported(format!(
            "the value of `{}` needs more than 38 digits",
            output.name
        ))
    };
    Ok(Some(match value {
        Val::Null => return Ok(None),
        Val::Int { value, .. } => {
            if super::is_decimal(output) {
                Decimal::from_int(value)
                    .rescale(u32::from(output.decimals))
                    .ok_or_else(too_wide)?
                    .to_string()
                    .into_bytes()
            } else if super::is_float(output) {
                return unsupported("an integer in a floating-point column");
            } else {
                value.to_string().into_bytes()
            }
        }
        Val::Dec(d) => {
            let scale = if super::is_decimal(output) {
                u32::from(output.decimals)
            } else if super::is_integer(output) {
                0
            } else {
                return unsupported("a decimal in a column that is not DECIMAL");
            };
            d.round_to(scale)
                .ok_or_else(too_wide)?
                .to_string()
                .into_bytes()
        }
        Val::Double(f) => {
            if super::is_float(output) && output.decimals >= 31 {
                format_double(f).into_bytes()
            } else {
                return unsupported("a floating-point value with fixed decimals");
            }
        }
        Val::Str { bytes, .. } | Val::Temporal(bytes) => bytes,
        Val::Time(_) => return unsupported("a TIME value"),
    }))
}

/// The fraction digits MariaDB shows for a decimal expression (its `decimals`), which is
/// also how a number is written when converted to a string.
fn decimals_of(expr: &Expr, columns: &[ExprColumn<'_>]) -> u32 {
    match expr {
        Expr::Column(i) => columns.get(*i).map_or(0, |c| c.decimals),
        Expr::Literal(Some(text)) => match literal(text) {
            Val::Dec(d) => d.scale,
            _ => 0,
        },
        Expr::Arith(ArithOp::Add | ArithOp::Sub, a, b) => {
            decimals_of(a, columns).max(decimals_of(b, columns))
        }
        Expr::Arith(ArithOp::Mul, a, b) => {
            (decimals_of(a, columns) + decimals_of(b, columns)).min(MAX_SCALE)
        }
        Expr::Arith(ArithOp::Div, a, _) => {
            (decimals_of(a, columns) + DIV_PRECISION_INCREMENT).min(MAX_SCALE)
        }
        Expr::Neg(a) => decimals_of(a, columns),
        Expr::Round(_, digits) => u32::try_from(*digits).unwrap_or(0).min(MAX_SCALE),
        _ => 0,
    }
}

/// MariaDB's decimal division: the quotient is computed to a whole number of 9-digit
/// words past the point and truncated there (the shown digits are rounded later, from
/// this value): with a dividend of scale 5 and an integer divisor the 9 digits shown are
/// truncated, `1.00000/6` being 0.166666666 while `1/6` is 0.1667.
fn decimal_div(x: Decimal, y: Decimal) -> Option<Decimal> {
    const WORD: u32 = 9;
    let words = |digits: u32| digits.div_ceil(WORD) * WORD;
    let (f1, f2) = (x.scale, y.scale);
    let (frac1, frac2) = (words(f1), words(f2));
    let increment = DIV_PRECISION_INCREMENT.saturating_sub((frac1 - f1) + (frac2 - f2));
    let scale = words(frac1 + frac2 + increment);
    if scale > MAX_SCALE || y.is_zero() {
        return None;
    }
    // x/y truncated to `scale` digits: (cx * 10^(scale + f2 - f1)) / cy.
    let exp = i64::from(scale) + i64::from(f2) - i64::from(f1);
    let (numerator, denominator) = if exp >= 0 {
        (
            x.coefficient
                .checked_mul(10i128.checked_pow(u32::try_from(exp).ok()?)?)?,
            y.coefficient,
        )
    } else {
        (
            x.coefficient,
            y.coefficient
                .checked_mul(10i128.checked_pow(u32::try_from(-exp).ok()?)?)?,
        )
    };
    Some(Decimal {
        coefficient: numerator / denominator,
        scale,
    })
}

/// A value's text inside CONCAT: numbers as MariaDB converts them to strings.
fn string_of(value: Val, decimals: u32) -> Result<Option<Vec<u8>>, MergeError> {
    Ok(Some(match value {
        Val::Null => return Ok(None),
        Val::Int { value, .. } => value.to_string().into_bytes(),
        Val::Dec(d) => d
            .round_to(decimals)
            .ok_or_else(|| {
                MergeError::Unsupported("a decimal of more than 38 digits in CONCAT".into())
            })?
            .to_string()
            .into_bytes(),
        Val::Double(f) => format_double(f).into_bytes(),
        Val::Str { bytes, .. } | Val::Temporal(bytes) => bytes,
        Val::Time(_) => {
            return Err(MergeError::Unsupported(
                "a TIME value in CONCAT computed in the gate".into(),
            ));
        }
    }))
}

/// True when `expr` is true for `row` (NULL and false both drop the row).
pub(crate) fn is_true(
    expr: &Expr,
    columns: &[ExprColumn<'_>],
    row: &[Option<Vec<u8>>],
) -> Result<bool, MergeError> {
    let value = eval(expr, columns, row)?;
    Ok(truth(&value)? == Some(true))
}

fn eval(
    expr: &Expr,
    columns: &[ExprColumn<'_>],
    row: &[Option<Vec<u8>>],
) -> Result<Val, MergeError> {
    Ok(match expr {
        Expr::Column(index) => column_value(*index, columns, row)?,
        Expr::Literal(None) => Val::Null,
        Expr::Literal(Some(text)) => literal(text),
        Expr::Str(bytes) => Val::Str {
            bytes: bytes.clone(),
            collation: StrCollation::Literal,
        },
        Expr::Compare(op, a, b) => {
            let (a, b) = (eval(a, columns, row)?, eval(b, columns, row)?);
            compare_op(*op, &a, &b)?
        }
        Expr::And(a, b) => {
            let a = truth(&eval(a, columns, row)?)?;
            if a == Some(false) {
                return Ok(bool_val(Some(false)));
            }
            let b = truth(&eval(b, columns, row)?)?;
            bool_val(match (a, b) {
                (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            })
        }
        Expr::Or(a, b) => {
            let a = truth(&eval(a, columns, row)?)?;
            if a == Some(true) {
                return Ok(bool_val(Some(true)));
            }
            let b = truth(&eval(b, columns, row)?)?;
            bool_val(match (a, b) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            })
        }
        Expr::Not(a) => bool_val(truth(&eval(a, columns, row)?)?.map(|t| !t)),
        Expr::IsNull(a) => bool_val(Some(matches!(eval(a, columns, row)?, Val::Null))),
        Expr::IsNotNull(a) => bool_val(Some(!matches!(eval(a, columns, row)?, Val::Null))),
        Expr::Arith(op, a, b) => {
            let (a, b) = (eval(a, columns, row)?, eval(b, columns, row)?);
            arith(*op, &a, &b)?
        }
        Expr::InList(needle, list) => {
            let needle = eval(needle, columns, row)?;
            if matches!(needle, Val::Null) {
                return Ok(Val::Null);
            }
            let mut saw_null = false;
            for item in list {
                let item = eval(item, columns, row)?;
                match compare(&needle, &item)? {
                    Some(Ordering::Equal) => return Ok(bool_val(Some(true))),
                    Some(_) => {}
                    None => saw_null = true,
                }
            }
            bool_val(if saw_null { None } else { Some(false) })
        }
        Expr::Neg(a) => match eval(a, columns, row)? {
            Val::Null => Val::Null,
            Val::Int { value, unsigned } => {
                let negated = -value;
                if negated < i128::from(i64::MIN) || (unsigned && negated != 0) {
                    return Err(MergeError::OutOfRange(format!(
                        "BIGINT value is out of range in '-({value})'"
                    )));
                }
                Val::Int {
                    value: negated,
                    unsigned: false,
                }
            }
            Val::Dec(d) => Val::Dec(Decimal {
                coefficient: -d.coefficient,
                scale: d.scale,
            }),
            Val::Double(f) => Val::Double(-f),
            Val::Str { bytes, .. } => Val::Double(-string_to_double(&bytes)),
            Val::Temporal(_) | Val::Time(_) => {
                return Err(MergeError::Unsupported(
                    "the negation of a temporal value in the gate".into(),
                ));
            }
        },
        Expr::Round(a, digits) => round(eval(a, columns, row)?, *digits)?,
        Expr::Concat(args) => {
            let mut out = Vec::new();
            for a in args {
                let value = eval(a, columns, row)?;
                match string_of(value, decimals_of(a, columns))? {
                    Some(bytes) => out.extend_from_slice(&bytes),
                    None => return Ok(Val::Null),
                }
            }
            Val::Str {
                bytes: out,
                collation: StrCollation::Literal,
            }
        }
        Expr::Between(x, low, high) => {
            let x = eval(x, columns, row)?;
            let low = eval(low, columns, row)?;
            let high = eval(high, columns, row)?;
            let above = compare(&x, &low)?.map(|o| o != Ordering::Less);
            let below = compare(&x, &high)?.map(|o| o != Ordering::Greater);
            bool_val(match (above, below) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            })
        }
    })
}

/// ROUND(x, digits) of an exact number, half away from zero as MariaDB rounds them.
fn round(value: Val, digits: i32) -> Result<Val, MergeError> {
    let left = u32::try_from(-i64::from(digits)).unwrap_or(0);
    let exact = |d: Decimal| -> Result<Decimal, MergeError> {
        let too_wide = || MergeError::Unsupported("ROUND beyond 38 digits in the gate".into());
        if digits >= 0 {
            return d
                .round_to(u32::try_from(digits).unwrap_or(0).min(MAX_SCALE))
                .ok_or_else(too_wide);
        }
        // Round at 10^left: shift the point left, round to an integer, shift back.
        let shifted = Decimal {
            coefficient: d.coefficient,
            scale: d.scale + left,
        };
        let rounded = shifted.round_to(0).ok_or_else(too_wide)?;
        Ok(Decimal {
            coefficient: rounded
                .coefficient
                .checked_mul(10i128.checked_pow(left).ok_or_else(too_wide)?)
                .ok_or_else(too_wide)?,
            scale: 0,
        })
    };
    Ok(match value {
        Val::Null => Val::Null,
        Val::Int { value, unsigned } if digits >= 0 => Val::Int { value, unsigned },
        Val::Int { value, unsigned } => Val::Int {
            value: exact(Decimal::from_int(value))?.coefficient,
            unsigned,
        },
        Val::Dec(d) => Val::Dec(exact(d)?),
        _ => {
            return Err(MergeError::Unsupported(
                "ROUND of a value that is not an exact number, in the gate".into(),
            ));
        }
    })
}

fn bool_val(value: Option<bool>) -> Val {
    match value {
        None => Val::Null,
        Some(b) => Val::Int {
            value: i128::from(b),
            unsigned: false,
        },
    }
}

fn column_value(
    index: usize,
    columns: &[ExprColumn<'_>],
    row: &[Option<Vec<u8>>],
) -> Result<Val, MergeError> {
    let column = columns.get(index).ok_or_else(|| {
        MergeError::Invalid(format!(
            "expression refers to column {index}, which does not exist"
        ))
    })?;
    let Some(bytes) = row.get(index).and_then(|v| v.as_ref()) else {
        return Ok(Val::Null);
    };
    let bad = |what: &str| {
        MergeError::Invalid(format!(
            "column `{}` holds {:?}, which is not {what}",
            column.name,
            String::from_utf8_lossy(bytes)
        ))
    };
    let kind = match column.kind {
        Ok(kind) => *kind,
        Err(e) => {
            // Only text columns of unknown collation can still be used (as numbers).
            return match e {
                MergeError::Unsupported(_) => Ok(Val::Str {
                    bytes: bytes.clone(),
                    collation: StrCollation::Unknown(e.clone()),
                }),
                other => Err(other.clone()),
            };
        }
    };
    Ok(match kind {
        Kind::Int { unsigned } => Val::Int {
            value: value::parse_int(bytes).ok_or_else(|| bad("an integer"))?,
            unsigned,
        },
        Kind::Decimal => Val::Dec(Decimal::parse(bytes).ok_or_else(|| bad("a decimal"))?),
        Kind::Double => Val::Double(value::parse_double(bytes).ok_or_else(|| bad("a number"))?),
        Kind::Temporal => Val::Temporal(bytes.clone()),
        Kind::Time => Val::Time(value::parse_time(bytes).ok_or_else(|| bad("a TIME"))?),
        Kind::Text {
            collation,
            encoding,
        } => Val::Str {
            bytes: bytes.clone(),
            collation: StrCollation::Known(collation, encoding),
        },
        Kind::Bytes => Val::Str {
            bytes: bytes.clone(),
            collation: StrCollation::Known(Collation::Binary, Encoding::Binary),
        },
        Kind::Null => Val::Null,
    })
}

/// A literal's text: an integer, a decimal or a double when it is written as one (as
/// MariaDB would type the literal), otherwise a string.
fn literal(text: &[u8]) -> Val {
    let body = text.strip_prefix(b"-").unwrap_or(text);
    if !body.is_empty()
        && body.iter().all(u8::is_ascii_digit)
        && let Some(value) = value::parse_int(text)
    {
        return Val::Int {
            value,
            unsigned: false,
        };
    }
    if let Some(d) = Decimal::parse(text) {
        return Val::Dec(d);
    }
    let is_float_syntax = body.iter().any(|b| matches!(b, b'e' | b'E'))
        && body
            .first()
            .is_some_and(|b| b.is_ascii_digit() || *b == b'.');
    if is_float_syntax && let Some(f) = value::parse_double(text) {
        return Val::Double(f);
    }
    Val::Str {
        bytes: text.to_vec(),
        collation: StrCollation::Literal,
    }
}

fn truth(value: &Val) -> Result<Option<bool>, MergeError> {
    Ok(match value {
        Val::Null => None,
        Val::Int { value, .. } => Some(*value != 0),
        Val::Dec(d) => Some(!d.is_zero()),
        Val::Double(f) => Some(*f != 0.0),
        Val::Str { bytes, .. } => Some(string_to_double(bytes) != 0.0),
        Val::Temporal(_) | Val::Time(_) => {
            return Err(MergeError::Unsupported(
                "a temporal value used as a condition in a cross-shard HAVING".into(),
            ));
        }
    })
}

fn compare_op(op: CompareOp, a: &Val, b: &Val) -> Result<Val, MergeError> {
    if op == CompareOp::NullSafeEq {
        return Ok(bool_val(Some(match (a, b) {
            (Val::Null, Val::Null) => true,
            (Val::Null, _) | (_, Val::Null) => false,
            _ => compare(a, b)? == Some(Ordering::Equal),
        })));
    }
    let Some(order) = compare(a, b)? else {
        return Ok(Val::Null);
    };
    Ok(bool_val(Some(match op {
        CompareOp::Eq => order == Ordering::Equal,
        CompareOp::Ne => order != Ordering::Equal,
        CompareOp::Lt => order == Ordering::Less,
        CompareOp::Le => order != Ordering::Greater,
        CompareOp::Gt => order == Ordering::Greater,
        CompareOp::Ge => order != Ordering::Less,
        CompareOp::NullSafeEq => unreachable!("handled above"),
    })))
}

/// Compares two values as MariaDB's `=`/`<` would; None when either is NULL.
fn compare(a: &Val, b: &Val) -> Result<Option<Ordering>, MergeError> {
    use Val::*;
    Ok(Some(match (a, b) {
        (Null, _) | (_, Null) => return Ok(None),
        (
            Str {
                bytes: x,
                collation: cx,
            },
            Str {
                bytes: y,
                collation: cy,
            },
        ) => compare_strings(x, cx, y, cy)?,
        (Temporal(x), Temporal(y)) => x.cmp(y),
        (Time(x), Time(y)) => x.cmp(y),
        (Temporal(_) | Time(_), _) | (_, Temporal(_) | Time(_)) => {
            return Err(MergeError::Unsupported(
                "comparing a temporal value with another type in a cross-shard HAVING".into(),
            ));
        }
        (Int { value: x, .. }, Int { value: y, .. }) => x.cmp(y),
        (Int { value: x, .. }, Dec(y)) => Decimal::from_int(*x).total_cmp(*y),
        (Dec(x), Int { value: y, .. }) => x.total_cmp(Decimal::from_int(*y)),
        (Dec(x), Dec(y)) => x.total_cmp(*y),
        _ => to_double(a).total_cmp(&to_double(b)),
    }))
}

fn compare_strings(
    x: &[u8],
    cx: &StrCollation,
    y: &[u8],
    cy: &StrCollation,
) -> Result<Ordering, MergeError> {
    let pick = |c: &StrCollation| -> Result<Option<(Collation, Encoding)>, MergeError> {
        match c {
            StrCollation::Literal => Ok(None),
            StrCollation::Known(collation, encoding) => Ok(Some((*collation, *encoding))),
            StrCollation::Unknown(e) => Err(e.clone()),
        }
    };
    let (px, py) = (pick(cx)?, pick(cy)?);
    let collation = match (px, py) {
        (Some((a, _)), Some((b, _))) if a != b => {
            return Err(MergeError::Unsupported(
                "comparing strings of two different collations in a cross-shard HAVING".into(),
            ));
        }
        (Some((c, _)), _) | (None, Some((c, _))) => c,
        (None, None) => {
            return Err(MergeError::Unsupported(
                "comparing two string literals in a cross-shard HAVING".into(),
            ));
        }
    };
    // Literals come from the query text, which is UTF-8.
    let encoding_x = px.map_or(Encoding::Utf8, |(_, e)| e);
    let encoding_y = py.map_or(Encoding::Utf8, |(_, e)| e);
    let wx = collation
        .weights(encoding_x, x)
        .map_err(MergeError::Invalid)?;
    let wy = collation
        .weights(encoding_y, y)
        .map_err(MergeError::Invalid)?;
    Ok(collation::compare_weights(&wx, &wy, collation.pads()))
}

fn to_double(value: &Val) -> f64 {
    match value {
        Val::Int { value, .. } => *value as f64,
        Val::Dec(d) => d.to_f64(),
        Val::Double(f) => *f,
        Val::Str { bytes, .. } => string_to_double(bytes),
        Val::Null | Val::Temporal(_) | Val::Time(_) => 0.0,
    }
}

/// MariaDB's string-to-number conversion: the longest numeric prefix after leading
/// spaces, 0 when there is none ("3abc" is 3, "abc" is 0).
fn string_to_double(bytes: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches([' ', '\t', '\n', '\r']);
    let b = text.as_bytes();
    let mut end = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        end = 1;
    }
    let digits_start = end;
    while b.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    if b.get(end) == Some(&b'.') {
        end += 1;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    if end == digits_start || (end == digits_start + 1 && b[digits_start] == b'.') {
        return 0.0;
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut exp_end = end + 1;
        if matches!(b.get(exp_end), Some(b'-' | b'+')) {
            exp_end += 1;
        }
        let exp_digits = exp_end;
        while b.get(exp_end).is_some_and(u8::is_ascii_digit) {
            exp_end += 1;
        }
        if exp_end > exp_digits {
            end = exp_end;
        }
    }
    text[..end].parse().unwrap_or(0.0)
}

fn arith(op: ArithOp, a: &Val, b: &Val) -> Result<Val, MergeError> {
    use Val::*;
    let numeric = |v: &Val| -> Result<(), MergeError> {
        match v {
            Temporal(_) | Time(_) => Err(MergeError::Unsupported(
                "arithmetic on temporal values in a cross-shard HAVING".into(),
            )),
            _ => Ok(()),
        }
    };
    numeric(a)?;
    numeric(b)?;
    if matches!(a, Null) || matches!(b, Null) {
        return Ok(Null);
    }
    let as_decimal = |v: &Val| match v {
        Int { value, .. } => Some(Decimal::from_int(*value)),
        Dec(d) => Some(*d),
        _ => None,
    };
    match (a, b) {
        (
            Int {
                value: x,
                unsigned: ux,
            },
            Int {
                value: y,
                unsigned: uy,
            },
        ) if op != ArithOp::Div => {
            let result = match op {
                ArithOp::Add => x.checked_add(*y),
                ArithOp::Sub => x.checked_sub(*y),
                ArithOp::Mul => x.checked_mul(*y),
                ArithOp::Div => unreachable!("guarded"),
            };
            let unsigned = *ux || *uy;
            let in_range = |r: i128| {
                if unsigned {
                    (0..=i128::from(u64::MAX)).contains(&r)
                } else {
                    (i128::from(i64::MIN)..=i128::from(i64::MAX)).contains(&r)
                }
            };
            match result {
                Some(r) if in_range(r) => Ok(Int { value: r, unsigned }),
                _ => Err(MergeError::OutOfRange(format!(
                    "BIGINT{} value is out of range",
                    if unsigned { " UNSIGNED" } else { "" }
                ))),
            }
        }
        _ => match (as_decimal(a), as_decimal(b)) {
            (Some(x), Some(y)) => {
                let too_wide = || {
                    MergeError::Unsupported(
                        "decimal arithmetic beyond 38 digits in a cross-shard HAVING".into(),
                    )
                };
                let result = match op {
                    ArithOp::Add => x.checked_add(y),
                    ArithOp::Sub => x.checked_sub(y),
                    ArithOp::Mul => x.checked_mul(y),
                    ArithOp::Div => {
                        if y.is_zero() {
                            return Ok(Null);
                        }
                        decimal_div(x, y)
                    }
                };
                result.map(Dec).ok_or_else(too_wide)
            }
            _ => {
                let (x, y) = (to_double(a), to_double(b));
                let result = match op {
                    ArithOp::Add => x + y,
                    ArithOp::Sub => x - y,
                    ArithOp::Mul => x * y,
                    ArithOp::Div => {
                        if y == 0.0 {
                            return Ok(Null);
                        }
                        x / y
                    }
                };
                if result.is_finite() {
                    Ok(Double(result))
                } else {
                    Err(MergeError::OutOfRange(
                        "DOUBLE value is out of range".into(),
                    ))
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A merged column as the shards describe it.
    fn spec(ty: tessera_wire::ColumnType, decimals: u8) -> ColumnSpec {
        ColumnSpec {
            column_type: ty,
            decimals,
            ..ColumnSpec::varchar("x")
        }
    }

    #[test]
    fn computed_values_take_the_shown_type() {
        use tessera_wire::ColumnType::*;
        let kinds = vec![Ok(Kind::Decimal), Ok(Kind::Int { unsigned: false })];
        let specs = vec![spec(MYSQL_TYPE_NEWDECIMAL, 2), spec(MYSQL_TYPE_LONGLONG, 0)];
        let columns = columns_of(&specs, &kinds);
        let row = vec![Some(b"1.01".to_vec()), Some(b"3".to_vec())];
        let avg = Expr::Arith(
            ArithOp::Div,
            Box::new(Expr::Column(0)),
            Box::new(Expr::Column(1)),
        );
        let out = |e: &Expr, ty, decimals| {
            compute(e, &columns, &row, &spec(ty, decimals))
                .unwrap()
                .map(|v| String::from_utf8(v).unwrap())
        };
        // SUM 1.01 / COUNT 3: 0.336666666 inside, shown at scale 6.
        assert_eq!(
            out(&avg, MYSQL_TYPE_NEWDECIMAL, 6).as_deref(),
            Some("0.336667")
        );
        let times = Expr::Arith(ArithOp::Mul, Box::new(avg.clone()), lit("1000000"));
        assert_eq!(
            out(&times, MYSQL_TYPE_NEWDECIMAL, 6).as_deref(),
            Some("336666.666000")
        );
        let concat = Expr::Concat(vec![
            Expr::Str(b"n=".to_vec()),
            avg.clone(),
            Expr::Column(1),
        ]);
        assert_eq!(
            out(&concat, MYSQL_TYPE_VAR_STRING, 0).as_deref(),
            Some("n=0.3366673")
        );
        let with_null = Expr::Concat(vec![Expr::Str(b"n=".to_vec()), Expr::Literal(None)]);
        assert_eq!(out(&with_null, MYSQL_TYPE_VAR_STRING, 0), None);
        let plus = Expr::Arith(ArithOp::Add, Box::new(Expr::Column(1)), lit("1"));
        assert_eq!(out(&plus, MYSQL_TYPE_LONGLONG, 0).as_deref(), Some("4"));
        let neg = Expr::Neg(Box::new(Expr::Column(0)));
        assert_eq!(
            out(&neg, MYSQL_TYPE_NEWDECIMAL, 2).as_deref(),
            Some("-1.01")
        );
    }

    fn lit(text: &str) -> Box<Expr> {
        Box::new(Expr::Literal(Some(text.as_bytes().to_vec())))
    }

    fn eval_alone(expr: &Expr) -> Result<Val, MergeError> {
        eval(expr, &[], &[])
    }

    fn truth_of(expr: Expr) -> Option<bool> {
        truth(&eval_alone(&expr).unwrap()).unwrap()
    }

    #[test]
    fn three_valued_logic() {
        let null = || Box::new(Expr::Literal(None));
        let t = || lit("1");
        let f = || lit("0");
        assert_eq!(truth_of(Expr::And(null(), f())), Some(false));
        assert_eq!(truth_of(Expr::And(null(), t())), None);
        assert_eq!(truth_of(Expr::Or(null(), t())), Some(true));
        assert_eq!(truth_of(Expr::Or(null(), f())), None);
        assert_eq!(truth_of(Expr::Not(null())), None);
        assert_eq!(
            truth_of(Expr::Compare(CompareOp::NullSafeEq, null(), null())),
            Some(true)
        );
        assert_eq!(truth_of(Expr::Compare(CompareOp::Eq, null(), null())), None);
        assert_eq!(
            truth_of(Expr::InList(lit("1"), vec![Expr::Literal(None), *lit("2")])),
            None
        );
        assert_eq!(
            truth_of(Expr::InList(lit("1"), vec![Expr::Literal(None), *lit("1")])),
            Some(true)
        );
        assert_eq!(truth_of(Expr::Between(lit("2"), lit("1"), null())), None);
        assert_eq!(truth_of(Expr::Between(lit("5"), lit("1"), null())), None);
        assert_eq!(
            truth_of(Expr::Between(lit("0"), lit("1"), null())),
            Some(false)
        );
    }

    #[test]
    fn strings_against_numbers_compare_as_doubles() {
        let s = |t: &str| Box::new(Expr::Str(t.as_bytes().to_vec()));
        assert_eq!(
            truth_of(Expr::Compare(CompareOp::Eq, s("abc"), lit("0"))),
            Some(true)
        );
        assert_eq!(
            truth_of(Expr::Compare(CompareOp::Eq, s("3abc"), lit("3"))),
            Some(true)
        );
        assert_eq!(
            truth_of(Expr::Compare(CompareOp::Eq, s("5.0"), lit("5"))),
            Some(true)
        );
        assert_eq!(
            truth_of(Expr::Compare(CompareOp::Gt, lit("10"), s("9"))),
            Some(true)
        );
        assert!(eval_alone(&Expr::Compare(CompareOp::Gt, s("10"), s("9"))).is_err());
    }

    #[test]
    fn arithmetic_is_exact_and_division_adds_four_digits() {
        let div = |a: &str, b: &str| match eval_alone(&Expr::Arith(ArithOp::Div, lit(a), lit(b)))
            .unwrap()
        {
            Val::Dec(d) => d.to_string(),
            Val::Null => "NULL".into(),
            other => panic!("{other:?}"),
        };
        // The quotient keeps whole 9-digit words, truncated (shown rounded later).
        assert_eq!(div("2", "3"), "0.666666666");
        assert_eq!(div("2.00", "3"), "0.666666666");
        assert_eq!(div("1.00000", "6"), "0.166666666");
        assert_eq!(div("1.00000", "6.0"), "0.166666666666666666");
        assert_eq!(div("-1", "7"), "-0.142857142");
        assert_eq!(div("5", "0"), "NULL");
        match eval_alone(&Expr::Arith(ArithOp::Mul, lit("1.5"), lit("1.25"))).unwrap() {
            Val::Dec(d) => assert_eq!(d.to_string(), "1.875"),
            other => panic!("{other:?}"),
        }
        let overflow = Expr::Arith(ArithOp::Add, lit("9223372036854775807"), lit("1"));
        assert!(matches!(
            eval_alone(&overflow),
            Err(MergeError::OutOfRange(_))
        ));
        let rounded =
            |e: Expr, digits: i32| match eval_alone(&Expr::Round(Box::new(e), digits)).unwrap() {
                Val::Dec(d) => d.to_string(),
                Val::Int { value, .. } => value.to_string(),
                other => panic!("{other:?}"),
            };
        assert_eq!(
            rounded(Expr::Arith(ArithOp::Div, lit("1"), lit("3")), 6),
            "0.333333"
        );
        assert_eq!(rounded(*lit("123.456"), -1), "120");
        assert_eq!(rounded(*lit("-2.5"), 0), "-3");
        assert_eq!(rounded(*lit("1.2"), 4), "1.2000");
        assert_eq!(rounded(*lit("1250"), -2), "1300");
        assert_eq!(string_to_double(b"  -1.5e2xyz"), -150.0);
        assert_eq!(string_to_double(b"."), 0.0);
        assert_eq!(string_to_double(b"1e"), 1.0);
    }
}
