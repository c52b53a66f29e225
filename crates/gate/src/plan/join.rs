//! Joins the shards cannot do alone (two sharded tables not joined on their
//! vindex): the gate reads the left table's rows, then for each distinct
//! join key asks the right table's shards for the matching rows (a nested
//! loop with the key written in as a literal, so the servers compare values
//! with their own types and collations), and assembles the rows itself.
//!
//! Kept deliberately narrow, so that what it accepts it answers exactly:
//! an inner or LEFT join of two tables (a RIGHT join is a LEFT one with its
//! tables swapped), conditions that each read one side or equate a column
//! of each side, and either a select list of plain columns with ORDER BY /
//! LIMIT over them, or aggregates, GROUP BY, HAVING and DISTINCT.
//!
//! A LEFT join keeps every left row: one whose key finds no right row (or
//! whose ON conditions over the left table alone are not true) is joined to
//! the right table's NULL row. That row is not made up by the gate: it is
//! the right query's select list over an empty copy of the right table
//! outer-joined to one row, run on one shard, so an expression such as
//! `COALESCE(b.x, 0)` has the value MariaDB gives it. The right columns'
//! definitions come from the join as written with LIMIT 0 (read by no
//! server): nullable, unless a WHERE condition that rejects NULL-extended
//! rows lets MariaDB run the join as an inner one and say so. Conditions
//! that decide the match but read only the left table, and WHERE conditions
//! that read the right table (they hold or not after NULL extension, as in
//! `WHERE b.id IS NULL`), are not filters of either side's query: each
//! side's query returns whether they are true for its row, and the gate
//! keeps the joined rows for which they are.
//!
//! The second kind is planned as if one server held both tables: the scatter
//! planner rewrites the query into the one each shard would run and the merge
//! of their answers. Here no shard can run it (no shard has the joined rows),
//! so the gate builds its rows itself, one per joined pair, each standing for
//! a group of one: a COUNT column holds 1 (or NULL for a NULL argument), a
//! SUM/MIN/MAX column the argument's value, any other column its value. Each
//! side's query returns the values its columns need. The columns' definitions
//! come from that same rewritten query run on one shard with a condition that
//! matches nothing, so they are MariaDB's own (SUM of INT a DECIMAL, COUNT a
//! BIGINT, the names as written).

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Distinct, Expr, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    JoinConstraint, JoinOperator, OrderByKind, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, visit_expressions,
};

use super::select::{aggregate_call, column_ref, conjuncts, contains_aggregate};
use super::text::{self, OwnedValue};
use super::{MergeTemplate, PlanContext, PlanError, PlanResult, ResolvedTable};
use crate::merge::{AggregateKind, OrderKey};

/// Which side of the join a column comes from, and its index in that
/// side's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left(usize),
    Right(usize),
}

#[derive(Debug, Clone)]
pub struct JoinPlan {
    pub keyspace: std::sync::Arc<str>,
    /// The left table's query: the columns needed, its own conditions.
    pub left_sql: String,
    /// The right table's query with one marker per join key.
    pub right_sql: String,
    /// The right query with a false condition, for its columns' shape when
    /// the left side has no rows.
    pub right_shape_sql: String,
    /// (marker, left column holding the key's value).
    pub keys: Vec<(String, usize)>,
    pub output: Vec<Side>,
    /// The (table, column) of each output column, for its collation.
    pub sources: Vec<(String, String)>,
    /// The alias each output column was given, which names it.
    pub aliases: Vec<Option<String>>,
    pub order_by: Vec<OrderKey>,
    pub offset: u64,
    pub limit: Option<u64>,
    /// Aggregates, GROUP BY, HAVING or DISTINCT over the joined rows: then
    /// `output`, `sources`, `order_by` and the limits are unused.
    pub merge: Option<JoinMerge>,
    /// A LEFT join: what keeps every left row.
    pub outer: Option<OuterJoin>,
}

/// How a LEFT join keeps the left rows no right row matches, and filters
/// the joined rows by what only the joined row can tell.
#[derive(Debug, Clone)]
pub struct OuterJoin {
    /// The right query's select list over the right table's NULL row (an
    /// empty copy of the table outer-joined to one row), for one shard: its
    /// one row is the right side of an unmatched left row.
    pub null_row_sql: String,
    /// The right query's select list over the join as written, reading no
    /// row (LIMIT 0), for one shard: the right columns' definitions as
    /// MariaDB gives them for the query.
    pub columns_sql: String,
    /// The left column that is 1 when the ON conditions reading only the
    /// left table are true for the row: else no right row matches it.
    pub on_left: Option<usize>,
    /// The right column that is 1 when WHERE's conditions reading the right
    /// table are true for the joined row: else the row is dropped.
    pub where_right: Option<usize>,
    /// The query had RIGHT JOIN, planned with its tables swapped.
    pub swapped: bool,
}

/// How one column of a row the gate aggregates is filled from a joined pair
/// of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The value a side's query returned.
    Value(Side),
    /// COUNT(*): every joined row counts once.
    One,
    /// COUNT(x): 1 when the side's value of x is not NULL, else NULL.
    CountOf(Side),
    /// An expression around aggregates, which the merge computes after
    /// aggregating: NULL until then.
    Computed,
}

/// Aggregates, GROUP BY, HAVING, DISTINCT, ORDER BY and LIMIT over the rows
/// of a gate-side join, done by the scatter merge.
#[derive(Debug, Clone)]
pub struct JoinMerge {
    /// The scatter query of both tables with a condition matching nothing,
    /// for one shard: its columns are the ones the merge takes (types,
    /// names), one per cell.
    pub shape_sql: String,
    pub cells: Vec<Cell>,
    pub template: MergeTemplate,
    /// The (table, column) each cell shows, when it shows one: its
    /// collation decides how the merge compares it.
    pub sources: Vec<Option<(String, String)>>,
    /// The sides' columns SUM or AVG add: the gate adds them exactly as
    /// MariaDB would only when they are numbers other than FLOAT, which is
    /// checked when their types are known.
    pub summed: Vec<Side>,
}

