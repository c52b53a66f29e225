//! Small text tools of the planner: literal values (their MySQL unescaping
//! and re-quoting), prepared-statement parameter interpolation, source spans
//! to byte offsets, keyword prefixes.

use sqlparser::ast::{Expr, UnaryOperator, Value};
use sqlparser::tokenizer::Location;

/// A literal or parameter value, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    Null,
    Int(i64),
    UInt(u64),
    /// A number that is not an integer (kept as its text).
    Decimal(Vec<u8>),
    /// A string or binary value, unescaped.
    Bytes(Vec<u8>),
}

impl OwnedValue {
    /// The value as SQL text a server reads back as the same value.
    pub fn to_sql(&self) -> String {
        match self {
            OwnedValue::Null => "NULL".to_string(),
            OwnedValue::Int(i) => i.to_string(),
            OwnedValue::UInt(u) => u.to_string(),
            OwnedValue::Decimal(d) => String::from_utf8_lossy(d).into_owned(),
            OwnedValue::Bytes(b) => quote_bytes(b),
        }
    }
}

/// Quotes bytes as a string literal; bytes that are not UTF-8 go as hex,
/// which a server takes as the same bytes whatever the connection charset.
pub fn quote_bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => {
            let mut out = String::with_capacity(s.len() + 2);
            out.push('\'');
            for c in s.chars() {
                match c {
                    '\'' => out.push_str("''"),
                    '\\' => out.push_str("\\\\"),
                    '\0' => out.push_str("\\0"),
                    other => out.push(other),
                }
            }
            out.push('\'');
            out
        }
        Err(_) => {
            let mut out = String::with_capacity(b.len() * 2 + 3);
            out.push_str("X'");
            for byte in b {
                out.push_str(&format!("{byte:02X}"));
            }
            out.push('\'');
            out
        }
    }
}

/// The value of a literal expression (numbers, strings, NULL, a negated
/// number), or of a `?` parameter: Err(index) when it is one.
pub fn literal(expr: &Expr) -> Option<Result<OwnedValue, usize>> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(Ok(number(n, false))),
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                Some(Ok(OwnedValue::Bytes(unescape(s))))
            }
            Value::HexStringLiteral(h) => Some(Ok(OwnedValue::Bytes(hex(h)?))),
            Value::Null => Some(Ok(OwnedValue::Null)),
            Value::Boolean(b) => Some(Ok(OwnedValue::Int(*b as i64))),
            Value::Placeholder(p) => param_index(p).map(Err),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => Some(Ok(number(n, true))),
                _ => None,
            },
            _ => None,
        },
        Expr::Nested(inner) => literal(inner),
        _ => None,
    }
}

/// The parameter index a placeholder was renamed to (see `number_params`).
pub fn param_index(p: &str) -> Option<usize> {
    p.strip_prefix(PARAM_MARK)?
        .strip_suffix(PARAM_END)?
        .parse()
        .ok()
}

/// Placeholders are renamed to `PARAM_MARK n PARAM_END` so printed SQL keeps
/// their positions; no SQL text contains this sequence.
pub const PARAM_MARK: &str = "?\u{1}";
pub const PARAM_END: &str = "\u{1}";

fn number(text: &str, negative: bool) -> OwnedValue {
    let full = if negative {
        format!("-{text}")
    } else {
        text.to_string()
    };
    if let Ok(i) = full.parse::<i64>() {
        return OwnedValue::Int(i);
    }
    if let Ok(u) = full.parse::<u64>() {
        return OwnedValue::UInt(u);
    }
    OwnedValue::Decimal(full.into_bytes())
}

fn hex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
        .collect()
}

