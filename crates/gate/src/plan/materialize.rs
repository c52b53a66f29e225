//! Queries the shards cannot answer in parts, answered over rows the gate
//! gathers first: a derived table whose rows on one shard need other
//! shards' rows (`FROM (SELECT … LIMIT 5) AS t`, `FROM (SELECT city,
//! COUNT(*) … GROUP BY city) AS d WHERE d.n > 3`), and a query over one
//! sharded table whose select list the gate's merge cannot compute
//! (`IFNULL(SUM(x), 0)`, `COUNT(*) DIV 2`, `DISTINCT LOWER(city)`).
//!
//! The gathered rows are written into the rest of the query as a table of
//! literals and that query runs whole on one shard, so MariaDB itself
//! evaluates everything the gate would otherwise have to re-implement. The
//! table keeps the gathered columns' types, collations and names: it is
//! `(SELECT * FROM (<gathering query>) LIMIT 0) UNION ALL VALUES (…), …`,
//! whose first part (reading no row) gives each column its definition, which
//! the literals take on (a string literal is coercible, the column's
//! collation is implicit, so the column's wins). Vitess evaluates such
//! queries in vtgate's memory with a row limit; this keeps one as well.

use std::sync::Arc;

use sqlparser::ast::{Ident, ObjectName, Query, SetExpr, TableAlias, TableFactor};
use tessera_wire::{ColumnSpec, ColumnType};

use super::{PlanError, PlanResult};
use crate::merge::Rows;

/// Where the gathered rows go in `MaterializePlan::outer`.
pub const ROWS_MARK: &str = "\u{4}rows\u{4}";
/// More gathered rows than this are refused (Vitess's vtgate has the same
/// kind of limit, `max_memory_rows`).
pub const MAX_ROWS: usize = 100_000;
/// The table of literals may not be longer than this (the shard's
/// `max_allowed_packet` is 16 MB by default).
pub const MAX_TEXT: usize = 8 << 20;

const ENUM_FLAG: u16 = 256;
const SET_FLAG: u16 = 2048;
const BINARY_CHARSET: u16 = 63;

#[derive(Debug, Clone)]
pub struct MaterializePlan {
    pub keyspace: Arc<str>,
    /// The query whose rows the gate gathers (planned and run on its own).
    pub inner: String,
    /// The rest of the query, with `ROWS_MARK` where the rows go; run on
    /// one shard.
    pub outer: String,
    pub note: &'static str,
}

/// A table factor that stands for the gathered rows under `alias`.
fn rows_factor(alias: &str) -> TableFactor {
    TableFactor::Table {
        name: ObjectName::from(vec![Ident::new(ROWS_MARK)]),
        alias: Some(TableAlias {
            explicit: true,
            name: Ident::with_quote('`', alias),
            columns: vec![],
            at: None,
        }),
        args: None,
        with_hints: vec![],
        version: None,
        with_ordinality: false,
        partitions: vec![],
        json_path: None,
        sample: None,
        index_hints: vec![],
    }
}

/// `query` with the FROM factor `pick` chooses replaced by the gathered
/// rows named `alias`. None when no factor was chosen.
fn replace_factor(
    query: &Query,
    alias: &str,
    pick: impl Fn(&TableFactor) -> bool,
) -> Option<Query> {
    let mut outer = query.clone();
    let SetExpr::Select(select) = outer.body.as_mut() else {
        return None;
    };
    let factors = select.from.iter_mut().flat_map(|t| {
        std::iter::once(&mut t.relation).chain(t.joins.iter_mut().map(|j| &mut j.relation))
    });
    for factor in factors {
        if pick(factor) {
            *factor = rows_factor(alias);
            return Some(outer);
        }
    }
    None
}

/// The plan for `query` whose FROM has the derived table `inner` (named
/// `alias`), chosen by `pick`, whose rows the gate gathers.
pub(super) fn over_derived(
    keyspace: &Arc<str>,
    query: &Query,
    inner: &Query,
    alias: &str,
    pick: impl Fn(&TableFactor) -> bool,
) -> Option<MaterializePlan> {
    let outer = replace_factor(query, alias, pick)?;
    Some(MaterializePlan {
        keyspace: keyspace.clone(),
        inner: inner.to_string(),
        outer: outer.to_string(),
        note: "derived table gathered by the gate, the rest of the query run over its rows",
    })
}