fn key_marker(n: usize) -> String {
    format!("\u{3}{n}\u{3}")
}

/// Which of the two tables a column reference belongs to.
fn side_of(
    ctx: &PlanContext<'_>,
    tables: &[&ResolvedTable; 2],
    qualifier: Option<&str>,
    column: &str,
) -> Option<usize> {
    match qualifier {
        Some(q) => tables.iter().position(|t| t.refname == q),
        None => {
            // Unqualified: the one table whose known schema has it.
            let has = |t: &ResolvedTable| {
                ctx.schema
                    .and_then(|s| s.table(&t.keyspace.name, &t.name))
                    .map(|schema| schema.column(column).is_some())
            };
            match (has(tables[0]), has(tables[1])) {
                (Some(true), Some(false)) => Some(0),
                (Some(false), Some(true)) => Some(1),
                _ => None,
            }
        }
    }
}

/// The sides an expression's columns come from (None: one it cannot tell).
fn sides_in(
    ctx: &PlanContext<'_>,
    tables: &[&ResolvedTable; 2],
    expr: &Expr,
) -> Option<HashSet<usize>> {
    let mut sides = HashSet::new();
    let mut unknown = false;
    let _ = visit_expressions(expr, |e| {
        if matches!(
            e,
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }
        ) {
            unknown = true;
            return ControlFlow::Break(());
        }
        if let Expr::Identifier(_) | Expr::CompoundIdentifier(_) = e {
            match column_ref(e).and_then(|(q, c)| side_of(ctx, tables, q, &c)) {
                Some(s) => {
                    sides.insert(s);
                }
                None => {
                    unknown = true;
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    (!unknown).then_some(sides)
}

/// The columns each side's query selects, in order: a column or expression
/// asked for twice is selected once.
#[derive(Default)]
struct SideColumns {
    lists: [Vec<String>; 2],
}

impl SideColumns {
    fn add(&mut self, side: usize, text: String) -> Side {
        let list = &mut self.lists[side];
        let index = match list.iter().position(|c| *c == text) {
            Some(i) => i,
            None => {
                list.push(text);
                list.len() - 1
            }
        };
        if side == 0 {
            Side::Left(index)
        } else {
            Side::Right(index)
        }
    }
}

fn unsupported(what: &str) -> PlanError {
    PlanError::unsupported(format!("{what} in a cross-shard join"))
}

/// Whether the query needs grouping or deduplication of the joined rows.
fn needs_merge(select: &Select) -> bool {
    let grouped =
        !matches!(&select.group_by, GroupByExpr::Expressions(l, m) if l.is_empty() && m.is_empty());
    let aggregates = select.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            contains_aggregate(e)
        }
        _ => false,
    });
    grouped
        || aggregates
        || select.having.is_some()
        || matches!(select.distinct, Some(Distinct::Distinct))
}

/// Plans a gate-side join of exactly two tables, or explains why not.
pub(super) fn plan_join(
    ctx: &PlanContext<'_>,
    sql: &str,
    query: &Query,
    select: &Select,
    tables: [&ResolvedTable; 2],
    conditions: &[&Expr],
) -> PlanResult<JoinPlan> {
    if !matches!(
        select.distinct,
        None | Some(Distinct::All) | Some(Distinct::Distinct)
    ) {
        return Err(unsupported("DISTINCT ON"));
    }
    if !query.locks.is_empty() || select.into.is_some() {
        return Err(unsupported("locking reads or INTO"));
    }
    let outer = outer_shape(select, tables)?;
    // A RIGHT join is the LEFT join of its tables the other way round.
    let tables = match &outer {
        Some(o) if o.swapped => [tables[1], tables[0]],
        _ => tables,
    };
    let mut cols = SideColumns::default();
    let mut output = Vec::new();
    let mut sources = Vec::new();
    let mut names = Vec::new();
    let mut aliases = Vec::new();
    let merge = if needs_merge(select) {
        Some(plan_merge(
            ctx,
            sql,
            query,
            select,
            &tables,
            outer.is_some(),
            &mut cols,
        )?)
    } else {
        for item in &select.projection {
            let (expr, alias) = match item {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
                _ => return Err(unsupported("a select list with *")),
            };
            let Some((q, column)) = column_ref(expr) else {
                return Err(unsupported("a select item that is not a plain column"));
            };
            let side = side_of(ctx, &tables, q, &column)
                .ok_or_else(|| unsupported(&format!("column {expr} of unknown table")))?;
            output.push(cols.add(side, format!("{}.{}", tables[side].refname, column)));
            sources.push((tables[side].name.clone(), column.clone()));
            aliases.push(alias.clone());
            names.push(alias.unwrap_or(column));
        }
        None
    };
    let mut left_conds = Vec::new();
    let mut right_conds = Vec::new();
    // A LEFT join's conditions that are neither side's filter (see the
    // module's comment).
    let mut on_left = Vec::new();
    let mut where_right = Vec::new();
    let mut keys: Vec<(String, usize)> = Vec::new();
    // Each condition, and whether it is a LEFT join's ON condition: those
    // decide which right rows match a left row, never which left rows stay.
    let classified: Vec<(&Expr, bool)> = match &outer {
        None => conditions.iter().map(|c| (*c, false)).collect(),
        Some(o) => {
            o.on.iter()
                .map(|c| (c, true))
                .chain(
                    select
                        .selection
                        .iter()
                        .flat_map(conjuncts)
                        .map(|c| (c, false)),
                )
                .collect()
        }
    };
    let is_outer = outer.is_some();
    for (cond, in_on) in classified {
        let sides = sides_in(ctx, &tables, cond)
            .ok_or_else(|| unsupported(&format!("condition {cond}")))?;
        match (sides.contains(&0), sides.contains(&1)) {
            // A constant ON condition: no right row matches when it is false.
            (false, false) if in_on => right_conds.push(cond.to_string()),
            (true, false) if in_on => on_left.push(cond.to_string()),
            (_, false) => left_conds.push(cond.to_string()),
            // Whether it holds is known only after NULL extension.
            (false, true) if is_outer && !in_on => where_right.push(cond.to_string()),
            (false, true) => right_conds.push(cond.to_string()),
            (true, true) if is_outer && !in_on => {
                return Err(unsupported(&format!(
                    "WHERE condition {cond} reading both tables of a LEFT JOIN"
                )));
            }
            (true, true) => {
                // Only `left.a = right.b` (either way round) joins.
                let Some((lcol, rcol)) = join_key(ctx, &tables, cond) else {
                    return Err(unsupported(&format!("condition {cond}")));
                };
                let Side::Left(li) = cols.add(0, format!("{}.{}", tables[0].refname, lcol)) else {
                    unreachable!("side 0 is the left side");
                };
                let marker = key_marker(keys.len());
                right_conds.push(format!("{}.{} = {marker}", tables[1].refname, rcol));
                keys.push((marker, li));
            }
        }
    }
    // Each side's query tells whether its part of them is true (1).
    let truth = |conds: &[String]| match conds {
        [one] => format!("({one}) IS TRUE"),
        _ => format!("(({})) IS TRUE", conds.join(") AND (")),
    };
    let on_left = (!on_left.is_empty()).then(|| match cols.add(0, truth(&on_left)) {
        Side::Left(i) | Side::Right(i) => i,
    });
    let where_right = (!where_right.is_empty()).then(|| match cols.add(1, truth(&where_right)) {
        Side::Left(i) | Side::Right(i) => i,
    });
    let [mut left_cols, mut right_cols] = cols.lists;
    if left_cols.is_empty() {
        left_cols.push("1".to_string());
    }
    if right_cols.is_empty() {
        right_cols.push("1".to_string());
    }
    let where_of = |conds: &[String]| {
        if conds.is_empty() {
            String::new()
        } else {
            format!(
                " WHERE {}",
                conds
                    .iter()
                    .map(|c| format!("({c})"))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            )
        }
    };
    let left_sql = format!(
        "SELECT {} FROM {}{}",
        left_cols.join(", "),
        factor(tables[0]),
        where_of(&left_conds)
    );
    let right_sql = format!(
        "SELECT {} FROM {}{}",
        right_cols.join(", "),
        factor(tables[1]),
        where_of(&right_conds)
    );
    let right_shape_sql = format!(
        "SELECT {} FROM {} WHERE 1 = 0",
        right_cols.join(", "),
        factor(tables[1])
    );
    let outer = outer.map(|o| OuterJoin {
        // An empty derived table is read by no one; `ON 1 = 0` over the
        // table itself would make the server scan it.
        null_row_sql: format!(
            "SELECT {} FROM (SELECT 1) AS `{NULL_ROW_ANCHOR}` LEFT JOIN (SELECT * FROM `{}` LIMIT 0) AS `{}` ON 1 = 1",
            right_cols.join(", "),
            tables[1].name,
            tables[1].refname
        ),
        columns_sql: format!(
            "SELECT {} FROM {} LEFT JOIN {} ON {}{} LIMIT 0",
            right_cols.join(", "),
            factor(tables[0]),
            factor(tables[1]),
            o.on.iter()
                .map(|c| format!("({c})"))
                .collect::<Vec<_>>()
                .join(" AND "),
            where_of(
                &select
                    .selection
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
            )
        ),
        on_left,
        where_right,
        swapped: o.swapped,
    });
    // ORDER BY over the output columns (the merge has its own).
    let mut order_by = Vec::new();
    if merge.is_none()
        && let Some(ob) = &query.order_by
    {
        let OrderByKind::Expressions(list) = &ob.kind else {
            return Err(unsupported("ORDER BY ALL"));
        };
        for o in list {
            let descending = matches!(o.options.sort, Some(sqlparser::ast::OrderBySort::Desc));
            let column = match text::literal(&o.expr) {
                Some(Ok(OwnedValue::Int(n))) if n >= 1 && (n as usize) <= output.len() => {
                    n as usize - 1
                }
                _ => {
                    let (q, c) =
                        column_ref(&o.expr).ok_or_else(|| unsupported("ORDER BY an expression"))?;
                    let side = side_of(ctx, &tables, q, &c);
                    let by_alias = q
                        .is_none()
                        .then(|| names.iter().position(|n| n.eq_ignore_ascii_case(&c)))
                        .flatten();
                    let by_column = side.and_then(|s| {
                        sources
                            .iter()
                            .position(|(t, col)| *t == tables[s].name && *col == c)
                    });
                    by_column
                        .or(by_alias)
                        .ok_or_else(|| unsupported("ORDER BY a column that is not selected"))?
                }
            };
            order_by.push(OrderKey { column, descending });
        }
    }
    let (offset, limit) = if merge.is_none() {
        super::select::limit_values(query)?
    } else {
        (0, None)
    };
    Ok(JoinPlan {
        keyspace: std::sync::Arc::from(tables[0].keyspace.name.as_str()),
        left_sql,
        right_sql,
        right_shape_sql,
        keys,
        output,
        sources,
        aliases,
        order_by,
        offset,
        limit,
        merge,
        outer,
    })
}

/// The one-row table a LEFT join's right table is outer-joined to for its
/// NULL row.
const NULL_ROW_ANCHOR: &str = "tessera_null_row";

/// A LEFT join's ON condition, in parts.
struct OuterShape {
    on: Vec<Expr>,
    /// Written as a RIGHT join.
    swapped: bool,
}

/// Whether the FROM clause is `a LEFT|RIGHT [OUTER] JOIN b ON|USING ...`
/// (Some) or an inner join (None); an outer join of any other shape (in
/// parentheses) is refused.
fn outer_shape(select: &Select, tables: [&ResolvedTable; 2]) -> PlanResult<Option<OuterShape>> {
    fn outer_of(op: &JoinOperator) -> Option<(&JoinConstraint, bool)> {
        match op {
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => Some((c, false)),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => Some((c, true)),
            _ => None,
        }
    }
    fn has_outer(factor: &TableFactor) -> bool {
        match factor {
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                has_outer(&table_with_joins.relation)
                    || table_with_joins
                        .joins
                        .iter()
                        .any(|j| outer_of(&j.join_operator).is_some() || has_outer(&j.relation))
            }
            _ => false,
        }
    }
    if let [from] = select.from.as_slice()
        && let [join] = from.joins.as_slice()
        && matches!(from.relation, TableFactor::Table { .. })
        && matches!(join.relation, TableFactor::Table { .. })
    {
        let Some((constraint, swapped)) = outer_of(&join.join_operator) else {
            return Ok(None);
        };
        let on = match constraint {
            JoinConstraint::On(e) => conjuncts(e).into_iter().cloned().collect(),
            JoinConstraint::Using(columns) => {
                let mut on = Vec::new();
                for c in columns {
                    let Some(name) = c.0.last().and_then(|p| p.as_ident()) else {
                        return Err(unsupported(&format!("USING ({c})")));
                    };
                    let column = |t: &ResolvedTable| {
                        Box::new(Expr::CompoundIdentifier(vec![
                            Ident::new(t.refname.clone()),
                            name.clone(),
                        ]))
                    };
                    on.push(Expr::BinaryOp {
                        left: column(tables[0]),
                        op: BinaryOperator::Eq,
                        right: column(tables[1]),
                    });
                }
                on
            }
            _ => return Err(unsupported("an outer join without ON or USING")),
        };
        return Ok(Some(OuterShape { on, swapped }));
    }
    let outer = select.from.iter().any(|from| {
        has_outer(&from.relation)
            || from
                .joins
                .iter()
                .any(|j| outer_of(&j.join_operator).is_some() || has_outer(&j.relation))
    });
    if outer {
        return Err(unsupported("an outer join in parentheses"));
    }
    Ok(None)
}

