//! Queries the shards cannot answer in parts, answered over rows the gate
//! gathers first: a derived table whose rows on one shard need other
//! shards' rows (`FROM (SELECT … LIMIT 5) AS t`, `FROM (SELECT city,
//! COUNT(*) … GROUP BY city) AS d WHERE d.n > 3`); a query whose select
//! list the gate's merge cannot compute (`IFNULL(SUM(x), 0)`, `COUNT(*) DIV
//! 2`, `DISTINCT LOWER(city)`, window functions); a join the gate's nested
//! loop cannot answer (expressions over both tables, outer joins of other
//! shapes); a UNION, INTERSECT or EXCEPT the merge cannot do (reference and
//! sharded branches, aggregates in branches).
//!
//! The gathered rows are written into the rest of the query as a table of
//! literals and that query runs whole on one shard, so MariaDB itself
//! evaluates everything the gate would otherwise have to re-implement. The
//! table keeps the gathered columns' types, collations and names: it is
//! `(SELECT * FROM (<gathering query>) LIMIT 0) UNION ALL VALUES (…), …`,
//! whose first part (reading no row) gives each column its definition, which
//! the literals take on (a string literal is coercible, the column's
//! collation is implicit, so the column's wins). Vitess evaluates such
//! queries in vtgate's memory with a row limit (`max_memory_rows`); this
//! keeps the same limit on the rows gathered.
//!
//! Why not evaluate in the gate: each construct would need MariaDB's exact
//! semantics re-implemented (types, collations, NULLs, rounding), and a
//! near miss is a wrong answer; the shard computes them as one server
//! would, which is what the differential tests compare against.

use std::sync::Arc;

use sqlparser::ast::{Ident, ObjectName, Query, SetExpr, TableAlias, TableFactor};
use tessera_wire::{ColumnSpec, ColumnType};

use super::{PlanError, PlanResult};
use crate::merge::{Rows, is_decimal, is_integer};

/// The tables of literals may not be longer than this in all (the shard's
/// `max_allowed_packet` is 16 MB by default).
pub const MAX_TEXT: usize = 8 << 20;

const ENUM_FLAG: u16 = 256;
const SET_FLAG: u16 = 2048;
const BINARY_CHARSET: u16 = 63;

#[derive(Debug, Clone)]
pub struct MaterializePlan {
    pub keyspace: Arc<str>,
    /// The queries whose rows the gate gathers (each planned and run on
    /// its own); the i-th one's rows go where `rows_mark(i)` is in `outer`.
    pub gathered: Vec<Gathered>,
    /// The rest of the query, run on one shard.
    pub outer: String,
    /// The name of each column of the answer that must be renamed (by
    /// position; empty: none).
    pub names: Vec<Option<ItemName>>,
    pub note: &'static str,
}

/// The name of a select item that is an expression: its text as written,
/// with the `?` of the parameters numbered from `first_param` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemName {
    pub text: String,
    pub first_param: usize,
}