/// The plan for `query`, whose FROM is the one sharded table `factor`
/// (referred to as `refname`): the gate gathers the rows its WHERE keeps
/// and the query runs over them without its WHERE.
pub(super) fn over_table(
    keyspace: &Arc<str>,
    query: &Query,
    factor: &TableFactor,
    refname: &str,
) -> Option<MaterializePlan> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let inner = match &select.selection {
        Some(w) => format!("SELECT * FROM {factor} WHERE {w}"),
        None => format!("SELECT * FROM {factor}"),
    };
    let mut outer = replace_factor(query, refname, |f| std::ptr::eq(f, factor))
        .or_else(|| replace_factor(query, refname, |f| f == factor))?;
    if let SetExpr::Select(s) = outer.body.as_mut() {
        s.selection = None;
    }
    Some(MaterializePlan {
        keyspace: keyspace.clone(),
        inner,
        outer: outer.to_string(),
        note: "rows gathered by the gate, the select list computed over them on one shard",
    })
}

fn refuse(what: String) -> PlanError {
    PlanError::unsupported(what)
}

/// The gathered `rows` of `inner_sql` as a derived-table body (without the
/// alias): a table of literals with the columns' definitions.
pub fn rows_as_table(inner_sql: &str, rows: &Rows) -> PlanResult<String> {
    if rows.rows.len() > MAX_ROWS {
        return Err(refuse(format!(
            "a query whose rows the gate gathers, over {MAX_ROWS} rows"
        )));
    }
    for c in &rows.columns {
        if let Some(why) = unsupported_column(c) {
            return Err(refuse(format!(
                "a query whose rows the gate gathers, with column '{}' of type {why}",
                c.name
            )));
        }
    }
    let mut out = String::with_capacity(inner_sql.len() + 64 + rows.rows.len() * 16);
    out.push_str("((SELECT * FROM (");
    out.push_str(inner_sql);
    out.push_str(") AS `_tessera_shape` LIMIT 0)");
    for (i, row) in rows.rows.iter().enumerate() {
        out.push_str(if i == 0 { " UNION ALL VALUES (" } else { ", (" });
        for (j, (value, column)) in row.iter().zip(&rows.columns).enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            push_literal(&mut out, value.as_deref(), column);
        }
        out.push(')');
        if out.len() > MAX_TEXT {
            return Err(refuse(format!(
                "a query whose rows the gate gathers, over {} MB of them",
                MAX_TEXT >> 20
            )));
        }
    }
    out.push(')');
    Ok(out)
}

/// Why a column's values cannot be written as literals of its type.
fn unsupported_column(c: &ColumnSpec) -> Option<&'static str> {
    use ColumnType::*;
    if c.flags & ENUM_FLAG != 0 {
        return Some("ENUM");
    }
    if c.flags & SET_FLAG != 0 {
        return Some("SET");
    }
    match c.column_type {
        MYSQL_TYPE_ENUM => Some("ENUM"),
        MYSQL_TYPE_SET => Some("SET"),
        MYSQL_TYPE_BIT => Some("BIT"),
        MYSQL_TYPE_GEOMETRY => Some("GEOMETRY"),
        _ => None,
    }
}

