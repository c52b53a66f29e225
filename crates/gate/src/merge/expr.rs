//! Evaluation of HAVING (and later gate-side filter) expressions over merged rows, with
//! MariaDB's three-valued logic, its type rules for comparisons (int, exact decimal,
//! double; a string against a number compares as doubles) and exact decimal arithmetic.

use std::cmp::Ordering;

use super::collation::{self, Collation, Encoding};
use super::decimal::{Decimal, MAX_SCALE};
use super::value::{self, Kind};
use super::{ArithOp, CompareOp, Expr, MergeError};

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
                        x.checked_div(y, (x.scale + DIV_PRECISION_INCREMENT).min(MAX_SCALE))
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
        assert_eq!(div("2", "3"), "0.6667");
        assert_eq!(div("2.00", "3"), "0.666667");
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
        assert_eq!(string_to_double(b"  -1.5e2xyz"), -150.0);
        assert_eq!(string_to_double(b"."), 0.0);
        assert_eq!(string_to_double(b"1e"), 1.0);
    }
}