/// The (left column, right column) of a condition `left.a = right.b`
/// (either way round), the only one over both tables that joins them.
fn join_key(
    ctx: &PlanContext<'_>,
    tables: &[&ResolvedTable; 2],
    cond: &Expr,
) -> Option<(String, String)> {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = cond
    else {
        return None;
    };
    let ((ql, cl), (qr, cr)) = (column_ref(left)?, column_ref(right)?);
    match (side_of(ctx, tables, ql, &cl), side_of(ctx, tables, qr, &cr)) {
        (Some(0), Some(1)) => Some((cl, cr)),
        (Some(1), Some(0)) => Some((cr, cl)),
        _ => None,
    }
}

/// A table in a side's FROM: its name, and the name the query refers to it by.
fn factor(t: &ResolvedTable) -> String {
    if t.refname == t.name {
        format!("`{}`", t.name)
    } else {
        format!("`{}` AS `{}`", t.name, t.refname)
    }
}

/// Plans the aggregation (or deduplication) of the joined rows: the scatter
/// rewrite of the query gives the merge and the columns it takes; each of
/// those columns becomes a cell filled from the sides' queries, to which
/// the values they need are added.
fn plan_merge(
    ctx: &PlanContext<'_>,
    sql: &str,
    query: &Query,
    select: &Select,
    tables: &[&ResolvedTable; 2],
    outer: bool,
    cols: &mut SideColumns,
) -> PlanResult<JoinMerge> {
    if select.projection.iter().any(|i| {
        !matches!(
            i,
            SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
        )
    }) {
        return Err(unsupported(
            "a select list with * and aggregates or DISTINCT",
        ));
    }
    // HAVING in a query that does not aggregate filters rows one by one
    // (MariaDB neither groups nor collapses them); the merge would make one
    // group of them all.
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(l, _) if l.is_empty());
    let aggregates = select.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            contains_aggregate(e)
        }
        _ => false,
    });
    if let Some(having) = &select.having
        && !grouped
        && !aggregates
        && !contains_aggregate(having)
    {
        return Err(unsupported("HAVING without GROUP BY or aggregates"));
    }
    // The query over both tables with a condition matching nothing: the
    // conditions (and any parameters in them) do not change the columns'
    // types, and an inner join's columns are those of a cross product, a
    // LEFT join's those of a LEFT join (the right table's nullable).
    let empty = super::parse(&format!(
        "SELECT 1 FROM {}{} WHERE 1 = 0",
        factor(tables[0]),
        if outer {
            format!(" LEFT JOIN {} ON 1 = 0", factor(tables[1]))
        } else {
            format!(", {}", factor(tables[1]))
        }
    ))?;
    let Statement::Query(empty) = empty else {
        return Err(PlanError::other("internal: the shape query did not parse"));
    };
    let SetExpr::Select(empty) = *empty.body else {
        return Err(PlanError::other("internal: the shape query did not parse"));
    };
    let mut shape = select.clone();
    shape.from = empty.from;
    shape.selection = empty.selection;
    let names = tables.map(|t| (t.refname.clone(), t.name.clone()));
    let (shape_sql, template) = super::select::scatter_rewrite(sql, query, &shape, &names)?;
    if shape_sql.contains(text::PARAM_MARK) {
        return Err(unsupported(
            "a parameter in the select list, GROUP BY, HAVING or ORDER BY",
        ));
    }
    if template.star_index.is_some() || !template.from_end.is_empty() {
        return Err(unsupported(
            "a select list with * and aggregates or DISTINCT",
        ));
    }
    // The rewritten select list: one item per merge column.
    let Statement::Query(rewritten) = super::parse(&shape_sql)? else {
        return Err(PlanError::other(
            "internal: the rewritten join did not parse",
        ));
    };
    let SetExpr::Select(rewritten) = *rewritten.body else {
        return Err(PlanError::other(
            "internal: the rewritten join did not parse",
        ));
    };
    let spec = &template.spec;
    let mut cells = Vec::with_capacity(rewritten.projection.len());
    let mut sources = Vec::with_capacity(rewritten.projection.len());
    let mut summed = Vec::new();
    for (i, item) in rewritten.projection.iter().enumerate() {
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            other => return Err(unsupported(&format!("select item {other}"))),
        };
        let aggregate = spec
            .aggregates
            .iter()
            .find(|a| a.column == i)
            .map(|a| a.kind);
        // A value one side computes: a column, or an expression over one
        // table's columns (a constant goes to the left side).
        let mut value_of = |e: &Expr| -> PlanResult<(Side, Option<(String, String)>)> {
            let sides = sides_in(ctx, tables, e)
                .ok_or_else(|| unsupported(&format!("{e} (a column of unknown table)")))?;
            if sides.len() > 1 {
                return Err(unsupported(&format!(
                    "{e} (an expression over columns of both tables)"
                )));
            }
            let side = sides.into_iter().next().unwrap_or(0);
            let source = column_ref(e).map(|(_, c)| (tables[side].name.clone(), c));
            Ok((cols.add(side, e.to_string()), source))
        };
        let computed = spec.computed.iter().any(|(c, _)| *c == i);
        let (cell, source) = match aggregate_call(expr) {
            // An expression the merge computes from other columns (an AVG
            // only ORDER BY names is one: SUM / COUNT of hidden columns).
            _ if computed => (Cell::Computed, None),
            Some((name, false, arg)) => {
                let expected = match name.as_str() {
                    // AVG's COUNT is read by the AVG, not aggregated alone.
                    "count" => {
                        matches!(aggregate, Some(AggregateKind::Count))
                            || aggregate.is_none()
                                && spec
                                    .aggregates
                                    .iter()
                                    .any(|a| a.kind == AggregateKind::Avg { count_column: i })
                    }
                    "sum" => matches!(
                        aggregate,
                        Some(AggregateKind::Sum | AggregateKind::Avg { .. })
                    ),
                    "min" => matches!(aggregate, Some(AggregateKind::Min)),
                    "max" => matches!(aggregate, Some(AggregateKind::Max)),
                    _ => false,
                };
                if !expected {
                    return Err(unsupported(&format!("aggregate {expr}")));
                }
                match (name.as_str(), arg) {
                    ("count", None) if is_count_star(expr) => (Cell::One, None),
                    ("count", Some(arg)) => {
                        let (side, _) = value_of(arg)?;
                        (Cell::CountOf(side), None)
                    }
                    (_, Some(arg)) => {
                        let (side, source) = value_of(arg)?;
                        if name == "sum" {
                            summed.push(side);
                        }
                        (Cell::Value(side), source)
                    }
                    _ => return Err(unsupported(&format!("aggregate {expr}"))),
                }
            }
            Some(_) => return Err(unsupported(&format!("aggregate {expr}"))),
            None if contains_aggregate(expr) => return Err(unsupported(&format!("{expr}"))),
            None => {
                // A value (a group key, a COUNT/SUM(DISTINCT) argument): it
                // must be one an aggregate takes raw, or no aggregate's.
                match aggregate {
                    None => {}
                    Some(AggregateKind::CountDistinct) => {}
                    Some(AggregateKind::SumDistinct) => {}
                    Some(_) => return Err(unsupported(&format!("aggregate {expr}"))),
                }
                let (side, source) = value_of(expr)?;
                if aggregate == Some(AggregateKind::SumDistinct) {
                    summed.push(side);
                }
                (Cell::Value(side), source)
            }
        };
        cells.push(cell);
        sources.push(source);
    }
    if cells.len() != spec.visible_columns + template.hidden {
        return Err(PlanError::other(format!(
            "internal: a join merge of {} columns for {} cells",
            spec.visible_columns + template.hidden,
            cells.len()
        )));
    }
    Ok(JoinMerge {
        shape_sql,
        cells,
        template,
        sources,
        summed,
    })
}