/// One text-protocol value as a literal the column's type takes in a UNION
/// with the column itself.
fn push_literal(out: &mut String, value: Option<&[u8]>, column: &ColumnSpec) {
    use ColumnType::*;
    let Some(value) = value else {
        out.push_str("NULL");
        return;
    };
    let text = std::str::from_utf8(value).ok();
    match (column.column_type, text) {
        (
            MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_YEAR
            | MYSQL_TYPE_DECIMAL
            | MYSQL_TYPE_NEWDECIMAL,
            Some(t),
        ) if is_number(t) => out.push_str(t),
        // A plain decimal literal would make the column DOUBLE or DECIMAL.
        (MYSQL_TYPE_FLOAT, Some(t)) if is_number(t) => {
            out.push_str("CAST(");
            out.push_str(t);
            out.push_str("e0 AS FLOAT)");
        }
        (MYSQL_TYPE_DOUBLE, Some(t)) if is_number(t) => {
            out.push_str(t);
            if !t.contains(['e', 'E']) {
                out.push_str("e0");
            }
        }
        // A quoted date would turn the column into a string; a zero date
        // has no literal and stays a string.
        (MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE, Some(t)) if !t.starts_with("0000") => {
            push_typed(out, "DATE", t)
        }
        (
            MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP2,
            Some(t),
        ) if !t.starts_with("0000") => push_typed(out, "TIMESTAMP", t),
        (MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2, Some(t)) => push_typed(out, "TIME", t),
        _ if column.charset == BINARY_CHARSET => {
            out.push_str("X'");
            for b in value {
                out.push_str(&format!("{b:02X}"));
            }
            out.push('\'');
        }
        _ => out.push_str(&super::text::quote_bytes(value)),
    }
}

fn push_typed(out: &mut String, keyword: &str, text: &str) {
    out.push_str(keyword);
    out.push_str(&super::text::quote_bytes(text.as_bytes()));
}

/// Whether a value is a plain number (what the text protocol sends for a
/// numeric column), safe to write unquoted.
fn is_number(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, ty: ColumnType, charset: u16, flags: u16) -> ColumnSpec {
        ColumnSpec {
            name: name.to_string(),
            column_type: ty,
            charset,
            length: 0,
            flags,
            decimals: 0,
            schema: String::new(),
            table: String::new(),
        }
    }

    #[test]
    fn literals_keep_their_columns_types() {
        use ColumnType::*;
        let rows = Rows {
            columns: vec![
                column("n", MYSQL_TYPE_LONGLONG, 63, 0),
                column("s", MYSQL_TYPE_VAR_STRING, 45, 0),
                column("f", MYSQL_TYPE_FLOAT, 63, 0),
                column("x", MYSQL_TYPE_DOUBLE, 63, 0),
                column("d", MYSQL_TYPE_DATE, 63, 0),
                column("b", MYSQL_TYPE_BLOB, 63, 0),
            ],
            rows: vec![
                vec![
                    Some(b"-3".to_vec()),
                    Some(b"it's \\".to_vec()),
                    Some(b"1.1".to_vec()),
                    Some(b"1e300".to_vec()),
                    Some(b"2020-01-02".to_vec()),
                    Some(vec![0, 255]),
                ],
                vec![None, None, None, Some(b"2.5".to_vec()), None, None],
            ],
        };
        assert_eq!(
            rows_as_table("SELECT 1", &rows).unwrap(),
            "((SELECT * FROM (SELECT 1) AS `_tessera_shape` LIMIT 0) UNION ALL VALUES \
             (-3, 'it''s \\\\', CAST(1.1e0 AS FLOAT), 1e300, DATE'2020-01-02', X'00FF'), \
             (NULL, NULL, NULL, 2.5e0, NULL, NULL))"
        );
        let empty = Rows {
            columns: rows.columns.clone(),
            rows: vec![],
        };
        assert_eq!(
            rows_as_table("SELECT 1", &empty).unwrap(),
            "((SELECT * FROM (SELECT 1) AS `_tessera_shape` LIMIT 0))"
        );
    }

    #[test]
    fn columns_without_literals_and_too_many_rows_are_refused() {
        let rows = Rows {
            columns: vec![column("e", ColumnType::MYSQL_TYPE_STRING, 45, ENUM_FLAG)],
            rows: vec![],
        };
        let e = rows_as_table("SELECT e FROM t", &rows).unwrap_err();
        assert_eq!(e.code, 1235);
        assert!(e.message.contains("'e' of type ENUM"), "{}", e.message);
        let many = Rows {
            columns: vec![column("n", ColumnType::MYSQL_TYPE_LONG, 63, 0)],
            rows: vec![vec![Some(b"1".to_vec())]; MAX_ROWS + 1],
        };
        let e = rows_as_table("SELECT n FROM t", &many).unwrap_err();
        assert!(e.message.contains("over 100000 rows"), "{}", e.message);
    }
}