/// MySQL's string literal escapes, applied to a literal kept as written.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => {
                let c = b[i + 1];
                match c {
                    b'0' => out.push(0),
                    b'b' => out.push(8),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'Z' => out.push(26),
                    // \% and \_ keep their backslash outside LIKE patterns.
                    b'%' | b'_' => out.extend_from_slice(&[b'\\', c]),
                    other => out.push(other),
                }
                i += 2;
            }
            b'\'' if b.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            b'"' if b.get(i + 1) == Some(&b'"') => {
                out.push(b'"');
                i += 2;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

/// Replaces renamed placeholders in printed SQL by the parameters' values.
pub fn interpolate(sql: &str, params: &[OwnedValue]) -> Result<String, usize> {
    let mut out = String::with_capacity(sql.len() + params.len() * 8);
    let mut rest = sql;
    while let Some(at) = rest.find(PARAM_MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + PARAM_MARK.len()..];
        let end = after.find(PARAM_END).ok_or(usize::MAX)?;
        let index: usize = after[..end].parse().map_err(|_| usize::MAX)?;
        let value = params.get(index).ok_or(index)?;
        out.push_str(&value.to_sql());
        rest = &after[end + PARAM_END.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Byte offset of a 1-based line/column location (columns count chars).
pub fn offset_of(sql: &str, loc: Location) -> Option<usize> {
    if loc.line == 0 {
        return None;
    }
    let mut line = 1u64;
    let mut line_start = 0usize;
    if loc.line > 1 {
        for (i, c) in sql.char_indices() {
            if c == '\n' {
                line += 1;
                if line == loc.line {
                    line_start = i + 1;
                    break;
                }
            }
        }
        if line != loc.line {
            return None;
        }
    }
    let rest = &sql[line_start..];
    let col = (loc.column as usize).checked_sub(1)?;
    match rest.char_indices().nth(col) {
        Some((i, _)) => Some(line_start + i),
        None if rest.chars().count() == col => Some(sql.len()),
        None => None,
    }
}

/// The index of the quote closing the quoted text that opens at `open`
/// (doubled quotes and, outside backticks, backslash escapes skipped), or
/// the end of the text.
fn closing_quote(bytes: &[u8], open: usize) -> usize {
    let q = bytes[open];
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if bytes[i] == q {
            if bytes.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// The text of the expression starting at byte `start`: up to a comma,
/// closing parenthesis or clause keyword at its own nesting level.
pub fn expr_text(sql: &str, start: usize) -> &str {
    const ENDS: &[&str] = &[
        "from", "as", "where", "group", "order", "limit", "having", "union", "asc", "desc", "into",
        "for", "lock", "window", "on", "using", "join",
    ];
    let bytes = sql.as_bytes();
    let mut depth: i64 = 0;
    let mut i = start;
    let mut end = sql.len();
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' | b'"' | b'`' => i = closing_quote(bytes, i),
            b'(' => depth += 1,
            b')' if depth == 0 => {
                end = i;
                break;
            }
            b')' => depth -= 1,
            b',' | b';' if depth == 0 => {
                end = i;
                break;
            }
            c if depth == 0
                && c.is_ascii_alphabetic()
                && i > start
                && !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') =>
            {
                let word_end = bytes[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .map_or(bytes.len(), |n| i + n);
                let word = &sql[i..word_end];
                if ENDS.iter().any(|k| k.eq_ignore_ascii_case(word)) {
                    end = i;
                    break;
                }
                i = word_end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    sql[start..end.max(start)].trim_end()
}

/// The texts of a SELECT's list items, as written: the list starts at byte
/// `start` (just after SELECT) and its items are split at top-level commas
/// up to the first top-level clause keyword.
pub fn select_list_texts(sql: &str, start: usize) -> Vec<&str> {
    const MODIFIERS: &[&str] = &[
        "distinct",
        "all",
        "distinctrow",
        "high_priority",
        "straight_join",
        "sql_small_result",
        "sql_big_result",
        "sql_buffer_result",
        "sql_no_cache",
        "sql_cache",
        "sql_calc_found_rows",
    ];
    const CLAUSES: &[&str] = &[
        "from",
        "into",
        "where",
        "group",
        "having",
        "order",
        "limit",
        "union",
        "window",
        "for",
        "lock",
        "except",
        "intersect",
    ];
    let bytes = sql.as_bytes();
    let word_at = |i: usize| -> &str {
        let end = bytes[i..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .map_or(bytes.len(), |n| i + n);
        &sql[i..end]
    };
    let mut i = start;
    // Skip modifiers such as DISTINCT.
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let w = if i < bytes.len() { word_at(i) } else { "" };
        if !w.is_empty() && MODIFIERS.iter().any(|m| m.eq_ignore_ascii_case(w)) {
            i += w.len();
        } else {
            break;
        }
    }
    let mut items = Vec::new();
    let mut item_start = i;
    let mut depth: i64 = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' | b'"' | b'`' => i = closing_quote(bytes, i),
            b'(' => depth += 1,
            b')' if depth == 0 => break,
            b')' => depth -= 1,
            b',' if depth == 0 => {
                items.push(sql[item_start..i].trim());
                item_start = i + 1;
            }
            b';' if depth == 0 => break,
            c if depth == 0
                && c.is_ascii_alphabetic()
                && !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') =>
            {
                let w = word_at(i);
                if CLAUSES.iter().any(|k| k.eq_ignore_ascii_case(w)) {
                    break;
                }
                i += w.len();
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    items.push(sql[item_start..i.min(bytes.len())].trim());
    items
}

/// The text after leading whitespace and comments.
pub fn strip_leading_comments(sql: &str) -> &str {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("/*")
            && !rest.starts_with('!')
            && let Some(end) = rest.find("*/")
        {
            s = rest[end + 2..].trim_start();
        } else if let Some(rest) = s.strip_prefix("-- ").or_else(|| s.strip_prefix('#')) {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else {
            return s;
        }
    }
}

/// The text after a leading keyword (case-insensitive, then whitespace).
pub fn strip_keyword<'a>(s: &'a str, keyword: &str) -> Option<&'a str> {
    let head = s.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = &s[keyword.len()..];
    match rest.chars().next() {
        None => Some(rest),
        Some(c) if c.is_whitespace() => Some(rest.trim_start()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_and_quote_round_trip() {
        assert_eq!(
            unescape(r"it''s a\'b c\\d \n"),
            b"it's a'b c\\d \n".to_vec()
        );
        assert_eq!(quote_bytes(b"it's a\\b"), r"'it''s a\\b'");
        assert_eq!(quote_bytes(&[0xff, 0x00]), "X'FF00'");
    }

    #[test]
    fn interpolation_replaces_marks_in_order() {
        let sql = format!(
            "SELECT * FROM t WHERE a = {PARAM_MARK}1{PARAM_END} AND b = {PARAM_MARK}0{PARAM_END}"
        );
        let out = interpolate(
            &sql,
            &[OwnedValue::Bytes(b"x'y".to_vec()), OwnedValue::Int(-4)],
        )
        .unwrap();
        assert_eq!(out, "SELECT * FROM t WHERE a = -4 AND b = 'x''y'");
        assert_eq!(interpolate(&sql, &[OwnedValue::Null]), Err(1));
    }

    #[test]
    fn offsets_count_characters() {
        let sql = "SELECT 'é',\n  x";
        assert_eq!(offset_of(sql, Location { line: 1, column: 8 }), Some(7));
        assert_eq!(offset_of(sql, Location { line: 2, column: 3 }), Some(15));
    }

    #[test]
    fn expression_text_ends_at_its_level() {
        let sql = "SELECT avg(price), count(*) AS n, 'a,b' x, (1) FROM t ORDER BY y DESC";
        assert_eq!(expr_text(sql, 7), "avg(price)");
        assert_eq!(expr_text(sql, 19), "count(*)");
        assert_eq!(expr_text(sql, 34), "'a,b' x");
        assert_eq!(expr_text(sql, 43), "(1)");
        assert_eq!(expr_text(sql, 63), "y");
    }

    #[test]
    fn select_list_items_as_written() {
        let sql = "SELECT DISTINCT -score, avg( x ) a, 'a,b', f(1, 2) FROM t WHERE x";
        assert_eq!(
            select_list_texts(sql, 6),
            vec!["-score", "avg( x ) a", "'a,b'", "f(1, 2)"]
        );
    }

    #[test]
    fn keyword_prefixes() {
        assert_eq!(strip_keyword("VEXPLAIN plan x", "vexplain"), Some("plan x"));
        assert_eq!(strip_keyword("vexplainx", "vexplain"), None);
        assert_eq!(strip_leading_comments("/* a */ -- b\n select"), "select");
    }
}

/// Reusable buffers of [`normalize_into`]: a session keeps one, so that
/// after its first statements normalising allocates nothing (a string
/// literal's unescaped value aside).
#[derive(Debug, Default)]
pub struct Normalized {
    /// The statement's shape: its text with `?` for each literal taken out
    /// (the plan caches' key).
    pub shape: String,
    /// The literals' values, in text order.
    pub values: Vec<OwnedValue>,
    tokens: Vec<tessera_sql::lexer::Token>,
    /// Per parenthesis depth: which kept clause the lexer is in.
    keep: Vec<u8>,
}

impl Normalized {
    /// Drops what a large statement made the buffers grow to (and the last
    /// values), so an idle session keeps a few KiB at most.
    pub fn shrink(&mut self) {
        const TEXT: usize = 16 * 1024;
        if self.shape.capacity() > TEXT {
            self.shape = String::new();
        }
        if self.tokens.capacity() > TEXT / 8 {
            self.tokens = Vec::new();
        }
        if self.values.capacity() > 256 {
            self.values = Vec::new();
        }
        self.values.clear();
        if self.keep.capacity() > 256 {
            self.keep = Vec::new();
        }
    }
}

/// A text statement with its literals taken out: the text with `?` in
/// their place (the plan cache's key) and their values in order. Literals
/// that decide a plan's shape stay in the text: the select list (its text
/// names the columns), ORDER BY / GROUP BY (positions), LIMIT / OFFSET (the
/// limit pushed to the shards), and strings with an introducer or numbers
/// that are not plain decimals. None when there is nothing to take out.
pub fn normalize(sql: &str) -> Option<(String, Vec<OwnedValue>)> {
    let mut out = Normalized::default();
    if normalize_into(sql, &mut out) {
        Some((out.shape, out.values))
    } else {
        None
    }
}

/// [`normalize`] into reused buffers: `out.shape` and `out.values` hold the
/// answer when this returns true (false: nothing to take out).
pub fn normalize_into(sql: &str, out: &mut Normalized) -> bool {
    use tessera_sql::lexer::{Lexer, TokenKind};
    out.shape.clear();
    out.values.clear();
    if sql.contains('?') {
        return false;
    }
    let Normalized {
        shape,
        values,
        tokens,
        keep,
    } = out;
    tokens.clear();
    tokens.extend(Lexer::new(sql));
    let tokens = &tokens[..];
    let word = |i: usize, w: &str| {
        tokens
            .get(i)
            .is_some_and(|t| t.kind == TokenKind::Word && t.text(sql).eq_ignore_ascii_case(w))
    };
    let mut copied = 0;
    let mut depth: usize = 0;
    // Per parenthesis depth: inside a select list, a BY list, a LIMIT.
    keep.clear();
    keep.push(0);
    const SELECT_LIST: u8 = 1;
    const BY_LIST: u8 = 2;
    const LIMIT: u8 = 4;
    /// Words that end a kept clause.
    const CLAUSE_ENDS: &[&str] = &[
        "FROM", "WHERE", "HAVING", "WINDOW", "UNION", "FOR", "LOCK", "INTO", "SET", "VALUES",
        "VALUE", "ON", "USING",
    ];
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        match t.kind {
            TokenKind::Punct(b'(') => {
                depth += 1;
                // A parenthesis inside a kept clause keeps its content too.
                let inherited = keep[depth - 1];
                if keep.len() <= depth {
                    keep.push(inherited);
                } else {
                    keep[depth] = inherited;
                }
            }
            TokenKind::Punct(b')') => depth = depth.saturating_sub(1),
            TokenKind::Punct(b';') => keep[depth] = 0,
            TokenKind::Word => {
                let text = t.text(sql);
                let is = |k: &str| text.eq_ignore_ascii_case(k);
                if is("SELECT") {
                    keep[depth] = SELECT_LIST;
                } else if is("BY") && i > 0 && (word(i - 1, "ORDER") || word(i - 1, "GROUP")) {
                    keep[depth] = BY_LIST;
                } else if is("LIMIT") {
                    keep[depth] = LIMIT;
                } else if is("OFFSET") && keep[depth] == LIMIT {
                } else if CLAUSE_ENDS.iter().any(|k| is(k)) {
                    keep[depth] = 0;
                } else if text.as_bytes()[0].is_ascii_digit() {
                    let plain = text.bytes().all(|b| b.is_ascii_digit());
                    let after_dot = i > 0
                        && tokens[i - 1].kind == TokenKind::Punct(b'.')
                        && tokens[i - 1].end == t.start;
                    if keep[depth] == 0 && plain && !after_dot {
                        // A decimal: digits '.' digits, written together.
                        let mut end = t.end;
                        let mut next = i + 1;
                        if let (Some(dot), Some(frac)) = (tokens.get(i + 1), tokens.get(i + 2))
                            && dot.kind == TokenKind::Punct(b'.')
                            && dot.start == t.end
                            && frac.kind == TokenKind::Word
                            && frac.start == dot.end
                        {
                            if !frac.text(sql).bytes().all(|b| b.is_ascii_digit()) {
                                i += 1;
                                continue;
                            }
                            end = frac.end;
                            next = i + 3;
                        }
                        // A unary minus goes with its number, so that
                        // `id = -5` and `IN (-1, 2)` still route by value:
                        // a minus right after an operator or an opening
                        // parenthesis or comma cannot be a subtraction.
                        let mut start = t.start;
                        if i >= 2
                            && tokens[i - 1].kind == TokenKind::Punct(b'-')
                            && matches!(
                                tokens[i - 2].kind,
                                TokenKind::Punct(
                                    b'=' | b'<'
                                        | b'>'
                                        | b'('
                                        | b','
                                        | b'+'
                                        | b'-'
                                        | b'*'
                                        | b'/'
                                        | b'%'
                                )
                            )
                        {
                            start = tokens[i - 1].start;
                        }
                        let negative = start != t.start;
                        shape.push_str(&sql[copied..start]);
                        shape.push('?');
                        copied = end;
                        values.push(number_value(&sql[t.start..end], negative));
                        i = next;
                        continue;
                    }
                } else if keep[depth] == LIMIT {
                    keep[depth] = 0;
                }
            }
            TokenKind::String if keep[depth] == 0 && sql.as_bytes()[t.start] == b'\'' => {
                let introduced =
                    i > 0 && tokens[i - 1].kind == TokenKind::Word && tokens[i - 1].end == t.start;
                if !introduced && t.end > t.start + 1 && sql.as_bytes()[t.end - 1] == b'\'' {
                    shape.push_str(&sql[copied..t.start]);
                    shape.push('?');
                    copied = t.end;
                    values.push(OwnedValue::Bytes(unescape(&sql[t.start + 1..t.end - 1])));
                }
            }
            _ => {}
        }
        i += 1;
    }
    if values.is_empty() {
        shape.clear();
        return false;
    }
    shape.push_str(&sql[copied..]);
    true
}

/// The value of a number literal taken out by `normalize`: `digits` are
/// decimal digits, maybe with a fraction; `negative` when a unary minus
/// went with them. An integer that fits i64 (or else u64) is one, anything
/// else keeps its text — the same answers as parsing the text with its
/// minus, without building that text.
fn number_value(digits: &str, negative: bool) -> OwnedValue {
    if let Ok(n) = digits.parse::<u64>() {
        if !negative {
            return match i64::try_from(n) {
                Ok(i) => OwnedValue::Int(i),
                Err(_) => OwnedValue::UInt(n),
            };
        }
        if n <= 1 << 63 {
            // 2^63 wraps to i64::MIN, which is its negation.
            return OwnedValue::Int((n as i64).wrapping_neg());
        }
    }
    let mut text = Vec::with_capacity(digits.len() + 1);
    if negative {
        text.push(b'-');
    }
    text.extend_from_slice(digits.as_bytes());
    OwnedValue::Decimal(text)
}

#[cfg(test)]
mod normalize_tests {
    use super::*;

    #[test]
    fn literals_become_parameters_where_they_do_not_shape_the_plan() {
        let (text, values) = normalize(
            "SELECT a, 'x' FROM t WHERE id = 42 AND name = 'it''s' AND p > 1.50 ORDER BY 2 LIMIT 10",
        )
        .unwrap();
        assert_eq!(
            text,
            "SELECT a, 'x' FROM t WHERE id = ? AND name = ? AND p > ? ORDER BY 2 LIMIT 10"
        );
        assert_eq!(
            values,
            vec![
                OwnedValue::Int(42),
                OwnedValue::Bytes(b"it's".to_vec()),
                OwnedValue::Decimal(b"1.50".to_vec())
            ]
        );
        let (text, _) =
            normalize("INSERT INTO t (a, b) VALUES (1, 'x'), (-2, _utf8mb4'y')").unwrap();
        assert_eq!(text, "INSERT INTO t (a, b) VALUES (?, ?), (?, _utf8mb4'y')");
        let (text, _) = normalize(
            "SELECT * FROM t WHERE t1.c2 = 3 AND x IN (SELECT y FROM u WHERE z = 4) GROUP BY 1",
        )
        .unwrap();
        assert_eq!(
            text,
            "SELECT * FROM t WHERE t1.c2 = ? AND x IN (SELECT y FROM u WHERE z = ?) GROUP BY 1"
        );
        let (text, values) = normalize(
            "SELECT a-1 FROM t WHERE id = -5 AND x IN (-1, 2) AND y = b - -2.5 AND z = c-3",
        )
        .unwrap();
        assert_eq!(
            text,
            "SELECT a-1 FROM t WHERE id = ? AND x IN (?, ?) AND y = b - ? AND z = c-?"
        );
        assert_eq!(
            values,
            vec![
                OwnedValue::Int(-5),
                OwnedValue::Int(-1),
                OwnedValue::Int(2),
                OwnedValue::Decimal(b"-2.5".to_vec()),
                OwnedValue::Int(3)
            ]
        );
        let (_, values) = normalize("SELECT * FROM t WHERE id = -9223372036854775808").unwrap();
        assert_eq!(values, vec![OwnedValue::Int(i64::MIN)]);
        assert_eq!(normalize("SELECT 1"), None);
        assert_eq!(normalize("SELECT * FROM t WHERE a = 0x1F"), None);
    }

    #[test]
    fn numbers_keep_the_values_their_text_has() {
        let cases: &[(&str, bool, OwnedValue)] = &[
            ("0", true, OwnedValue::Int(0)),
            ("007", false, OwnedValue::Int(7)),
            ("9223372036854775807", false, OwnedValue::Int(i64::MAX)),
            ("9223372036854775808", false, OwnedValue::UInt(1 << 63)),
            ("9223372036854775808", true, OwnedValue::Int(i64::MIN)),
            (
                "9223372036854775809",
                true,
                OwnedValue::Decimal(b"-9223372036854775809".to_vec()),
            ),
            ("18446744073709551615", false, OwnedValue::UInt(u64::MAX)),
            (
                "18446744073709551616",
                false,
                OwnedValue::Decimal(b"18446744073709551616".to_vec()),
            ),
            ("1.50", true, OwnedValue::Decimal(b"-1.50".to_vec())),
        ];
        for (digits, negative, expected) in cases {
            assert_eq!(
                &number_value(digits, *negative),
                expected,
                "{digits} {negative}"
            );
            // The same as the literal's text parsed whole.
            let text = if *negative {
                format!("-{digits}")
            } else {
                digits.to_string()
            };
            let parsed = text
                .parse::<i64>()
                .map(OwnedValue::Int)
                .or_else(|_| text.parse::<u64>().map(OwnedValue::UInt))
                .unwrap_or_else(|_| OwnedValue::Decimal(text.clone().into_bytes()));
            assert_eq!(&parsed, expected, "{text}");
        }
    }

    #[test]
    fn reused_buffers_give_what_fresh_ones_give() {
        let statements = [
            "SELECT c FROM sbtest1 WHERE id=5017",
            "SELECT a, 'x' FROM t WHERE name = 'it''s' AND (b IN (1, -2)) ORDER BY 2 LIMIT 10",
            "SELECT 1",
            "SELECT c FROM sbtest1 WHERE id=-3",
            "UPDATE t SET a = 'long string value here' WHERE id = 9 AND ((x = 1.5))",
            "SELECT * FROM t WHERE a = ?",
            "INSERT INTO t (a, b) VALUES (1, 'x'), (-2, _utf8mb4'y')",
        ];
        let mut reused = Normalized::default();
        for sql in statements.iter().chain(statements.iter().rev()) {
            let fresh = normalize(sql);
            let got = normalize_into(sql, &mut reused)
                .then(|| (reused.shape.clone(), reused.values.clone()));
            assert_eq!(got, fresh, "{sql}");
        }
    }
}
