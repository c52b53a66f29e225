//! Joins the shards cannot do alone (two sharded tables not joined on their
//! vindex): the gate reads the left table's rows, then for each distinct
//! join key asks the right table's shards for the matching rows (a nested
//! loop with the key written in as a literal, so the servers compare values
//! with their own types and collations), and assembles the rows itself.
//!
//! Kept deliberately narrow, so that what it accepts it answers exactly:
//! an inner join of two tables, a select list of plain columns, conditions
//! that each read one side or equate a column of each side, and ORDER BY /
//! LIMIT over the selected columns.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Distinct, Expr, GroupByExpr, OrderByKind, Query, Select, SelectItem,
    visit_expressions,
};

use super::select::column_ref;
use super::text::{self, OwnedValue};
use super::{PlanContext, PlanError, PlanResult, ResolvedTable};
use crate::merge::OrderKey;

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
    pub order_by: Vec<OrderKey>,
    pub offset: u64,
    pub limit: Option<u64>,
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

/// Plans a gate-side join of exactly two tables, or explains why not.
pub(super) fn plan_join(
    ctx: &PlanContext<'_>,
    query: &Query,
    select: &Select,
    tables: [&ResolvedTable; 2],
    conditions: &[&Expr],
) -> PlanResult<JoinPlan> {
    let unsupported = |what: &str| PlanError::unsupported(format!("{what} in a cross-shard join"));
    if !matches!(select.distinct, None | Some(Distinct::All)) {
        return Err(unsupported("DISTINCT"));
    }
    if select.having.is_some()
        || !matches!(&select.group_by, GroupByExpr::Expressions(l, _) if l.is_empty())
    {
        return Err(unsupported("GROUP BY or HAVING"));
    }
    if !query.locks.is_empty() || select.into.is_some() {
        return Err(unsupported("locking reads or INTO"));
    }
    // Columns each side's query selects.
    let mut left_cols: Vec<String> = Vec::new();
    let mut right_cols: Vec<String> = Vec::new();
    let mut sources = Vec::new();
    let add = |side: usize, column: &str, cols: (&mut Vec<String>, &mut Vec<String>)| {
        let list = if side == 0 { cols.0 } else { cols.1 };
        let text = format!("{}.{}", tables[side].refname, column);
        match list.iter().position(|c| *c == text) {
            Some(i) => i,
            None => {
                list.push(text);
                list.len() - 1
            }
        }
    };
    let mut output = Vec::new();
    let mut names = Vec::new();
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
        let index = add(side, &column, (&mut left_cols, &mut right_cols));
        output.push(if side == 0 {
            Side::Left(index)
        } else {
            Side::Right(index)
        });
        sources.push((tables[side].name.clone(), column.clone()));
        names.push(alias.unwrap_or(column));
    }
    let mut left_conds = Vec::new();
    let mut right_conds = Vec::new();
    let mut keys: Vec<(String, usize)> = Vec::new();
    for cond in conditions {
        let sides = sides_in(ctx, &tables, cond)
            .ok_or_else(|| unsupported(&format!("condition {cond}")))?;
        match (sides.contains(&0), sides.contains(&1)) {
            (_, false) => left_conds.push(cond.to_string()),
            (false, true) => right_conds.push(cond.to_string()),
            (true, true) => {
                // Only `left.a = right.b` (either way round) joins.
                let Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq,
                    right,
                } = cond
                else {
                    return Err(unsupported(&format!("condition {cond}")));
                };
                let (Some((ql, cl)), Some((qr, cr))) = (column_ref(left), column_ref(right)) else {
                    return Err(unsupported(&format!("condition {cond}")));
                };
                let sl = side_of(ctx, &tables, ql, &cl);
                let sr = side_of(ctx, &tables, qr, &cr);
                let (lcol, rcol) = match (sl, sr) {
                    (Some(0), Some(1)) => (cl, cr),
                    (Some(1), Some(0)) => (cr, cl),
                    _ => return Err(unsupported(&format!("condition {cond}"))),
                };
                let li = add(0, &lcol, (&mut left_cols, &mut right_cols));
                let marker = key_marker(keys.len());
                right_conds.push(format!("{}.{} = {marker}", tables[1].refname, rcol));
                keys.push((marker, li));
            }
        }
    }
    if left_cols.is_empty() {
        left_cols.push("1".to_string());
    }
    if right_cols.is_empty() {
        right_cols.push("1".to_string());
    }
    let factor = |t: &ResolvedTable| {
        if t.refname == t.name {
            format!("`{}`", t.name)
        } else {
            format!("`{}` AS `{}`", t.name, t.refname)
        }
    };
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
    // ORDER BY over the output columns.
    let mut order_by = Vec::new();
    if let Some(ob) = &query.order_by {
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
    let (offset, limit) = super::select::limit_values(query)?;
    Ok(JoinPlan {
        keyspace: std::sync::Arc::from(tables[0].keyspace.name.as_str()),
        left_sql,
        right_sql,
        right_shape_sql,
        keys,
        output,
        sources,
        order_by,
        offset,
        limit,
    })
}