/// Whether an aggregate call is `COUNT(*)` (not COUNT of several arguments).
fn is_count_star(expr: &Expr) -> bool {
    let Expr::Function(f) = expr else {
        return false;
    };
    match &f.args {
        FunctionArguments::List(list) => {
            list.duplicate_treatment.is_none()
                && matches!(
                    list.args.as_slice(),
                    [sqlparser::ast::FunctionArg::Unnamed(
                        FunctionArgExpr::Wildcard
                    )]
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, plan};

    fn planned(sql: &str) -> PlanResult<Plan> {
        let table = crate::plan::tests::routing();
        let ctx = PlanContext {
            routing: &table,
            keyspace: Some("ks"),
            schema: None,
        };
        plan(&ctx, sql)
    }

    fn join(sql: &str) -> JoinPlan {
        match planned(sql) {
            Ok(Plan::Join(j)) => *j,
            other => panic!("{sql}: not a join: {other:?}"),
        }
    }

    #[test]
    fn plain_columns_keep_the_simple_join() {
        let j = join(
            "SELECT c.id, o.id FROM customer c JOIN orders o ON c.name = o.sku ORDER BY o.id LIMIT 2",
        );
        assert!(j.merge.is_none());
        assert_eq!(j.output, vec![Side::Left(0), Side::Right(0)]);
        assert_eq!(j.limit, Some(2));
        assert_eq!(j.aliases, vec![None, None]);
        let j = join("SELECT c.id AS who, o.id FROM customer c JOIN orders o ON c.name = o.sku");
        assert_eq!(j.aliases, vec![Some("who".to_string()), None]);
        assert_eq!(j.left_sql, "SELECT c.id, c.name FROM `customer` AS `c`");
    }

    #[test]
    fn aggregates_read_raw_values_from_each_side() {
        let j = join(
            "SELECT c.name, COUNT(*), SUM(o.qty), AVG(o.price), COUNT(o.id) FROM customer c \
             JOIN orders o ON c.name = o.sku WHERE o.qty > 2 GROUP BY c.name \
             HAVING COUNT(*) > 1 ORDER BY 2 DESC LIMIT 3",
        );
        let m = j.merge.expect("a merge of the joined rows");
        // name, COUNT(*), SUM(qty), SUM(price) for AVG, COUNT(id), then
        // AVG's hidden COUNT(price).
        assert_eq!(
            m.cells,
            vec![
                Cell::Value(Side::Left(0)),
                Cell::One,
                Cell::Value(Side::Right(0)),
                Cell::Value(Side::Right(1)),
                Cell::CountOf(Side::Right(2)),
                Cell::CountOf(Side::Right(1)),
            ]
        );
        assert_eq!(j.left_sql, "SELECT c.name FROM `customer` AS `c`");
        assert_eq!(
            j.right_sql,
            format!(
                "SELECT o.qty, o.price, o.id FROM `orders` AS `o` WHERE (o.sku = {}) AND (o.qty > 2)",
                key_marker(0)
            )
        );
        assert_eq!(m.summed, vec![Side::Right(0), Side::Right(1)]);
        assert_eq!(
            m.sources[0],
            Some(("customer".to_string(), "name".to_string()))
        );
        let spec = &m.template.spec;
        assert!(spec.aggregate);
        assert_eq!(spec.group_by, vec![0]);
        assert!(spec.having.is_some());
        assert_eq!(spec.visible_columns, 5);
        assert_eq!((spec.offset, spec.limit), (0, Some(3)));
        assert_eq!(
            spec.order_by,
            vec![OrderKey {
                column: 1,
                descending: true
            }]
        );
        // The columns' shape: both tables, no row, the query's own items.
        assert!(
            m.shape_sql.starts_with("SELECT c.name, COUNT(*), SUM(o.qty), SUM(o.price) AS `AVG(o.price)`, COUNT(o.id), COUNT(o.price) FROM `customer` AS `c`, `orders` AS `o` WHERE 1 = 0 GROUP BY c.name"),
            "{}",
            m.shape_sql
        );
    }

    #[test]
    fn distinct_without_aggregates_deduplicates_in_the_merge() {
        let j = join("SELECT DISTINCT c.city FROM customer c JOIN orders o ON c.name = o.sku");
        let m = j.merge.expect("a merge");
        assert!(m.template.spec.distinct && !m.template.spec.aggregate);
        assert_eq!(m.cells, vec![Cell::Value(Side::Left(0))]);
        // COUNT(DISTINCT x) takes x raw.
        let j = join("SELECT COUNT(DISTINCT o.sku) FROM customer c JOIN orders o ON c.id = o.qty");
        let m = j.merge.expect("a merge");
        assert_eq!(m.cells, vec![Cell::Value(Side::Right(0))]);
        assert_eq!(
            m.template.spec.aggregates[0].kind,
            AggregateKind::CountDistinct
        );
    }

    #[test]
    fn expressions_of_one_side_are_computed_by_that_side() {
        let j = join(
            "SELECT YEAR(c.created) AS y, SUM(o.qty * o.price) + 1 FROM customer c \
             JOIN orders o ON c.name = o.sku GROUP BY YEAR(c.created)",
        );
        let m = j.merge.expect("a merge");
        assert_eq!(m.cells[0], Cell::Value(Side::Left(0)));
        assert_eq!(m.cells[1], Cell::Computed);
        assert!(j.left_sql.starts_with("SELECT YEAR(c.created), c.name"));
        assert!(j.right_sql.contains("o.qty * o.price"), "{}", j.right_sql);
        // AVG named only by ORDER BY: the merge divides hidden SUM and COUNT.
        let j = join(
            "SELECT o.qty, COUNT(*) FROM customer c JOIN orders o ON c.name = o.sku \
             GROUP BY o.qty ORDER BY AVG(c.balance)",
        );
        let m = j.merge.expect("a merge");
        assert!(m.cells.contains(&Cell::Computed), "{:?}", m.cells);
        assert!(
            m.cells.contains(&Cell::CountOf(Side::Left(0))),
            "{:?}",
            m.cells
        );
    }

    #[test]
    fn parameters_of_conditions_and_limit_wait_for_execution() {
        let j = join(
            "SELECT o.sku, COUNT(*) FROM customer c JOIN orders o ON c.name = o.sku \
             WHERE c.id > ? GROUP BY o.sku ORDER BY 2 LIMIT ?",
        );
        let m = j.merge.expect("a merge");
        assert!(j.left_sql.contains(text::PARAM_MARK), "{}", j.left_sql);
        assert!(!m.shape_sql.contains(text::PARAM_MARK), "{}", m.shape_sql);
        assert_eq!(m.template.limit_params, (None, Some(1)));
    }

    /// The statement runs over both tables' rows gathered by the gate.
    fn assert_gathered(sql: &str) {
        match planned(sql) {
            Ok(Plan::Materialize(m)) => assert_eq!(m.gathered.len(), 2, "{sql}: {m:?}"),
            other => panic!("{sql}: not gathered: {other:?}"),
        }
    }

    #[test]
    fn what_the_merge_cannot_do_runs_over_gathered_rows() {
        for sql in [
            "SELECT SUM(c.id + o.qty) FROM customer c JOIN orders o ON c.name = o.sku",
            "SELECT COUNT(*) FROM customer c JOIN orders o ON c.name = o.sku GROUP BY CONCAT(c.id, o.id)",
            "SELECT DISTINCT * FROM customer c JOIN orders o ON c.name = o.sku",
            "SELECT GROUP_CONCAT(o.sku) FROM customer c JOIN orders o ON c.name = o.sku",
            "SELECT o.sku FROM customer c JOIN orders o ON c.name = o.sku HAVING o.sku = 'x'",
            "SELECT COUNT(*) FROM customer c JOIN orders o ON c.name = o.sku GROUP BY c.id WITH ROLLUP",
            "SELECT c.id, COUNT(*) FROM customer c JOIN orders o ON c.name = o.sku GROUP BY c.id ORDER BY ?",
        ] {
            assert_gathered(sql);
        }
        // Conditions of one table alone are applied while gathering it.
        let Ok(Plan::Materialize(m)) = planned(
            "SELECT SUM(c.id + o.qty) FROM customer c JOIN orders o ON c.name = o.sku \
             WHERE c.score > ? AND o.qty < 3 AND c.id < o.id AND LENGTH(o.sku) > 1",
        ) else {
            panic!("not gathered");
        };
        assert!(
            m.gathered[0]
                .sql
                .contains("FROM customer c WHERE (c.score > ")
                && !m.gathered[0].sql.contains("AND"),
            "{}",
            m.gathered[0].sql
        );
        assert!(
            m.gathered[1]
                .sql
                .ends_with("FROM orders o WHERE (o.qty < 3)"),
            "{}",
            m.gathered[1].sql
        );
        assert!(m.outer.contains("WHERE c.score >"), "{}", m.outer);
    }

    #[test]
    fn left_join_conditions_go_where_they_decide() {
        let j = join(
            "SELECT c.id, o.id FROM customer c LEFT JOIN orders o ON c.name = o.sku \
             AND o.qty > 2 AND c.score > 5 AND 1 = 1 WHERE c.id < 10 AND o.id IS NULL",
        );
        // ON over the left table: a column of the left query, not a filter.
        assert_eq!(
            j.left_sql,
            "SELECT c.id, c.name, (c.score > 5) IS TRUE FROM `customer` AS `c` WHERE (c.id < 10)"
        );
        // ON over the right table and constants filter the right rows;
        // WHERE over the right table is a column, judged after NULL
        // extension.
        assert_eq!(
            j.right_sql,
            format!(
                "SELECT o.id, (o.id IS NULL) IS TRUE FROM `orders` AS `o` WHERE (o.sku = {}) AND (o.qty > 2) AND (1 = 1)",
                key_marker(0)
            )
        );
        assert_eq!(j.output, vec![Side::Left(0), Side::Right(0)]);
        let outer = j.outer.expect("a left join");
        assert_eq!((outer.on_left, outer.where_right), (Some(2), Some(1)));
        assert!(!outer.swapped);
        assert_eq!(
            outer.null_row_sql,
            "SELECT o.id, (o.id IS NULL) IS TRUE FROM (SELECT 1) AS `tessera_null_row` \
             LEFT JOIN (SELECT * FROM `orders` LIMIT 0) AS `o` ON 1 = 1"
        );
        assert_eq!(
            outer.columns_sql,
            "SELECT o.id, (o.id IS NULL) IS TRUE FROM `customer` AS `c` LEFT JOIN `orders` AS `o` \
             ON (c.name = o.sku) AND (o.qty > 2) AND (c.score > 5) AND (1 = 1) \
             WHERE (c.id < 10 AND o.id IS NULL) LIMIT 0"
        );
        // Several of them are true together or not at all.
        let j = join(
            "SELECT c.id FROM customer c LEFT OUTER JOIN orders o ON c.name = o.sku \
             AND c.score > 5 AND c.city = 'x' WHERE o.qty > 1 AND o.price < 3",
        );
        assert!(
            j.left_sql
                .contains("((c.score > 5) AND (c.city = 'x')) IS TRUE"),
            "{}",
            j.left_sql
        );
        assert!(
            j.right_sql
                .starts_with("SELECT ((o.qty > 1) AND (o.price < 3)) IS TRUE FROM"),
            "{}",
            j.right_sql
        );
        // An inner join filters with all of them.
        let j = join(
            "SELECT c.id, o.id FROM customer c JOIN orders o ON c.name = o.sku \
             AND c.score > 5 WHERE o.id > 3",
        );
        assert!(j.outer.is_none());
        assert!(
            j.left_sql.ends_with("WHERE (c.score > 5)"),
            "{}",
            j.left_sql
        );
        assert!(j.right_sql.ends_with("AND (o.id > 3)"), "{}", j.right_sql);
    }

    #[test]
    fn parameters_of_a_left_join_wait_for_execution_where_they_are_judged() {
        let j = join(
            "SELECT c.id, o.id FROM customer c LEFT JOIN orders o ON c.name = o.sku \
             AND c.score > ? WHERE o.qty = ?",
        );
        let outer = j.outer.expect("a left join");
        let mark = |n: usize| format!("{}{n}{}", text::PARAM_MARK, text::PARAM_END);
        assert!(
            j.left_sql
                .contains(&format!("(c.score > {}) IS TRUE", mark(0))),
            "{}",
            j.left_sql
        );
        assert!(
            j.right_sql
                .contains(&format!("(o.qty = {}) IS TRUE", mark(1))),
            "{}",
            j.right_sql
        );
        // Not a filter of the right query.
        assert!(
            j.right_sql
                .ends_with(&format!("WHERE (o.sku = {})", key_marker(0))),
            "{}",
            j.right_sql
        );
        assert!(
            outer.null_row_sql.contains(&mark(1)),
            "{}",
            outer.null_row_sql
        );
        assert!(
            outer
                .columns_sql
                .ends_with(&format!("WHERE (o.qty = {}) LIMIT 0", mark(1))),
            "{}",
            outer.columns_sql
        );
    }

    #[test]
    fn right_join_is_a_left_join_the_other_way_round() {
        let j = join("SELECT o.id, c.id FROM orders o RIGHT JOIN customer c ON c.name = o.sku");
        let outer = j.outer.expect("an outer join");
        assert!(outer.swapped);
        assert_eq!(j.left_sql, "SELECT c.id, c.name FROM `customer` AS `c`");
        assert_eq!(j.output, vec![Side::Right(0), Side::Left(0)]);
        // USING equates the column of each table.
        let j = join("SELECT c.id, o.sku FROM customer c LEFT JOIN orders o USING (qty)");
        assert_eq!(j.keys.len(), 1);
        assert_eq!(j.left_sql, "SELECT c.id, c.qty FROM `customer` AS `c`");
        assert!(j.right_sql.contains("o.qty = "), "{}", j.right_sql);
    }

    #[test]
    fn aggregates_over_a_left_join_take_its_column_shapes() {
        let j = join(
            "SELECT c.name, COUNT(o.id), SUM(o.qty) FROM customer c LEFT JOIN orders o \
             ON c.name = o.sku GROUP BY c.name",
        );
        let m = j.merge.expect("a merge");
        assert_eq!(
            m.cells,
            vec![
                Cell::Value(Side::Left(0)),
                Cell::CountOf(Side::Right(0)),
                Cell::Value(Side::Right(1)),
            ]
        );
        assert!(
            m.shape_sql
                .contains("FROM `customer` AS `c` LEFT JOIN `orders` AS `o` ON 1 = 0 WHERE 1 = 0"),
            "{}",
            m.shape_sql
        );
        assert!(j.outer.is_some());
    }

    #[test]
    fn left_join_shapes_it_cannot_answer_run_over_gathered_rows() {
        for sql in [
            // WHERE over both tables after NULL extension.
            "SELECT c.id FROM customer c LEFT JOIN orders o ON c.name = o.sku WHERE c.score < o.qty",
            "SELECT c.id FROM customer c LEFT JOIN orders o ON c.name = o.sku WHERE c.id = 1 OR o.id IS NULL",
            // ON over both tables that is not an equality of columns.
            "SELECT c.id FROM customer c LEFT JOIN orders o ON c.name = o.sku AND c.score < o.qty",
            // In parentheses.
            "SELECT c.id FROM (customer c LEFT JOIN orders o ON c.name = o.sku)",
            "SELECT c.id FROM customer c LEFT JOIN orders o ON c.name = o.sku ORDER BY o.qty + 1",
        ] {
            assert_gathered(sql);
        }
        // No condition is applied while gathering a table an outer join may
        // NULL-extend.
        let Ok(Plan::Materialize(m)) = planned(
            "SELECT c.id FROM customer c LEFT JOIN orders o ON c.name = o.sku WHERE o.qty < 3 AND c.score < o.qty",
        ) else {
            panic!("not gathered");
        };
        assert!(
            !m.gathered[1].sql.contains("WHERE"),
            "{}",
            m.gathered[1].sql
        );
    }

    #[test]
    fn vexplain_shows_how_a_left_join_keeps_its_rows() {
        let text = planned(
            "VEXPLAIN SELECT c.id, o.id FROM customer c LEFT JOIN orders o ON c.name = o.sku \
             AND c.score > 1 WHERE o.id IS NULL",
        )
        .unwrap()
        .explain();
        assert!(
            text.starts_with("Left join in the gate (nested loop on 1 key(s))"),
            "{text}"
        );
        assert!(
            text.contains("right side of a left row no right row matches: SELECT o.id, (o.id IS NULL) IS TRUE FROM (SELECT 1)"),
            "{text}"
        );
        assert!(
            text.contains("rows match only when left column 2 is 1 (ON)"),
            "{text}"
        );
        assert!(
            text.contains("joined rows kept only when right column 1 is 1 (WHERE)"),
            "{text}"
        );
    }

    #[test]
    fn vexplain_shows_the_merge_of_joined_rows() {
        let p = planned(
            "VEXPLAIN SELECT o.sku, COUNT(*) FROM customer c JOIN orders o ON c.name = o.sku GROUP BY o.sku",
        )
        .unwrap();
        let text = p.explain();
        assert!(
            text.contains("joined rows merged in gate: aggregate (1 aggregates, group by [0])"),
            "{text}"
        );
        assert!(
            text.contains("columns from: SELECT o.sku, COUNT(*) FROM"),
            "{text}"
        );
    }
}