impl ItemName {
    /// The column's name: as written for a prepared statement (MariaDB
    /// shows its `?`), with the values in place for a text statement whose
    /// literals the gate made parameters.
    pub fn resolve(&self, params: &[super::OwnedValue], prepared: bool) -> String {
        if prepared || !self.text.contains('?') {
            return self.text.clone();
        }
        let mut out = String::with_capacity(self.text.len() + 8);
        let mut next = self.first_param;
        for c in self.text.chars() {
            match (c, params.get(next)) {
                ('?', Some(value)) => {
                    out.push_str(&value.to_sql());
                    next += 1;
                }
                _ => out.push(c),
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    pub sql: String,
    /// `sql` reads rows of one table (no ORDER BY, LIMIT or aggregate), so
    /// a LIMIT may be added to stop each shard past the gate's row limit
    /// rather than hold every row before refusing.
    pub table_rows: bool,
}

impl Gathered {
    pub(super) fn query(sql: String) -> Gathered {
        Gathered {
            sql,
            table_rows: false,
        }
    }

    pub(super) fn table_rows(sql: String) -> Gathered {
        Gathered {
            sql,
            table_rows: true,
        }
    }
}

/// Where the i-th gathered rows go in `MaterializePlan::outer`.
pub fn rows_mark(i: usize) -> String {
    format!("\u{4}rows{i}\u{4}")
}

/// A table factor that stands for the i-th gathered rows under `alias`.
pub(super) fn rows_factor(i: usize, alias: &str) -> TableFactor {
    TableFactor::Table {
        name: ObjectName::from(vec![Ident::new(rows_mark(i))]),
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

/// `query` with each FROM factor (nested joins included) for which
/// `gather` gives (the query gathering its rows, the name it is referred
/// to by) replaced by those rows; and the gathering queries in order.
pub(super) fn replace_factors(
    query: &Query,
    mut gather: impl FnMut(&TableFactor) -> Option<(Gathered, String)>,
) -> (Query, Vec<Gathered>) {
    fn visit(
        factor: &mut TableFactor,
        gathered: &mut Vec<Gathered>,
        gather: &mut dyn FnMut(&TableFactor) -> Option<(Gathered, String)>,
    ) {
        if let TableFactor::NestedJoin {
            table_with_joins, ..
        } = factor
        {
            visit(&mut table_with_joins.relation, gathered, gather);
            for j in &mut table_with_joins.joins {
                visit(&mut j.relation, gathered, gather);
            }
            return;
        }
        if let Some((sql, alias)) = gather(factor) {
            *factor = rows_factor(gathered.len(), &alias);
            gathered.push(sql);
        }
    }
    let mut outer = query.clone();
    let mut gathered = Vec::new();
    if let SetExpr::Select(select) = outer.body.as_mut() {
        for twj in &mut select.from {
            visit(&mut twj.relation, &mut gathered, &mut gather);
            for j in &mut twj.joins {
                visit(&mut j.relation, &mut gathered, &mut gather);
            }
        }
    }
    (outer, gathered)
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
    let mut found = false;
    let (outer, gathered) = replace_factors(query, |f| {
        (!found && pick(f)).then(|| {
            found = true;
            (Gathered::query(inner.to_string()), alias.to_string())
        })
    });
    (!gathered.is_empty()).then(|| MaterializePlan {
        keyspace: keyspace.clone(),
        gathered,
        outer: outer.to_string(),
        names: Vec::new(),
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
    let mut inner = Some(inner);
    let (mut outer, gathered) = replace_factors(query, |f| {
        if f == factor {
            inner
                .take()
                .map(|sql| (Gathered::table_rows(sql), refname.to_string()))
        } else {
            None
        }
    });
    if gathered.is_empty() {
        return None;
    }
    if let SetExpr::Select(s) = outer.body.as_mut() {
        s.selection = None;
    }
    Some(MaterializePlan {
        keyspace: keyspace.clone(),
        gathered,
        outer: outer.to_string(),
        names: Vec::new(),
        note: "rows gathered by the gate, the select list computed over them on one shard",
    })
}

/// The plan for a UNION (INTERSECT, EXCEPT) the shards cannot run in
/// parts: each branch's rows gathered, the set operation (with its ORDER
/// BY and LIMIT) run over them on one shard.
pub(super) fn over_union(keyspace: &Arc<str>, query: &Query) -> Option<MaterializePlan> {
    fn visit(e: &mut SetExpr, gathered: &mut Vec<Gathered>) -> bool {
        match e {
            SetExpr::SetOperation { left, right, .. } => {
                visit(left, gathered) && visit(right, gathered)
            }
            SetExpr::Select(_) | SetExpr::Query(_) => {
                // A branch in parentheses is gathered as a query of its own.
                let sql = match &*e {
                    SetExpr::Query(q) => q.to_string(),
                    other => other.to_string(),
                };
                let i = gathered.len();
                let Ok(sqlparser::ast::Statement::Query(star)) =
                    super::parse(&format!("SELECT * FROM t AS `_tessera_part{i}`"))
                else {
                    return false;
                };
                let mut star = *star.body;
                if let SetExpr::Select(s) = &mut star {
                    s.from[0].relation = rows_factor(i, &format!("_tessera_part{i}"));
                }
                *e = star;
                gathered.push(Gathered::query(sql));
                true
            }
            _ => false,
        }
    }
    let mut outer = query.clone();
    let mut gathered = Vec::new();
    if !matches!(outer.body.as_ref(), SetExpr::SetOperation { .. })
        || !visit(outer.body.as_mut(), &mut gathered)
    {
        return None;
    }
    Some(MaterializePlan {
        keyspace: keyspace.clone(),
        gathered,
        outer: outer.to_string(),
        names: Vec::new(),
        note: "each branch's rows gathered by the gate, the set operation run over them on one shard",
    })
}

/// INSERT ... SELECT into a sharded table.
#[derive(Debug, Clone)]
pub struct InsertSelectPlan {
    pub keyspace: Arc<str>,
    /// The SELECT whose rows are inserted (planned and run on its own).
    pub select: String,
    /// The INSERT with `rows_mark(0)` where its VALUES go.
    pub insert: String,
}

/// Gathered `rows` as the VALUES of an INSERT.
pub fn rows_as_values(rows: &Rows, budget: &mut Budget) -> PlanResult<String> {
    const WHAT: &str = "INSERT ... SELECT on a sharded table";
    budget.take_rows(rows.rows.len(), WHAT)?;
    let mut out = String::with_capacity(16 + rows.rows.len() * 16);
    push_values(&mut out, "VALUES (", rows, budget, WHAT)?;
    budget.text += out.len();
    Ok(out)
}

/// Each row of `rows` as a parenthesized list of literals, the first after
/// `first`, the others after a comma; within the budget's text limit.
fn push_values(
    out: &mut String,
    first: &str,
    rows: &Rows,
    budget: &Budget,
    what: &str,
) -> PlanResult<()> {
    for (i, row) in rows.rows.iter().enumerate() {
        out.push_str(if i == 0 { first } else { ", (" });
        for (j, (value, column)) in row.iter().zip(&rows.columns).enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            push_literal(out, value.as_deref(), column);
        }
        out.push(')');
        if budget.text + out.len() > MAX_TEXT {
            return Err(refuse(format!(
                "{what}, over {} MB of gathered rows",
                MAX_TEXT >> 20
            )));
        }
    }
    Ok(())
}

/// `outer` with each rows mark replaced by its table, in one pass (a
/// table's literals may hold any text).
pub fn fill(outer: &str, tables: &[String]) -> Result<String, usize> {
    let mut out =
        String::with_capacity(outer.len() + tables.iter().map(String::len).sum::<usize>());
    let mut rest = outer;
    while let Some(at) = rest.find("\u{4}rows") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "\u{4}rows".len()..];
        let end = after.find('\u{4}').ok_or(usize::MAX)?;
        let i: usize = after[..end].parse().map_err(|_| usize::MAX)?;
        out.push_str(tables.get(i).ok_or(i)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn refuse(what: String) -> PlanError {
    PlanError::unsupported(what)
}

/// The gathered `rows` of `inner_sql` as a derived-table body (without the
/// alias): a table of literals with the columns' definitions.
pub fn rows_as_table(inner_sql: &str, rows: &Rows, budget: &mut Budget) -> PlanResult<String> {
    const WHAT: &str = "a query whose rows the gate gathers";
    budget.take_rows(rows.rows.len(), WHAT)?;
    for c in &rows.columns {
        if let Some(why) = unsupported_column(c) {
            return Err(refuse(format!(
                "{WHAT}, with column '{}' of type {why}",
                c.name
            )));
        }
    }
    let mut out = String::with_capacity(inner_sql.len() + 64 + rows.rows.len() * 16);
    out.push_str("((SELECT * FROM (");
    out.push_str(inner_sql);
    out.push_str(") AS `_tessera_shape` LIMIT 0)");
    push_values(&mut out, " UNION ALL VALUES (", rows, budget, WHAT)?;
    out.push(')');
    budget.text += out.len();
    Ok(out)
}

/// What the tables of one query's gathered rows have used of the limits.
#[derive(Debug)]
pub struct Budget {
    max_rows: usize,
    rows: usize,
    text: usize,
}

impl Budget {
    pub fn new(max_rows: usize) -> Budget {
        Budget {
            max_rows,
            rows: 0,
            text: 0,
        }
    }

    /// Rows that may still be gathered.
    pub fn rows_left(&self) -> usize {
        self.max_rows.saturating_sub(self.rows)
    }

    /// Counts `n` more gathered rows, refusing past the limit.
    fn take_rows(&mut self, n: usize, what: &str) -> PlanResult<()> {
        self.rows += n;
        if self.rows > self.max_rows {
            return Err(refuse(format!(
                "{what}, over {} rows (the gate's --max-memory-rows)",
                self.max_rows
            )));
        }
        Ok(())
    }
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
        (_, Some(t)) if (is_integer(column) || is_decimal(column)) && is_number(t) => {
            out.push_str(t)
        }
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
        // A quoted date would turn the column into a string. A zero date
        // (or year 0) has no literal: it is cast.
        (MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE, Some(t)) if t.starts_with("0000") => {
            push_cast(out, t, "DATE")
        }
        (MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE, Some(t)) => push_typed(out, "DATE", t),
        (
            MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP2,
            Some(t),
        ) if t.starts_with("0000") => {
            push_cast(out, t, &format!("DATETIME({})", column.decimals.min(6)))
        }
        (
            MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP2,
            Some(t),
        ) => push_typed(out, "TIMESTAMP", t),
        (MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2, Some(t)) => push_typed(out, "TIME", t),
        _ if column.charset == BINARY_CHARSET => push_hex(out, "", value),
        // A backslash or NUL would need an escape that NO_BACKSLASH_ESCAPES
        // reads differently: the value goes in hex, in its character set.
        _ if value.iter().any(|b| matches!(b, b'\\' | 0)) => {
            use crate::merge::collation::{Encoding, encoding_of};
            match encoding_of(column.charset) {
                Some(Encoding::Utf8) => push_hex(out, "_utf8mb4 ", value),
                Some(Encoding::Latin1) => push_hex(out, "_latin1 ", value),
                _ => out.push_str(&super::text::quote_bytes(value)),
            }
        }
        _ => out.push_str(&super::text::quote_bytes(value)),
    }
}

fn push_hex(out: &mut String, introducer: &str, value: &[u8]) {
    use std::fmt::Write;
    out.push_str(introducer);
    out.push_str("X'");
    for b in value {
        let _ = write!(out, "{b:02X}");
    }
    out.push('\'');
}

fn push_cast(out: &mut String, text: &str, to: &str) {
    out.push_str("CAST(");
    out.push_str(&super::text::quote_bytes(text.as_bytes()));
    out.push_str(" AS ");
    out.push_str(to);
    out.push(')');
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
                    Some(b"it's".to_vec()),
                    Some(b"1.1".to_vec()),
                    Some(b"1e300".to_vec()),
                    Some(b"2020-01-02".to_vec()),
                    Some(vec![0, 255]),
                ],
                vec![
                    None,
                    Some(b"a\\b".to_vec()),
                    None,
                    Some(b"2.5".to_vec()),
                    Some(b"0000-00-00".to_vec()),
                    None,
                ],
            ],
        };
        assert_eq!(
            rows_as_table("SELECT 1", &rows, &mut Budget::new(100)).unwrap(),
            "((SELECT * FROM (SELECT 1) AS `_tessera_shape` LIMIT 0) UNION ALL VALUES \
             (-3, 'it''s', CAST(1.1e0 AS FLOAT), 1e300, DATE'2020-01-02', X'00FF'), \
             (NULL, _utf8mb4 X'615C62', NULL, 2.5e0, CAST('0000-00-00' AS DATE), NULL))"
        );
        let empty = Rows {
            columns: rows.columns.clone(),
            rows: vec![],
        };
        assert_eq!(
            rows_as_table("SELECT 1", &empty, &mut Budget::new(100)).unwrap(),
            "((SELECT * FROM (SELECT 1) AS `_tessera_shape` LIMIT 0))"
        );
    }

    #[test]
    fn item_names_take_the_values_of_a_text_statement() {
        use crate::plan::OwnedValue;
        let name = ItemName {
            text: "IFNULL(SUM(x), ?) + ?".to_string(),
            first_param: 1,
        };
        let params = [
            OwnedValue::Int(9),
            OwnedValue::Bytes(b"none".to_vec()),
            OwnedValue::Int(2),
        ];
        assert_eq!(name.resolve(&params, false), "IFNULL(SUM(x), 'none') + 2");
        assert_eq!(name.resolve(&params, true), "IFNULL(SUM(x), ?) + ?");
    }

    #[test]
    fn columns_without_literals_and_too_many_rows_are_refused() {
        let rows = Rows {
            columns: vec![column("e", ColumnType::MYSQL_TYPE_STRING, 45, ENUM_FLAG)],
            rows: vec![],
        };
        let e = rows_as_table("SELECT e FROM t", &rows, &mut Budget::new(100)).unwrap_err();
        assert_eq!(e.code, 1235);
        assert!(e.message.contains("'e' of type ENUM"), "{}", e.message);
        let many = Rows {
            columns: vec![column("n", ColumnType::MYSQL_TYPE_LONG, 63, 0)],
            rows: vec![vec![Some(b"1".to_vec())]; 101],
        };
        let e = rows_as_table("SELECT n FROM t", &many, &mut Budget::new(100)).unwrap_err();
        assert!(e.message.contains("over 100 rows"), "{}", e.message);
    }
}
