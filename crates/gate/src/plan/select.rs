//! Planning of SELECT and UNION on sharded keyspaces: which tables, whether
//! they can run together on each shard (co-located by vindex, reference
//! tables), which shards, and the shard query plus merge for a scatter.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use sqlparser::ast::{
    BinaryOperator, Distinct, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    Ident, JoinConstraint, JoinOperator, LimitClause, ObjectName, OrderByKind, Query, Select,
    SelectItem, SetExpr, SetOperator, SetQuantifier, Spanned, TableFactor, Visit, VisitMut,
    VisitorMut, visit_expressions, visit_relations,
};

use super::text::{self, OwnedValue};
use super::{
    ColumnRef, ColumnSlot, MergeTemplate, Plan, PlanContext, PlanError, PlanResult, ResolvedTable,
    Route, RouteValue, Routing, TableKindRef,
};
use crate::merge::{Aggregate, AggregateKind, MergeSpec, OrderKey};
use crate::vindex::Vindex;

/// Aggregate functions the merge can combine.
const MERGEABLE: &[&str] = &["count", "sum", "min", "max", "avg"];
/// Aggregate (and window) functions a scatter cannot combine.
const UNMERGEABLE: &[&str] = &[
    "group_concat",
    "std",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "bit_and",
    "bit_or",
    "bit_xor",
    "json_arrayagg",
    "json_objectagg",
];

pub(super) fn plan_query(ctx: &PlanContext<'_>, sql: &str, query: Query) -> PlanResult<Plan> {
    let tables = collect_tables(ctx, &query)?;
    let non_system: Vec<&ResolvedTable> = tables.iter().filter(|t| !t.system).collect();
    let keyspaces: HashSet<&str> = non_system
        .iter()
        .map(|t| t.keyspace.name.as_str())
        .collect();
    if keyspaces.len() > 1 {
        let mut names: Vec<&str> = keyspaces.into_iter().collect();
        names.sort();
        return Err(PlanError::unsupported(format!(
            "a query across keyspaces ({})",
            names.join(", ")
        )));
    }
    let keyspace = match non_system.first() {
        Some(t) => t.keyspace.clone(),
        None => match tables.first() {
            Some(t) => t.keyspace.clone(),
            None => ctx.default_keyspace()?,
        },
    };
    let ks_name: Arc<str> = Arc::from(keyspace.name.as_str());
    if let Some(e) = &keyspace.error {
        return Err(PlanError::other(e.clone()));
    }
    let route = |routing: Routing, note: &str| {
        Plan::Route(Route {
            keyspace: ks_name.clone(),
            routing,
            sql: None,
            merge: None,
            write: false,
            note: note.to_string(),
        })
    };
    if !keyspace.sharded {
        return Ok(match keyspace.shards.first() {
            Some((shard, _)) if keyspace.shards.len() == 1 => {
                route(Routing::Shard(shard.clone()), "unsharded keyspace")
            }
            _ => route(Routing::AnyShard, "unsharded keyspace"),
        });
    }
    let sharded: Vec<&ResolvedTable> = non_system
        .iter()
        .copied()
        .filter(|t| t.kind() == TableKindRef::Sharded)
        .collect();
    if sharded.is_empty() {
        return Ok(route(
            Routing::AnyShard,
            "reference tables or no tables: any one shard",
        ));
    }
    if query.with.is_some() {
        // MariaDB evaluates the CTEs over the sharded tables' rows, gathered.
        return gather_rows_of_tables(ctx, sql, &ks_name, &query)
            .map(|m| Plan::Materialize(Box::new(m)))
            .ok_or_else(|| {
                PlanError::unsupported("WITH (common table expressions) on sharded tables")
            });
    }
    if query.fetch.is_some() {
        return Err(PlanError::unsupported("FETCH on sharded tables"));
    }
    match query.body.as_ref() {
        SetExpr::Select(select) => plan_select(ctx, sql, &query, select, &ks_name),
        SetExpr::SetOperation { .. } => match plan_union(ctx, sql, &query, &ks_name, &tables) {
            // What the merge cannot do runs over each branch's rows.
            Err(e) if e.code == 1235 && query.locks.is_empty() => {
                super::materialize::over_union(&ks_name, &query)
                    .map(|m| Plan::Materialize(Box::new(m)))
                    .ok_or(e)
            }
            other => other,
        },
        SetExpr::Query(_) => Err(PlanError::unsupported(
            "a parenthesized query on sharded tables",
        )),
        other => Err(PlanError::unsupported(format!("{other} on sharded tables"))),
    }
}

/// Every table the query names, anywhere in it, resolved.
fn collect_tables(ctx: &PlanContext<'_>, query: &Query) -> PlanResult<Vec<ResolvedTable>> {
    let mut names: Vec<ObjectName> = Vec::new();
    let _ = visit_relations(query, |name| {
        names.push(name.clone());
        ControlFlow::<()>::Continue(())
    });
    // CTE names are not tables.
    let cte_names: HashSet<String> = query
        .with
        .as_ref()
        .map(|w| {
            w.cte_tables
                .iter()
                .map(|c| c.alias.name.value.clone())
                .collect()
        })
        .unwrap_or_default();
    names
        .iter()
        .filter(|n| !(n.0.len() == 1 && cte_names.contains(&n.to_string())))
        .map(|n| ctx.resolve(n, None))
        .collect()
}

/// A FROM-clause table of the top-level SELECT with the name it is
/// referred to by.
struct FromTable {
    table: ResolvedTable,
    /// The table is the preserved side of an outer join (LEFT JOIN's left).
    preserved_outer: bool,
    /// The table is the optional side of an outer join.
    optional_outer: bool,
}

fn from_tables(ctx: &PlanContext<'_>, select: &Select) -> PlanResult<(Vec<FromTable>, Vec<Expr>)> {
    let mut out = Vec::new();
    let mut join_conditions = Vec::new();
    for twj in &select.from {
        let first = out.len();
        push_factor(ctx, &twj.relation, &mut out)?;
        for join in &twj.joins {
            let before = out.len();
            push_factor(ctx, &join.relation, &mut out)?;
            let (constraint, outer) = match &join.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => (Some(c), None),
                JoinOperator::CrossJoin(c) => (Some(c), None),
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (Some(c), Some(true)),
                JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (Some(c), Some(false)),
                JoinOperator::StraightJoin(c) => (Some(c), None),
                other => {
                    return Err(PlanError::unsupported(format!(
                        "join type {other:?} on sharded tables"
                    )));
                }
            };
            match outer {
                Some(true) => {
                    for t in &mut out[first..before] {
                        t.preserved_outer = true;
                    }
                    for t in &mut out[before..] {
                        t.optional_outer = true;
                    }
                }
                Some(false) => {
                    for t in &mut out[first..before] {
                        t.optional_outer = true;
                    }
                    for t in &mut out[before..] {
                        t.preserved_outer = true;
                    }
                }
                None => {}
            }
            match constraint {
                Some(JoinConstraint::On(e)) => join_conditions.push(e.clone()),
                Some(JoinConstraint::Using(cols)) => {
                    // USING (c): equal c on both sides, for co-location.
                    let (Some(left), Some(right)) = (out.get(before - 1), out.get(before)) else {
                        continue;
                    };
                    for c in cols {
                        let name = c.to_string();
                        join_conditions.push(Expr::BinaryOp {
                            left: Box::new(Expr::CompoundIdentifier(vec![
                                Ident::new(left.table.refname.clone()),
                                Ident::new(name.clone()),
                            ])),
                            op: BinaryOperator::Eq,
                            right: Box::new(Expr::CompoundIdentifier(vec![
                                Ident::new(right.table.refname.clone()),
                                Ident::new(name),
                            ])),
                        });
                    }
                }
                Some(JoinConstraint::Natural) => {
                    return Err(PlanError::unsupported("NATURAL JOIN on sharded tables"));
                }
                _ => {}
            }
        }
    }
    Ok((out, join_conditions))
}

fn push_factor(
    ctx: &PlanContext<'_>,
    factor: &TableFactor,
    out: &mut Vec<FromTable>,
) -> PlanResult<()> {
    match factor {
        TableFactor::Table { name, alias, .. } => {
            let refname = alias.as_ref().map(|a| a.name.value.clone());
            let table = ctx.resolve(name, refname)?;
            out.push(FromTable {
                table,
                preserved_outer: false,
                optional_outer: false,
            });
            Ok(())
        }
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => {
            push_factor(ctx, &table_with_joins.relation, out)?;
            for j in &table_with_joins.joins {
                push_factor(ctx, &j.relation, out)?;
            }
            Ok(())
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            // A derived table that reads no sharded table (`(SELECT 'K' AS
            // kind) AS k`, reference tables) is the same on every shard, like
            // a reference table. Over sharded ones, see `plan_derived`.
            if reads_sharded(ctx, subquery) {
                return Err(PlanError::unsupported(
                    "a derived table (subquery in FROM) over tables in a query on sharded tables",
                ));
            }
            let name = alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_default();
            out.push(FromTable {
                table: ResolvedTable {
                    keyspace: ctx.default_keyspace()?,
                    info: None,
                    name: name.clone(),
                    refname: name,
                    system: true,
                },
                preserved_outer: false,
                optional_outer: false,
            });
            Ok(())
        }
        other => Err(PlanError::unsupported(format!("table factor {other}"))),
    }
}

/// The sharded tables among a FROM clause's.
fn sharded_tables(from: &[FromTable]) -> Vec<&ResolvedTable> {
    from.iter()
        .map(|f| &f.table)
        .filter(|t| t.kind() == TableKindRef::Sharded)
        .collect()
}

/// The AND-ed parts of a SELECT's join conditions and WHERE, which decide
/// whether its tables are joined on their vindex.
fn join_and_where<'a>(join_conditions: &'a [Expr], select: &'a Select) -> Vec<&'a Expr> {
    let mut conditions: Vec<&Expr> = join_conditions.iter().flat_map(conjuncts).collect();
    if let Some(w) = &select.selection {
        conditions.extend(conjuncts(w));
    }
    conditions
}

/// Splits a condition into its AND-ed parts.
pub(super) fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        Expr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

/// A column reference: (qualifier, column), lowercased column.
pub(super) fn column_ref(expr: &Expr) -> Option<(Option<&str>, String)> {
    match expr {
        Expr::Identifier(i) => Some((None, i.value.to_ascii_lowercase())),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [t, c] => Some((Some(t.value.as_str()), c.value.to_ascii_lowercase())),
            [_, t, c] => Some((Some(t.value.as_str()), c.value.to_ascii_lowercase())),
            _ => None,
        },
        Expr::Nested(inner) => column_ref(inner),
        _ => None,
    }
}

/// Which of `tables` a column reference belongs to, when it can be told
/// (a qualifier, or only one table has that primary vindex column).
fn owner_of<'t>(
    tables: &'t [&'t ResolvedTable],
    qualifier: Option<&str>,
    column: &str,
) -> Option<&'t ResolvedTable> {
    match qualifier {
        Some(q) => tables.iter().copied().find(|t| t.refname == q),
        None if tables.len() == 1 => Some(tables[0]),
        None => {
            let mut with_column = tables.iter().copied().filter(|t| {
                t.info
                    .as_ref()
                    .and_then(|i| i.primary())
                    .is_some_and(|(c, _)| c == column)
            });
            match (with_column.next(), with_column.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
}

fn is_primary_column(table: &ResolvedTable, column: &str) -> bool {
    table
        .info
        .as_ref()
        .and_then(|i| i.primary())
        .is_some_and(|(c, _)| c == column)
}

/// The vindex that routes by a condition on `column`: the primary vindex,
/// or a single-column secondary one (a lookup is asked at execution).
fn routing_vindex(table: &ResolvedTable, column: &str) -> Option<Arc<dyn Vindex>> {
    table
        .info
        .as_ref()?
        .column_vindexes
        .iter()
        .filter(|cv| matches!(cv.columns.as_slice(), [c] if c == column))
        .min_by_key(|cv| cv.vindex.cost())
        .map(|cv| cv.vindex.clone())
}

/// The routing a WHERE clause allows: equality or IN on a table's vindex
/// column, the cheapest vindex (then the fewest values) winning.
pub(super) fn vindex_routing(
    tables: &[&ResolvedTable],
    selection: Option<&Expr>,
) -> Option<Routing> {
    let selection = selection?;
    let mut best: Option<Routing> = None;
    for part in conjuncts(selection) {
        let found = match part {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => [(left, right), (right, left)]
                .into_iter()
                .find_map(|(c, v)| {
                    let (q, col) = column_ref(c)?;
                    let table = owner_of(tables, q, &col)?;
                    let vindex = routing_vindex(table, &col)?;
                    let value = route_value(v)?;
                    Some(Routing::Vindex {
                        vindex,
                        values: vec![value],
                    })
                }),
            Expr::InList {
                expr,
                list,
                negated: false,
            } => (|| {
                let (q, col) = column_ref(expr)?;
                let table = owner_of(tables, q, &col)?;
                let vindex = routing_vindex(table, &col)?;
                let values: Option<Vec<RouteValue>> = list.iter().map(route_value).collect();
                Some(Routing::Vindex {
                    vindex,
                    values: values?,
                })
            })(),
            _ => None,
        };
        if let Some(r) = found {
            let better = match (&best, &r) {
                (None, _) => true,
                (
                    Some(Routing::Vindex {
                        values: a,
                        vindex: va,
                    }),
                    Routing::Vindex {
                        values: b,
                        vindex: vb,
                    },
                ) => (vb.cost(), b.len()) < (va.cost(), a.len()),
                _ => false,
            };
            if better {
                best = Some(r);
            }
        }
    }
    best
}

fn route_value(expr: &Expr) -> Option<RouteValue> {
    match text::literal(expr)? {
        Ok(v) => Some(RouteValue::Literal(v)),
        Err(i) => Some(RouteValue::Param(i)),
    }
}

/// Checks that the sharded tables of a SELECT are co-located: each pair
/// joined (through equalities) on their primary vindex columns with the same
/// vindex function.
fn check_colocated(sharded: &[&ResolvedTable], conditions: &[&Expr]) -> PlanResult<()> {
    if sharded.len() < 2 {
        return Ok(());
    }
    // Union-find over the tables by vindex-column equalities.
    let mut group: Vec<usize> = (0..sharded.len()).collect();
    fn find(g: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while g[r] != r {
            r = g[r];
        }
        g[i] = r;
        r
    }
    for cond in conditions {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = cond
            && let (Some((ql, cl)), Some((qr, cr))) = (column_ref(left), column_ref(right))
            && let (Some(tl), Some(tr)) = (owner_of(sharded, ql, &cl), owner_of(sharded, qr, &cr))
            && is_primary_column(tl, &cl)
            && is_primary_column(tr, &cr)
        {
            let (Some((_, vl)), Some((_, vr))) = (
                tl.info.as_ref().and_then(|i| i.primary()),
                tr.info.as_ref().and_then(|i| i.primary()),
            ) else {
                continue;
            };
            if vl.kind() != vr.kind() || vl.needs_lookup() {
                continue;
            }
            let li = sharded
                .iter()
                .position(|t| std::ptr::eq(*t, tl))
                .unwrap_or(0);
            let ri = sharded
                .iter()
                .position(|t| std::ptr::eq(*t, tr))
                .unwrap_or(0);
            let (a, b) = (find(&mut group, li), find(&mut group, ri));
            group[a] = b;
        }
    }
    let root = find(&mut group, 0);
    for i in 1..sharded.len() {
        if find(&mut group, i) != root {
            return Err(PlanError::unsupported(format!(
                "a join of sharded tables '{}' and '{}' that are not joined on their primary vindex columns (cross-shard joins)",
                sharded[0].refname, sharded[i].refname
            )));
        }
    }
    Ok(())
}

/// The subqueries in a SELECT's expressions (not nested ones' insides).
fn subqueries_of(select: &Select) -> Vec<Query> {
    let mut out = Vec::new();
    let _ = visit_expressions(select, |e| {
        match e {
            Expr::Subquery(q)
            | Expr::InSubquery { subquery: q, .. }
            | Expr::Exists { subquery: q, .. } => out.push(q.as_ref().clone()),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// Whether a subquery finds all its rows on each shard the outer query
/// runs on: it reads only reference tables, or each of its sharded tables
/// is joined to an outer sharded table on their primary vindex columns.
pub(super) fn subquery_stays_on_shard(
    ctx: &PlanContext<'_>,
    outer: &[&ResolvedTable],
    query: &Query,
) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let Ok((from, join_conditions)) = from_tables(ctx, select) else {
        return false;
    };
    if from
        .iter()
        .any(|f| f.table.kind() == TableKindRef::Unsharded)
    {
        return false;
    }
    let inner = sharded_tables(&from);
    if inner.is_empty() {
        return subqueries_of(select)
            .iter()
            .all(|q| subquery_stays_on_shard(ctx, outer, q));
    }
    if outer.is_empty() {
        return false;
    }
    let mut all: Vec<&ResolvedTable> = outer.to_vec();
    all.extend(inner);
    check_colocated(&all, &join_and_where(&join_conditions, select)).is_ok()
        && subqueries_of(select)
            .iter()
            .all(|q| subquery_stays_on_shard(ctx, outer, q))
}

/// Whether any expression below `node` is a subquery (IN, EXISTS, scalar).
pub(super) fn contains_subquery<V: Visit>(node: &V) -> bool {
    visit_expressions(node, |e| {
        if matches!(
            e,
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }
        ) {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .is_break()
}

fn plan_select(
    ctx: &PlanContext<'_>,
    sql: &str,
    query: &Query,
    select: &Select,
    keyspace: &Arc<str>,
) -> PlanResult<Plan> {
    if let Some(plan) = plan_derived(ctx, sql, query, select, keyspace)? {
        return Ok(plan);
    }
    let (from, join_conditions) = from_tables(ctx, select)?;
    let tables: Vec<&ResolvedTable> = from.iter().map(|f| &f.table).collect();
    let sharded = sharded_tables(&from);
    let conditions = join_and_where(&join_conditions, select);
    if let Err(not_colocated) = check_colocated(&sharded, &conditions) {
        // Two tables the shards cannot join: the gate joins them (inner or
        // LEFT/RIGHT joins; the join planner refuses other outer shapes).
        // What it cannot join runs over the tables' rows, gathered.
        let joined = if from.len() == 2 && !contains_subquery(select) {
            let pair = [&from[0].table, &from[1].table];
            super::join::plan_join(ctx, sql, query, select, pair, &conditions).map(|mut j| {
                // The merge may still find a computed text column it cannot
                // compare: then the rows are gathered.
                if let Some(m) = &mut j.merge {
                    m.template.gather_instead =
                        gather_rows_of_tables(ctx, sql, keyspace, query).map(Arc::new);
                }
                Plan::Join(Box::new(j))
            })
        } else {
            Err(not_colocated)
        };
        return match joined {
            Err(e) if e.code == 1235 => gather_rows_of_tables(ctx, sql, keyspace, query)
                .map(|m| Plan::Materialize(Box::new(m)))
                .ok_or(e),
            other => other,
        };
    }
    let routing = vindex_routing(&sharded, select.selection.as_ref()).unwrap_or(Routing::Scatter);
    let single = match &routing {
        Routing::Vindex { vindex, values } => values.len() == 1 && vindex.is_unique(),
        _ => false,
    };
    if !single
        && let Some(t) = from
            .iter()
            .find(|f| f.preserved_outer && f.table.kind() == TableKindRef::Reference)
        && from
            .iter()
            .any(|f| f.optional_outer && f.table.kind() == TableKindRef::Sharded)
    {
        return Err(PlanError::unsupported(format!(
            "an outer join keeping every row of reference table '{}' against a sharded table on several shards",
            t.table.refname
        )));
    }
    // A subquery runs inside each shard's query only when it finds there
    // every row it needs: over reference tables, or joined to the outer
    // query on the same vindex. Others are evaluated first by the gate.
    let subqueries = subqueries_of(select);
    if !subqueries
        .iter()
        .all(|q| subquery_stays_on_shard(ctx, &sharded, q))
    {
        let stays = |q: &Query| subquery_stays_on_shard(ctx, &sharded, q);
        // What the gate cannot evaluate first (correlated subqueries,
        // subqueries outside WHERE) runs over the tables' rows, gathered.
        let gathered = || {
            gather_rows_of_tables(ctx, sql, keyspace, query).map(|m| Plan::Materialize(Box::new(m)))
        };
        return match super::subquery::pull_out(ctx, keyspace, query, select, &stays) {
            Ok(Some(plan)) => Ok(plan),
            Ok(None) => gathered().ok_or_else(|| {
                PlanError::unsupported(
                    "a subquery over sharded tables outside WHERE, not joined to the outer query on its vindex",
                )
            }),
            Err(e) if e.code == 1235 => gathered().ok_or(e),
            Err(e) => Err(e),
        };
    }
    let note = match &routing {
        Routing::Vindex { .. } => "routed by the primary vindex",
        _ => "no vindex condition: every shard",
    };
    let merge = if single {
        None
    } else {
        let names: Vec<(String, String)> = tables
            .iter()
            .map(|t| (t.refname.clone(), t.name.clone()))
            .collect();
        match scatter_rewrite(sql, query, select, &names) {
            Ok((text, mut m)) => {
                // The merge may still find it cannot compare a computed text
                // column (its collation is unknown): then the rows are gathered.
                m.gather_instead = gather_rows_of_table(sql, keyspace, query, select, &tables)
                    .or_else(|| gather_rows_of_tables(ctx, sql, keyspace, query))
                    .map(Arc::new);
                Some((text, m))
            }
            Err(e) if e.code == 1235 => {
                return gather_rows_of_table(sql, keyspace, query, select, &tables)
                    .or_else(|| gather_rows_of_tables(ctx, sql, keyspace, query))
                    .map(|m| Plan::Materialize(Box::new(m)))
                    .ok_or(e);
            }
            Err(e) => return Err(e),
        }
    };
    let (sql_out, merge) = match merge {
        Some((text, m)) => (Some(text), Some(m)),
        None => (None, None),
    };
    Ok(Plan::Route(Route {
        keyspace: keyspace.clone(),
        routing,
        sql: sql_out,
        merge,
        write: false,
        note: note.to_string(),
    }))
}

/// A query over one sharded table whose answer the merge cannot compute
/// from the shards' answers: the gate gathers the rows its WHERE keeps and
/// one shard computes the rest over them. None when the query reads more
/// than the table's rows (joins, subqueries) or would lock or store them.
fn gather_rows_of_table(
    sql: &str,
    keyspace: &Arc<str>,
    query: &Query,
    select: &Select,
    tables: &[&ResolvedTable],
) -> Option<super::materialize::MaterializePlan> {
    let [table] = tables else {
        return None;
    };
    let [from] = select.from.as_slice() else {
        return None;
    };
    if !from.joins.is_empty()
        || !matches!(from.relation, TableFactor::Table { .. })
        || !query.locks.is_empty()
        || select.into.is_some()
        || contains_subquery(select)
        || contains_subquery(query)
    {
        return None;
    }
    let mut m = super::materialize::over_table(keyspace, query, &from.relation, &table.refname)?;
    m.names = item_names(sql, query);
    Some(m)
}

/// A SELECT the shards and the gate's join cannot answer (a join whose
/// expressions read both tables, an outer join of a shape the join planner
/// refuses, a derived table joined to a sharded table), answered over the
/// rows of each sharded table (or derived table over them) gathered by the
/// gate, with the whole query run over them on one shard. WHERE conditions
/// that read one gathered table alone, by its name, are also applied while
/// gathering it (when no outer join could NULL-extend it). None when the
/// query has subqueries or would lock or store rows.
fn gather_rows_of_tables(
    ctx: &PlanContext<'_>,
    sql: &str,
    keyspace: &Arc<str>,
    query: &Query,
) -> Option<super::materialize::MaterializePlan> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    if !query.locks.is_empty() || select.into.is_some() {
        return None;
    }
    fn has_outer(factor: &TableFactor) -> bool {
        matches!(factor, TableFactor::NestedJoin { table_with_joins, .. }
            if table_with_joins.joins.iter().any(|j| is_outer(&j.join_operator) || has_outer(&j.relation))
                || has_outer(&table_with_joins.relation))
    }
    fn is_outer(op: &JoinOperator) -> bool {
        !matches!(
            op,
            JoinOperator::Join(_)
                | JoinOperator::Inner(_)
                | JoinOperator::CrossJoin(_)
                | JoinOperator::StraightJoin(_)
        )
    }
    let outer_joins = select.from.iter().any(|t| {
        has_outer(&t.relation)
            || t.joins
                .iter()
                .any(|j| is_outer(&j.join_operator) || has_outer(&j.relation))
    });
    let where_parts: Vec<&Expr> = select.selection.as_ref().map(conjuncts).unwrap_or_default();
    // The conditions reading only `refname`'s columns, named by it, and
    // calling no function (so applying them twice changes nothing).
    let own_conditions = |refname: &str| -> Vec<String> {
        if outer_joins {
            return Vec::new();
        }
        where_parts
            .iter()
            .filter(|c| {
                let mut columns = 0;
                let other = visit_expressions(**c, |e| match e {
                    Expr::CompoundIdentifier(parts)
                        if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case(refname) =>
                    {
                        columns += 1;
                        ControlFlow::Continue(())
                    }
                    Expr::Identifier(_)
                    | Expr::CompoundIdentifier(_)
                    | Expr::Function(_)
                    | Expr::Subquery(_)
                    | Expr::InSubquery { .. }
                    | Expr::Exists { .. } => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                })
                .is_break();
                !other && columns > 0
            })
            .map(|c| format!("({c})"))
            .collect()
    };
    let mut failed = false;
    let (outer, gathered) = super::materialize::replace_factors(query, |factor| match factor {
        TableFactor::Table { name, alias, .. } => {
            let table = ctx
                .resolve(name, alias.as_ref().map(|a| a.name.value.clone()))
                .ok()?;
            if table.kind() != TableKindRef::Sharded {
                return None;
            }
            let own = own_conditions(&table.refname);
            let gather = if own.is_empty() {
                format!("SELECT * FROM {factor}")
            } else {
                format!("SELECT * FROM {factor} WHERE {}", own.join(" AND "))
            };
            Some((
                super::materialize::Gathered::table_rows(gather),
                table.refname,
            ))
        }
        // Gathered whole when the gate can gather its rows as one query; else
        // its own tables are gathered below.
        TableFactor::Derived {
            subquery,
            alias: Some(a),
            ..
        } if reads_sharded(ctx, subquery)
            && matches!(
                plan_query(ctx, &subquery.to_string(), (**subquery).clone()),
                Ok(Plan::Route(_) | Plan::Materialize(_) | Plan::Join(_))
            ) =>
        {
            Some((
                super::materialize::Gathered::query(subquery.to_string()),
                a.name.value.clone(),
            ))
        }
        TableFactor::Derived { alias: Some(_), .. } => None,
        // MariaDB requires a derived table to be named: it refuses this.
        TableFactor::Derived { subquery, .. } if reads_sharded(ctx, subquery) => {
            failed = true;
            None
        }
        TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => None,
        _ => {
            failed = true;
            None
        }
    });
    if failed {
        return None;
    }
    // Sharded tables in subqueries (correlated ones included) are gathered
    // whole: the subqueries then run over their rows on the one shard.
    let mut rest = GatherSharded {
        ctx,
        gathered,
        failed: false,
    };
    let mut outer = outer;
    let _ = VisitMut::visit(&mut outer, &mut rest);
    let GatherSharded {
        gathered, failed, ..
    } = rest;
    if failed || gathered.is_empty() {
        return None;
    }
    Some(super::materialize::MaterializePlan {
        keyspace: keyspace.clone(),
        gathered,
        outer: outer.to_string(),
        names: item_names(sql, query),
        note: "the sharded tables' rows gathered by the gate, the query run over them on one shard",
    })
}

/// Replaces each sharded table it visits by its rows, gathered whole.
struct GatherSharded<'c, 'a> {
    ctx: &'c PlanContext<'a>,
    gathered: Vec<super::materialize::Gathered>,
    failed: bool,
}

impl VisitorMut for GatherSharded<'_, '_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let refname = alias.as_ref().map(|a| a.name.value.clone());
        let Ok(table) = self.ctx.resolve(name, refname) else {
            // The gathered rows already in place, a CTE's name: not a table.
            return ControlFlow::Continue(());
        };
        if table.kind() == TableKindRef::Sharded {
            let sql = format!("SELECT * FROM {factor}");
            *factor = super::materialize::rows_factor(self.gathered.len(), &table.refname);
            self.gathered
                .push(super::materialize::Gathered::table_rows(sql));
        } else if table.kind() == TableKindRef::Unsharded {
            self.failed = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// The name MariaDB gives each select item of `query` that is an
/// expression without alias: the item's text as the client wrote it. The
/// gathered rows' query is printed again (tables replaced), so the answer's
/// columns are renamed to these. Empty when the items cannot be matched to
/// the answer's columns one by one (a `*`).
fn item_names(sql: &str, query: &Query) -> Vec<Option<super::materialize::ItemName>> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Vec::new();
    };
    let written: Vec<&str> = text::offset_of(sql, select.select_token.0.span.end)
        .map(|at| text::select_list_texts(sql, at))
        .unwrap_or_default();
    if written.len() != select.projection.len()
        || select.projection.iter().any(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
    {
        return Vec::new();
    }
    // Parameters are numbered in the order they are written, and the
    // select list comes first.
    let mut params = 0;
    select
        .projection
        .iter()
        .zip(written)
        .map(|(item, text)| {
            let first_param = params;
            params += text.matches('?').count();
            match item {
                SelectItem::UnnamedExpr(expr) if column_ref(expr).is_none() => {
                    Some(super::materialize::ItemName {
                        text: text.to_string(),
                        first_param,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// Whether a query reads a sharded table anywhere.
fn reads_sharded(ctx: &PlanContext<'_>, query: &Query) -> bool {
    let mut sharded = false;
    let _ = visit_relations(query, |name| {
        if ctx
            .resolve(name, None)
            .is_ok_and(|t| t.kind() == TableKindRef::Sharded)
        {
            sharded = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    sharded
}

/// A SELECT whose FROM is a derived table over sharded tables: run whole on
/// one shard when the derived table's query routes to one, or scattered with
/// the outer query merged when each shard's part of the derived table is
/// complete there (no row of it needs another shard's rows). None when the
/// FROM has no such derived table.
fn plan_derived(
    ctx: &PlanContext<'_>,
    sql: &str,
    query: &Query,
    select: &Select,
    keyspace: &Arc<str>,
) -> PlanResult<Option<Plan>> {
    let factors: Vec<&TableFactor> = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .collect();
    let derived: Vec<(&Query, String)> = factors
        .iter()
        .filter_map(|f| match f {
            TableFactor::Derived {
                subquery, alias, ..
            } if reads_sharded(ctx, subquery) => Some((
                subquery.as_ref(),
                alias
                    .as_ref()
                    .map(|a| a.name.value.clone())
                    .unwrap_or_default(),
            )),
            _ => None,
        })
        .collect();
    let refuse = |why: &str| {
        Err(PlanError::unsupported(format!(
            "a derived table (subquery in FROM) over sharded tables {why}"
        )))
    };
    let [(inner, alias)] = derived.as_slice() else {
        return if derived.is_empty() {
            Ok(None)
        } else {
            gather_rows_of_tables(ctx, sql, keyspace, query)
                .map(|m| Some(Plan::Materialize(Box::new(m))))
                .ok_or_else(|| {
                    PlanError::unsupported(
                        "a derived table (subquery in FROM) over sharded tables next to another one",
                    )
                })
        };
    };
    // Other tables next to it must be on every shard, for the whole query
    // to run on one.
    let beside_reference = factors.iter().all(|f| match f {
        TableFactor::Derived { subquery, .. } => std::ptr::eq(subquery.as_ref(), *inner),
        TableFactor::Table { name, alias, .. } => ctx
            .resolve(name, alias.as_ref().map(|a| a.name.value.clone()))
            .is_ok_and(|t| t.kind() == TableKindRef::Reference),
        _ => false,
    });
    if !beside_reference {
        return gather_rows_of_tables(ctx, sql, keyspace, query)
            .map(|m| Some(Plan::Materialize(Box::new(m))))
            .ok_or_else(|| {
                PlanError::unsupported(
                    "a derived table (subquery in FROM) over sharded tables joined with tables that are not reference tables",
                )
            });
    }
    if contains_subquery(&select.selection)
        || select
            .projection
            .iter()
            .any(|i| matches!(i, SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } if contains_subquery(e)))
    {
        return gather_rows_of_tables(ctx, sql, keyspace, query)
            .map(|m| Some(Plan::Materialize(Box::new(m))))
            .ok_or_else(|| {
                PlanError::unsupported(
                    "a derived table (subquery in FROM) over sharded tables with subqueries in the outer query",
                )
            });
    }
    // Its rows gathered by the gate, the outer query run over them.
    let gathered = || {
        let pick = |f: &TableFactor| matches!(f, TableFactor::Derived { subquery, .. } if subquery.as_ref() == *inner);
        super::materialize::over_derived(keyspace, query, inner, alias, pick).map(|mut m| {
            m.names = item_names(sql, query);
            m
        })
    };
    let inner_route = match plan_query(ctx, &inner.to_string(), (*inner).clone())? {
        Plan::Route(route) => route,
        // Its own query runs over gathered rows, or is a join the gate runs
        // itself: the outer one runs over its rows.
        Plan::Materialize(_) | Plan::Join(_) => {
            return gathered()
                .map(|m| Some(Plan::Materialize(Box::new(m))))
                .map_or_else(|| refuse("in this position"), Ok);
        }
        // Subqueries the gate runs first: its tables' rows are gathered.
        _ => {
            return gather_rows_of_tables(ctx, sql, keyspace, query)
                .map(|m| Some(Plan::Materialize(Box::new(m))))
                .map_or_else(
                    || refuse("whose query is not one route (a join or subqueries the gate runs)"),
                    Ok,
                );
        }
    };
    let single = match &inner_route.routing {
        Routing::Vindex { vindex, values } => values.len() == 1 && vindex.is_unique(),
        Routing::Shard(_) => true,
        _ => false,
    };
    let route = |routing: Routing, sql: Option<String>, merge, note: &str| {
        Ok(Some(Plan::Route(Route {
            keyspace: keyspace.clone(),
            routing,
            sql,
            merge,
            write: false,
            note: note.to_string(),
        })))
    };
    if single {
        return route(
            inner_route.routing,
            None,
            None,
            "derived table routed to one shard: the whole query there",
        );
    }
    if factors.len() > 1 || shard_complete(ctx, inner).is_err() {
        // Its rows on one shard may need other shards' rows.
        return gathered()
            .map(|m| Some(Plan::Materialize(Box::new(m))))
            .map_or_else(|| refuse("in this position"), Ok);
    }
    let names = [(alias.clone(), alias.clone())];
    let (text, mut merge) = match scatter_rewrite(sql, query, select, &names) {
        Ok(rewritten) => rewritten,
        Err(e) if e.code == 1235 => {
            return gathered()
                .map(|m| Some(Plan::Materialize(Box::new(m))))
                .ok_or(e);
        }
        Err(e) => return Err(e),
    };
    merge.gather_instead = gathered().map(Arc::new);
    route(
        inner_route.routing,
        Some(text),
        Some(merge),
        "derived table complete on each shard: outer query merged in the gate",
    )
}

/// Why a derived table's rows on one shard may need rows of another (None:
/// each shard's rows of it are exactly the single server's rows from that
/// shard's data): a LIMIT, aggregates or DISTINCT not keyed by the primary
/// vindex column, window functions, subqueries.
fn shard_complete(ctx: &PlanContext<'_>, inner: &Query) -> Result<(), String> {
    if inner.with.is_some() || inner.limit_clause.is_some() || inner.fetch.is_some() {
        return Err("with WITH, LIMIT or FETCH, on several shards".to_string());
    }
    let SetExpr::Select(select) = inner.body.as_ref() else {
        return Err("that is a UNION, on several shards".to_string());
    };
    if contains_subquery(select.as_ref()) {
        return Err("with subqueries, on several shards".to_string());
    }
    let window = visit_expressions(select.as_ref(), |e| {
        if let Expr::Function(f) = e
            && f.over.is_some()
        {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .is_break();
    if window {
        return Err("with window functions, on several shards".to_string());
    }
    let (from, _) = from_tables(ctx, select).map_err(|e| e.message)?;
    let sharded: Vec<&ResolvedTable> = from
        .iter()
        .map(|f| &f.table)
        .filter(|t| t.kind() == TableKindRef::Sharded)
        .collect();
    let is_vindex_column = |e: &Expr| {
        column_ref(e).is_some_and(|(q, c)| {
            owner_of(&sharded, q, &c).is_some_and(|t| is_primary_column(t, &c))
        })
    };
    let group: &[Expr] = match &select.group_by {
        GroupByExpr::Expressions(list, mods) if mods.is_empty() => list,
        _ => return Err("with GROUP BY modifiers, on several shards".to_string()),
    };
    let items: Vec<&Expr> = select
        .projection
        .iter()
        .filter_map(|i| match i {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
            _ => None,
        })
        .collect();
    let aggregate =
        !group.is_empty() || select.having.is_some() || items.iter().any(|e| contains_aggregate(e));
    if aggregate && !group.iter().any(is_vindex_column) {
        return Err(
            "with aggregates not grouped by the primary vindex column, on several shards"
                .to_string(),
        );
    }
    let distinct = !matches!(select.distinct, None | Some(Distinct::All));
    if distinct && !items.iter().any(|e| is_vindex_column(e)) {
        return Err(
            "with DISTINCT not over the primary vindex column, on several shards".to_string(),
        );
    }
    Ok(())
}

/// The original text of an expression (or the printed one when its span is
/// unknown).
fn source_text(sql: &str, expr: &Expr) -> String {
    let span = expr.span();
    match (
        text::offset_of(sql, span.start),
        text::offset_of(sql, span.end),
    ) {
        (Some(a), Some(b)) if a < b && b <= sql.len() => {
            // Spans of some expressions stop short (a function's span may
            // end at its name): the text runs to the end of the expression.
            let t = super::text::expr_text(sql, a);
            if t.contains('?') || t.is_empty() {
                expr.to_string()
            } else {
                t.to_string()
            }
        }
        _ => expr.to_string(),
    }
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// An aggregate call: (function, distinct, argument; None for `*`).
pub(super) fn aggregate_call(expr: &Expr) -> Option<(String, bool, Option<&Expr>)> {
    let Expr::Function(f) = expr else {
        return None;
    };
    let name = f.name.0.last()?.to_string().to_ascii_lowercase();
    if !MERGEABLE.contains(&name.as_str()) && !UNMERGEABLE.contains(&name.as_str()) {
        return None;
    }
    if f.over.is_some() {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return Some((name, false, None));
    };
    let distinct = matches!(
        list.duplicate_treatment,
        Some(sqlparser::ast::DuplicateTreatment::Distinct)
    );
    let arg = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => Some(e),
        _ => None,
    };
    Some((name, distinct, arg))
}

/// Whether an expression holds an aggregate anywhere below its top.
pub(super) fn contains_aggregate(expr: &Expr) -> bool {
    let mut found = false;
    let _ = visit_expressions(expr, |e| {
        if aggregate_call(e).is_some() {
            found = true;
            return ControlFlow::Break(());
        }
        if let Expr::Function(f) = e
            && f.over.is_some()
        {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// A LIMIT or OFFSET: a number, or a prepared statement's parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitValue {
    Fixed(u64),
    Param(usize),
}

/// LIMIT and OFFSET as numbers (parameters refused).
pub(super) fn limit_values(query: &Query) -> PlanResult<(u64, Option<u64>)> {
    let (offset, limit) = limit_clause(query)?;
    let fixed = |v: LimitValue| match v {
        LimitValue::Fixed(n) => Ok(n),
        LimitValue::Param(_) => Err(PlanError::unsupported(
            "a LIMIT parameter on a UNION or a cross-shard join",
        )),
    };
    Ok((fixed(offset)?, limit.map(fixed).transpose()?))
}

/// LIMIT and OFFSET, numbers or parameters.
pub(super) fn limit_clause(query: &Query) -> PlanResult<(LimitValue, Option<LimitValue>)> {
    let num = |e: &Expr| -> PlanResult<LimitValue> {
        match text::literal(e) {
            Some(Ok(OwnedValue::Int(i))) if i >= 0 => Ok(LimitValue::Fixed(i as u64)),
            Some(Ok(OwnedValue::UInt(u))) => Ok(LimitValue::Fixed(u)),
            Some(Err(p)) => Ok(LimitValue::Param(p)),
            _ => Err(PlanError::syntax(
                "You have an error in your SQL syntax; LIMIT and OFFSET take non-negative integers",
            )),
        }
    };
    match &query.limit_clause {
        None => Ok((LimitValue::Fixed(0), None)),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(PlanError::unsupported("LIMIT BY"));
            }
            let limit = limit.as_ref().map(num).transpose()?;
            let offset = offset
                .as_ref()
                .map(|o| num(&o.value))
                .transpose()?
                .unwrap_or(LimitValue::Fixed(0));
            Ok((offset, limit))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            Ok((num(offset)?, Some(num(limit)?)))
        }
    }
}

/// One output column of the shard query, as the merge sees it.
struct ShardColumn {
    /// The client's expression (None for `*`).
    expr: Option<Expr>,
    alias: Option<String>,
    /// The name the client sees (alias or expression text).
    name: String,
}

/// Rewrites a scatter SELECT into the query each shard runs and the merge
/// of their answers.
pub(super) fn scatter_rewrite(
    sql: &str,
    query: &Query,
    select: &Select,
    tables: &[(String, String)],
) -> PlanResult<(String, MergeTemplate)> {
    if select.into.is_some() {
        return Err(PlanError::unsupported("SELECT ... INTO on sharded tables"));
    }
    let (offset_value, limit_value) = limit_clause(query)?;
    // Parameters are known only at execution: the shards then return every
    // row and the gate applies both.
    let limit_params = (
        match offset_value {
            LimitValue::Param(p) => Some(p),
            LimitValue::Fixed(_) => None,
        },
        match limit_value {
            Some(LimitValue::Param(p)) => Some(p),
            _ => None,
        },
    );
    let offset = match offset_value {
        LimitValue::Fixed(n) => n,
        LimitValue::Param(_) => 0,
    };
    let limit = match limit_value {
        Some(LimitValue::Fixed(n)) => Some(n),
        _ => None,
    };
    let params_in_limit = limit_params.0.is_some() || limit_params.1.is_some();
    let order_exprs: Vec<(Expr, bool)> = match &query.order_by {
        None => Vec::new(),
        Some(ob) => match &ob.kind {
            OrderByKind::Expressions(list) => list
                .iter()
                .map(|o| {
                    (
                        o.expr.clone(),
                        o.options
                            .sort
                            .as_ref()
                            .is_some_and(|s| matches!(s, sqlparser::ast::OrderBySort::Desc)),
                    )
                })
                .collect(),
            OrderByKind::All(_) => return Err(PlanError::unsupported("ORDER BY ALL")),
        },
    };
    let group_exprs: Vec<Expr> = match &select.group_by {
        GroupByExpr::Expressions(list, mods) => {
            if !mods.is_empty() {
                return Err(PlanError::unsupported(
                    "GROUP BY ... WITH ROLLUP on sharded tables",
                ));
            }
            list.clone()
        }
        GroupByExpr::All(_) => return Err(PlanError::unsupported("GROUP BY ALL")),
    };
    let distinct = match &select.distinct {
        None | Some(Distinct::All) => false,
        Some(Distinct::Distinct) => true,
        Some(other) => return Err(PlanError::unsupported(other.to_string())),
    };

    // The client's select list, with each item's text as written: an
    // unaliased column is named by that text.
    let written: Vec<&str> = text::offset_of(sql, select.select_token.0.span.end)
        .map(|at| text::select_list_texts(sql, at))
        .unwrap_or_default();
    let written_ok = written.len() == select.projection.len();
    let mut columns: Vec<ShardColumn> = Vec::new();
    let mut wildcard = false;
    for (index, item) in select.projection.iter().enumerate() {
        match item {
            SelectItem::UnnamedExpr(e) => columns.push(ShardColumn {
                expr: Some(e.clone()),
                alias: None,
                name: if written_ok && !written[index].contains('?') {
                    written[index].to_string()
                } else {
                    e.to_string()
                },
            }),
            SelectItem::ExprWithAlias { expr, alias } => columns.push(ShardColumn {
                expr: Some(expr.clone()),
                alias: Some(alias.value.clone()),
                name: alias.value.clone(),
            }),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                wildcard = true;
                columns.push(ShardColumn {
                    expr: None,
                    alias: None,
                    name: item.to_string(),
                });
            }
            other => return Err(PlanError::unsupported(format!("select item {other}"))),
        }
    }
    let aggregate = !group_exprs.is_empty()
        || columns
            .iter()
            .any(|c| c.expr.as_ref().is_some_and(contains_aggregate))
        // Without GROUP BY or aggregates, HAVING filters rows one by one.
        || select.having.as_ref().is_some_and(contains_aggregate);
    if aggregate && wildcard {
        return Err(PlanError::unsupported(
            "SELECT * with aggregates on sharded tables",
        ));
    }

    let mut builder = Builder {
        items: Vec::new(),
        item_sources: Vec::new(),
        hidden: Vec::new(),
        hidden_sources: Vec::new(),
        wildcard_seen: false,
        wildcard,
        tables,
    };
    let mut aggregates: Vec<Aggregate> = Vec::new();
    let mut computed: Vec<(usize, crate::merge::Expr)> = Vec::new();
    let mut shard_group_extra: Vec<String> = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        let Some(expr) = &c.expr else {
            builder.items.push(c.name.clone());
            builder.item_sources.push(None);
            builder.wildcard_seen = true;
            continue;
        };
        let source = builder.source_of(expr);
        let alias_sql = |text: &str| format!("{text} AS {}", quote_ident(&c.name));
        let plain = |text: String| match &c.alias {
            Some(a) => format!("{text} AS {}", quote_ident(a)),
            None => text,
        };
        // An aliased item is printed (its source text would run into an
        // alias written without AS); an unaliased one keeps the client's
        // text, which is also the column's name.
        let item_text = |e: &Expr| match &c.alias {
            Some(_) => e.to_string(),
            None if std::ptr::eq(e, expr) => c.name.clone(),
            None => source_text(sql, e),
        };
        if !aggregate {
            builder.items.push(plain(item_text(expr)));
            builder.item_sources.push(source);
            continue;
        }
        match aggregate_call(expr) {
            Some((name, is_distinct, arg)) => {
                if UNMERGEABLE.contains(&name.as_str()) {
                    return Err(PlanError::unsupported(format!(
                        "aggregate function {} on a query over several shards",
                        name.to_ascii_uppercase()
                    )));
                }
                let arg_text = arg.map(|a| a.to_string());
                let kind = if is_distinct && (name == "count" || name == "sum") {
                    let Some(arg_text) = arg_text.clone() else {
                        return Err(PlanError::unsupported(format!(
                            "{name}(DISTINCT) without one argument"
                        )));
                    };
                    // The shards group by every DISTINCT argument as well: each
                    // returns its distinct combinations, from which the gate counts
                    // each argument's distinct values, while partial COUNT/SUM/MIN/
                    // MAX over those finer groups still add up to the group's.
                    if !shard_group_extra.contains(&arg_text) {
                        shard_group_extra.push(arg_text.clone());
                    }
                    builder.items.push(alias_sql(&arg_text));
                    builder.item_sources.push(source.clone());
                    if name == "count" {
                        AggregateKind::CountDistinct
                    } else {
                        AggregateKind::SumDistinct
                    }
                } else {
                    match name.as_str() {
                        "avg" => {
                            let arg_text = arg_text.ok_or_else(|| {
                                PlanError::unsupported("AVG without one argument")
                            })?;
                            builder.items.push(alias_sql(&format!("SUM({arg_text})")));
                            builder.item_sources.push(None);
                            let count_column =
                                builder.add_hidden(format!("COUNT({arg_text})"), None);
                            AggregateKind::Avg {
                                count_column: match count_column {
                                    ColumnRef::FromStart(c) => c,
                                    ColumnRef::FromEnd(_) => {
                                        unreachable!("no wildcard with aggregates")
                                    }
                                },
                            }
                        }
                        _ => {
                            builder.items.push(plain(item_text(expr)));
                            builder.item_sources.push(source.clone());
                            match name.as_str() {
                                "count" => AggregateKind::Count,
                                "sum" => AggregateKind::Sum,
                                "min" => AggregateKind::Min,
                                _ => AggregateKind::Max,
                            }
                        }
                    }
                };
                aggregates.push(Aggregate { column: i, kind });
            }
            None if contains_aggregate(expr) => {
                // The shards compute the expression over their own rows, which gives
                // the column its type; the gate computes its value from the merged
                // aggregates.
                builder.items.push(plain(item_text(expr)));
                builder.item_sources.push(None);
                let value = builder.gate_expr(&columns, expr, &mut aggregates, Leaves::Item)?;
                computed.push((i, value));
            }
            None => {
                builder.items.push(plain(item_text(expr)));
                builder.item_sources.push(source);
            }
        }
    }

    let mut from_end = Vec::new();
    // GROUP BY keys as merge columns.
    let mut group_by = Vec::new();
    for (gi, g) in group_exprs.iter().enumerate() {
        let col = builder.resolve(&columns, g)?;
        match col {
            ColumnRef::FromStart(c) => group_by.push(c),
            ColumnRef::FromEnd(k) => {
                group_by.push(0);
                from_end.push(ColumnSlot::GroupBy(gi, k));
            }
        }
    }
    // HAVING over the merged rows.
    let having = match &select.having {
        Some(h) => Some(builder.gate_expr(&columns, h, &mut aggregates, Leaves::Clause)?),
        None => None,
    };
    let mut order_by = Vec::new();
    for (oi, (e, desc)) in order_exprs.iter().enumerate() {
        if aggregate {
            if let Some(call) = aggregate_call(e) {
                let avg = call.0 == "avg" && !call.1;
                match builder.aggregate_column(&columns, e, call, &mut aggregates) {
                    Ok(col) => {
                        order_by.push(OrderKey {
                            column: col,
                            descending: *desc,
                        });
                        continue;
                    }
                    // AVG outside the select list: computed from SUM and COUNT below.
                    Err(_) if avg => {}
                    Err(e) => return Err(e),
                }
            }
            if contains_aggregate(e) {
                let printed = e.to_string();
                let same_item = columns.iter().position(|c| {
                    c.expr
                        .as_ref()
                        .is_some_and(|x| x.to_string().eq_ignore_ascii_case(&printed))
                });
                let column = match same_item {
                    Some(c) => c,
                    None => {
                        // A hidden column the shards compute (for its type) and the
                        // gate fills in.
                        let value =
                            builder.gate_expr(&columns, e, &mut aggregates, Leaves::Clause)?;
                        let ColumnRef::FromStart(c) = builder.add_hidden(printed, None) else {
                            return Err(PlanError::unsupported("aggregates with *"));
                        };
                        computed.push((c, value));
                        c
                    }
                };
                order_by.push(OrderKey {
                    column,
                    descending: *desc,
                });
                continue;
            }
        }
        match builder.resolve(&columns, e)? {
            ColumnRef::FromStart(c) => order_by.push(OrderKey {
                column: c,
                descending: *desc,
            }),
            ColumnRef::FromEnd(k) => {
                order_by.push(OrderKey {
                    column: 0,
                    descending: *desc,
                });
                from_end.push(ColumnSlot::Order(oi, k));
            }
        }
    }

    // The shard query.
    let mut shard = String::with_capacity(sql.len() + 64);
    shard.push_str("SELECT ");
    if distinct && !aggregate {
        shard.push_str("DISTINCT ");
    }
    let all_items: Vec<&String> = builder.items.iter().chain(builder.hidden.iter()).collect();
    shard.push_str(
        &all_items
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    );
    if !select.from.is_empty() {
        shard.push_str(" FROM ");
        shard.push_str(
            &select
                .from
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(w) = &select.selection {
        shard.push_str(" WHERE ");
        shard.push_str(&w.to_string());
    }
    if aggregate {
        let mut keys: Vec<String> = group_exprs.iter().map(|g| g.to_string()).collect();
        keys.extend(shard_group_extra);
        if !keys.is_empty() {
            shard.push_str(" GROUP BY ");
            shard.push_str(&keys.join(", "));
        }
    } else {
        if let Some(ob) = &query.order_by {
            shard.push(' ');
            shard.push_str(&ob.to_string());
        }
        if let Some(l) = limit
            && !params_in_limit
        {
            shard.push_str(&format!(" LIMIT {}", l.saturating_add(offset)));
        }
    }
    for lock in &query.locks {
        shard.push(' ');
        shard.push_str(&lock.to_string());
    }
    let hidden = builder.hidden.len();
    // From-end references were numbered by hidden index; now the count is known.
    for slot in &mut from_end {
        let fix = |k: usize| hidden - (usize::MAX - k);
        *slot = match *slot {
            ColumnSlot::GroupBy(i, k) => ColumnSlot::GroupBy(i, fix(k)),
            ColumnSlot::Order(i, k) => ColumnSlot::Order(i, fix(k)),
        };
    }
    let visible = columns.len();
    let mut spec = MergeSpec {
        aggregate,
        group_by,
        aggregates,
        having,
        distinct,
        order_by,
        offset,
        limit,
        visible_columns: visible,
        computed,
    };
    place_hidden(&mut spec, builder.items.len());
    let default_table = (tables.len() == 1).then(|| tables[0].1.clone());
    Ok((
        shard,
        MergeTemplate {
            spec,
            hidden,
            from_end,
            item_sources: builder.item_sources,
            hidden_sources: builder.hidden_sources,
            default_table,
            star_index: columns.iter().position(|c| c.expr.is_none()),
            limit_params,
            gather_instead: None,
        },
    ))
}

/// Hidden columns are numbered from here until the select list is complete.
const HIDDEN_BASE: usize = 1 << 40;

/// Moves hidden-column numbers to their place after the `items` columns.
fn place_hidden(spec: &mut MergeSpec, items: usize) {
    let fix = |c: &mut usize| {
        if *c >= HIDDEN_BASE {
            *c = items + (*c - HIDDEN_BASE);
        }
    };
    spec.group_by.iter_mut().for_each(fix);
    for k in &mut spec.order_by {
        fix(&mut k.column);
    }
    for a in &mut spec.aggregates {
        fix(&mut a.column);
        if let AggregateKind::Avg { count_column } = &mut a.kind {
            fix(count_column);
        }
    }
    fn walk(e: &mut crate::merge::Expr, fix: &dyn Fn(&mut usize)) {
        use crate::merge::Expr as M;
        match e {
            M::Column(c) => fix(c),
            M::Compare(_, a, b) | M::And(a, b) | M::Or(a, b) | M::Arith(_, a, b) => {
                walk(a, fix);
                walk(b, fix);
            }
            M::Not(a) | M::IsNull(a) | M::IsNotNull(a) | M::Neg(a) | M::Round(a, _) => walk(a, fix),
            M::Concat(list) => {
                for x in list {
                    walk(x, fix);
                }
            }
            M::InList(a, list) => {
                walk(a, fix);
                for x in list {
                    walk(x, fix);
                }
            }
            M::Between(a, b, c) => {
                walk(a, fix);
                walk(b, fix);
                walk(c, fix);
            }
            _ => {}
        }
    }
    if let Some(h) = &mut spec.having {
        walk(h, &fix);
    }
    for (column, e) in &mut spec.computed {
        fix(column);
        walk(e, &fix);
    }
}

/// Where a gate-side expression is: its parts without aggregates are hidden
/// columns in the select list, or are resolved as HAVING / ORDER BY resolve
/// names (aliases, positions, select items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaves {
    Item,
    Clause,
}

/// Builds the shard query's select list while the merge's column
/// references are resolved.
struct Builder<'a> {
    items: Vec<String>,
    /// The table column each item shows, when it shows one: its collation
    /// decides how the merge compares it.
    item_sources: Vec<Option<(String, String)>>,
    hidden: Vec<String>,
    hidden_sources: Vec<Option<(String, String)>>,
    wildcard_seen: bool,
    wildcard: bool,
    /// (name referred by, table name) of the FROM tables.
    tables: &'a [(String, String)],
}

impl Builder<'_> {
    fn add_hidden(&mut self, text: String, source: Option<(String, String)>) -> ColumnRef {
        if let Some(i) = self.hidden.iter().position(|h| *h == text) {
            return self.hidden_ref(i);
        }
        self.hidden.push(text);
        self.hidden_sources.push(source);
        self.hidden_ref(self.hidden.len() - 1)
    }

    /// The (table, column) an expression shows: a column, or the argument
    /// of MIN/MAX/COUNT(DISTINCT) over one.
    fn source_of(&self, expr: &Expr) -> Option<(String, String)> {
        let inner = match aggregate_call(expr) {
            Some((_, _, Some(arg))) => arg,
            Some(_) => return None,
            None => expr,
        };
        let (qualifier, column) = column_ref(inner)?;
        let table = match qualifier {
            Some(q) => self.tables.iter().find(|(r, _)| r == q)?.1.clone(),
            None if self.tables.len() == 1 => self.tables[0].1.clone(),
            None => return None,
        };
        Some((table, column))
    }

    fn hidden_ref(&self, i: usize) -> ColumnRef {
        if self.wildcard {
            // Counted from the end: hidden columns are all appended, so the
            // i-th of n is n - i from the end (fixed up when more are added).
            ColumnRef::FromEnd(usize::MAX - i)
        } else {
            // The select list may still grow: numbered for now, placed
            // after it by `place_hidden` at the end.
            ColumnRef::FromStart(HIDDEN_BASE + i)
        }
    }

    /// The column an ORDER BY / GROUP BY expression means: a position, an
    /// alias, a select item with the same text, or a new hidden column.
    fn resolve(&mut self, columns: &[ShardColumn], expr: &Expr) -> PlanResult<ColumnRef> {
        if let Some(Ok(v)) = text::literal(expr) {
            return match v {
                // Positions count the expanded select list; with a `*` its
                // length is known only from the answer.
                OwnedValue::Int(n)
                    if n >= 1 && ((n as usize) <= columns.len() || self.wildcard) =>
                {
                    Ok(ColumnRef::FromStart(n as usize - 1))
                }
                _ => Err(PlanError {
                    code: 1054,
                    sqlstate: "42S22",
                    message: format!("Unknown column '{expr}' in 'order clause'"),
                }),
            };
        }
        // Hidden columns are printed: their names are never seen, and a
        // span can stop short of a whole expression.
        let text = expr.to_string();
        let printed = expr.to_string();
        let wildcard_before = |i: usize| columns[..i].iter().any(|c| c.expr.is_none());
        for (i, c) in columns.iter().enumerate() {
            let Some(cexpr) = &c.expr else { continue };
            let by_alias = c.alias.as_ref().is_some_and(
                |a| matches!(expr, Expr::Identifier(id) if id.value.eq_ignore_ascii_case(a)),
            );
            let same = by_alias || cexpr.to_string().eq_ignore_ascii_case(&printed) || {
                // An unqualified `name` matches a select item `t.name`.
                matches!((column_ref(cexpr), column_ref(expr)),
                    (Some((_, a)), Some((None, b))) if a == b)
            };
            if same {
                if wildcard_before(i) {
                    break;
                }
                return Ok(ColumnRef::FromStart(i));
            }
        }
        // Anything else (a grouped expression too) becomes a hidden column.
        let source = self.source_of(expr);
        Ok(self.add_hidden(text, source))
    }

    /// The merged column holding an aggregate: a select item computing the
    /// same aggregate, or a new hidden one.
    fn aggregate_column(
        &mut self,
        columns: &[ShardColumn],
        expr: &Expr,
        call: (String, bool, Option<&Expr>),
        aggregates: &mut Vec<Aggregate>,
    ) -> PlanResult<usize> {
        let printed = expr.to_string();
        for (i, c) in columns.iter().enumerate() {
            if c.expr
                .as_ref()
                .is_some_and(|e| e.to_string().eq_ignore_ascii_case(&printed))
            {
                return Ok(i);
            }
        }
        let (name, distinct, arg) = call;
        if distinct || name == "avg" || UNMERGEABLE.contains(&name.as_str()) {
            return Err(PlanError::unsupported(format!(
                "{} in HAVING or ORDER BY without it in the select list, on several shards",
                printed
            )));
        }
        let _ = arg;
        let text = expr.to_string();
        let source = self.source_of(expr);
        let ColumnRef::FromStart(col) = self.add_hidden(text, source) else {
            return Err(PlanError::unsupported("aggregates with *"));
        };
        if !aggregates.iter().any(|a| a.column == col) {
            aggregates.push(Aggregate {
                column: col,
                kind: match name.as_str() {
                    "count" => AggregateKind::Count,
                    "sum" => AggregateKind::Sum,
                    "min" => AggregateKind::Min,
                    _ => AggregateKind::Max,
                },
            });
        }
        Ok(col)
    }

    /// The hidden column of a partial aggregate (`SUM(x)`, `COUNT(x)`) the merge
    /// combines.
    fn hidden_aggregate(
        &mut self,
        text: String,
        kind: AggregateKind,
        aggregates: &mut Vec<Aggregate>,
    ) -> PlanResult<usize> {
        let ColumnRef::FromStart(col) = self.add_hidden(text, None) else {
            return Err(PlanError::unsupported("aggregates with *"));
        };
        if !aggregates.iter().any(|a| a.column == col) {
            aggregates.push(Aggregate { column: col, kind });
        }
        Ok(col)
    }

    /// An expression the gate evaluates over merged rows: HAVING, an ORDER BY or
    /// select-list expression around aggregates. Aggregates become merged partial
    /// columns (AVG its SUM and COUNT, divided as MariaDB divides); other parts the
    /// shards compute. What the gate cannot evaluate as MariaDB would is refused.
    fn gate_expr(
        &mut self,
        columns: &[ShardColumn],
        expr: &Expr,
        aggregates: &mut Vec<Aggregate>,
        leaves: Leaves,
    ) -> PlanResult<crate::merge::Expr> {
        use crate::merge::{ArithOp, CompareOp, Expr as M};
        let b = |e: M| Box::new(e);
        let what = match leaves {
            Leaves::Item => "in a select-list expression around an aggregate",
            Leaves::Clause => "in HAVING or ORDER BY",
        };
        let refuse = |thing: String| {
            Err(PlanError::unsupported(format!(
                "{thing} {what} on several shards"
            )))
        };
        // A part without aggregates: the shards compute it (in the select list, as a
        // hidden column, so that an alias never shadows a column of the same name).
        if leaves == Leaves::Item
            && !contains_aggregate(expr)
            && text::literal(expr).is_none()
            && !contains_subquery(expr)
        {
            let ColumnRef::FromStart(c) = self.add_hidden(expr.to_string(), self.source_of(expr))
            else {
                return Err(PlanError::unsupported("aggregates with *"));
            };
            return Ok(M::Column(c));
        }
        Ok(match expr {
            Expr::Nested(inner) => self.gate_expr(columns, inner, aggregates, leaves)?,
            Expr::BinaryOp { left, op, right } => {
                let l = self.gate_expr(columns, left, aggregates, leaves)?;
                let r = self.gate_expr(columns, right, aggregates, leaves)?;
                match op {
                    BinaryOperator::And => M::And(b(l), b(r)),
                    BinaryOperator::Or => M::Or(b(l), b(r)),
                    BinaryOperator::Eq => M::Compare(CompareOp::Eq, b(l), b(r)),
                    BinaryOperator::NotEq => M::Compare(CompareOp::Ne, b(l), b(r)),
                    BinaryOperator::Lt => M::Compare(CompareOp::Lt, b(l), b(r)),
                    BinaryOperator::LtEq => M::Compare(CompareOp::Le, b(l), b(r)),
                    BinaryOperator::Gt => M::Compare(CompareOp::Gt, b(l), b(r)),
                    BinaryOperator::GtEq => M::Compare(CompareOp::Ge, b(l), b(r)),
                    BinaryOperator::Spaceship => M::Compare(CompareOp::NullSafeEq, b(l), b(r)),
                    BinaryOperator::Plus => M::Arith(ArithOp::Add, b(l), b(r)),
                    BinaryOperator::Minus => M::Arith(ArithOp::Sub, b(l), b(r)),
                    BinaryOperator::Multiply => M::Arith(ArithOp::Mul, b(l), b(r)),
                    BinaryOperator::Divide => M::Arith(ArithOp::Div, b(l), b(r)),
                    other => return refuse(format!("operator {other}")),
                }
            }
            Expr::UnaryOp {
                op: sqlparser::ast::UnaryOperator::Not,
                expr,
            } => M::Not(b(self.gate_expr(columns, expr, aggregates, leaves)?)),
            Expr::UnaryOp {
                op: sqlparser::ast::UnaryOperator::Minus,
                expr: inner,
            } if text::literal(expr).is_none() => {
                M::Neg(b(self.gate_expr(columns, inner, aggregates, leaves)?))
            }
            Expr::UnaryOp {
                op: sqlparser::ast::UnaryOperator::Plus,
                expr,
            } => self.gate_expr(columns, expr, aggregates, leaves)?,
            Expr::IsNull(e) => M::IsNull(b(self.gate_expr(columns, e, aggregates, leaves)?)),
            Expr::IsNotNull(e) => M::IsNotNull(b(self.gate_expr(columns, e, aggregates, leaves)?)),
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let e = self.gate_expr(columns, expr, aggregates, leaves)?;
                let l = list
                    .iter()
                    .map(|x| self.gate_expr(columns, x, aggregates, leaves))
                    .collect::<PlanResult<Vec<_>>>()?;
                let inl = M::InList(b(e), l);
                if *negated { M::Not(b(inl)) } else { inl }
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let e = M::Between(
                    b(self.gate_expr(columns, expr, aggregates, leaves)?),
                    b(self.gate_expr(columns, low, aggregates, leaves)?),
                    b(self.gate_expr(columns, high, aggregates, leaves)?),
                );
                if *negated { M::Not(b(e)) } else { e }
            }
            e if aggregate_call(e).is_some() => {
                let call = aggregate_call(e).expect("checked");
                match call {
                    // MariaDB's AVG is SUM / COUNT divided to 9-digit words; the value
                    // shown for AVG alone is rounded from that, so expressions use the
                    // quotient itself.
                    (name, false, Some(arg)) if name == "avg" => {
                        let sum = self.hidden_aggregate(
                            format!("SUM({arg})"),
                            AggregateKind::Sum,
                            aggregates,
                        )?;
                        let count = self.hidden_aggregate(
                            format!("COUNT({arg})"),
                            AggregateKind::Count,
                            aggregates,
                        )?;
                        M::Arith(ArithOp::Div, b(M::Column(sum)), b(M::Column(count)))
                    }
                    call => M::Column(self.aggregate_column(columns, e, call, aggregates)?),
                }
            }
            Expr::Function(f) if f.over.is_none() => {
                let name = f
                    .name
                    .0
                    .last()
                    .map(|p| p.to_string().to_ascii_lowercase())
                    .unwrap_or_default();
                let args: Vec<&Expr> = match &f.args {
                    FunctionArguments::List(list) if list.duplicate_treatment.is_none() => list
                        .args
                        .iter()
                        .map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                match (name.as_str(), args.as_slice()) {
                    ("round", [x]) => {
                        M::Round(b(self.gate_expr(columns, x, aggregates, leaves)?), 0)
                    }
                    ("round", [x, digits]) => {
                        let digits = match text::literal(digits) {
                            Some(Ok(OwnedValue::Int(n))) if (-38..=38).contains(&n) => n as i32,
                            _ => return refuse(format!("ROUND with digits {digits}")),
                        };
                        M::Round(b(self.gate_expr(columns, x, aggregates, leaves)?), digits)
                    }
                    ("concat", list) if !list.is_empty() => M::Concat(
                        list.iter()
                            .map(|x| self.gate_expr(columns, x, aggregates, leaves))
                            .collect::<PlanResult<Vec<_>>>()?,
                    ),
                    _ => return refuse(format!("function {}", f.name)),
                }
            }
            e => match text::literal(e) {
                Some(Ok(v)) => match v {
                    OwnedValue::Null => M::Literal(None),
                    OwnedValue::Bytes(b) => M::Str(b),
                    other => M::Literal(Some(other.to_sql().into_bytes())),
                },
                Some(Err(_)) => return refuse("a parameter".to_string()),
                None if contains_aggregate(e) => return refuse(format!("{e}")),
                None => match self.resolve(columns, e)? {
                    ColumnRef::FromStart(c) => M::Column(c),
                    ColumnRef::FromEnd(_) => {
                        return Err(PlanError::unsupported("HAVING with *"));
                    }
                },
            },
        })
    }
}

fn plan_union(
    ctx: &PlanContext<'_>,
    sql: &str,
    query: &Query,
    keyspace: &Arc<str>,
    tables: &[ResolvedTable],
) -> PlanResult<Plan> {
    if tables.iter().any(|t| t.kind() == TableKindRef::Reference) {
        return Err(PlanError::unsupported(
            "UNION mixing reference and sharded tables on several shards",
        ));
    }
    // Every branch must be a plain SELECT; the quantifiers decide DISTINCT.
    let mut distinct = None;
    let mut first_select: Option<&Select> = None;
    fn walk<'q>(
        ctx: &PlanContext<'_>,
        e: &'q SetExpr,
        distinct: &mut Option<bool>,
        first: &mut Option<&'q Select>,
    ) -> PlanResult<()> {
        match e {
            SetExpr::Select(s) => {
                if first.is_none() {
                    *first = Some(s);
                }
                // Each shard runs every branch over its own rows: a branch
                // joining sharded tables not on their vindex would miss the
                // rows joined across shards.
                let (from, join_conditions) = from_tables(ctx, s)?;
                let conditions = join_and_where(&join_conditions, s);
                if check_colocated(&sharded_tables(&from), &conditions).is_err() {
                    return Err(PlanError::unsupported(
                        "a join not on the vindex inside a UNION on several shards",
                    ));
                }
                if s.having.is_some()
                    || !matches!(&s.group_by, GroupByExpr::Expressions(l, _) if l.is_empty())
                    || s.projection.iter().any(|i| match i {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                            contains_aggregate(e)
                        }
                        _ => false,
                    })
                {
                    return Err(PlanError::unsupported(
                        "aggregates or GROUP BY inside a UNION on several shards",
                    ));
                }
                if contains_subquery(s.as_ref()) {
                    return Err(PlanError::unsupported(
                        "a subquery inside a UNION on several shards",
                    ));
                }
                Ok(())
            }
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                if *op != SetOperator::Union {
                    return Err(PlanError::unsupported(format!("{op} on sharded tables")));
                }
                let d = !matches!(set_quantifier, SetQuantifier::All);
                if distinct.is_some_and(|x| x != d) {
                    return Err(PlanError::unsupported(
                        "UNION mixing ALL and DISTINCT on several shards",
                    ));
                }
                *distinct = Some(d);
                walk(ctx, left, distinct, first)?;
                walk(ctx, right, distinct, first)
            }
            SetExpr::Query(_) => Err(PlanError::unsupported(
                "a parenthesized query with its own ORDER BY or LIMIT inside a UNION on several shards",
            )),
            other => Err(PlanError::unsupported(format!("{other} inside a UNION"))),
        }
    }
    walk(ctx, &query.body, &mut distinct, &mut first_select)?;
    let distinct = distinct.unwrap_or(true);
    let first = first_select.ok_or_else(|| PlanError::unsupported("an empty UNION"))?;
    let (offset, limit) = limit_values(query)?;
    // ORDER BY of a UNION names result columns: by position or by the
    // first branch's names.
    let names: Vec<Option<String>> = first
        .projection
        .iter()
        .map(|i| match i {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_ascii_lowercase()),
            SelectItem::UnnamedExpr(e) => column_ref(e).map(|(_, c)| c),
            _ => None,
        })
        .collect();
    if first.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) && query.order_by.is_some()
    {
        return Err(PlanError::unsupported(
            "ORDER BY on a UNION of SELECT * on several shards",
        ));
    }
    let mut order_by = Vec::new();
    if let Some(ob) = &query.order_by {
        let OrderByKind::Expressions(list) = &ob.kind else {
            return Err(PlanError::unsupported("ORDER BY ALL"));
        };
        for o in list {
            let desc = o
                .options
                .sort
                .as_ref()
                .is_some_and(|s| matches!(s, sqlparser::ast::OrderBySort::Desc));
            let column = match text::literal(&o.expr) {
                Some(Ok(OwnedValue::Int(n))) if n >= 1 && (n as usize) <= names.len() => {
                    n as usize - 1
                }
                _ => {
                    let (_, c) = column_ref(&o.expr).ok_or_else(|| {
                        PlanError::unsupported("ORDER BY an expression on a UNION")
                    })?;
                    names
                        .iter()
                        .position(|n| n.as_deref() == Some(c.as_str()))
                        .ok_or_else(|| PlanError {
                            code: 1054,
                            sqlstate: "42S22",
                            message: format!("Unknown column '{c}' in 'order clause'"),
                        })?
                }
            };
            order_by.push(OrderKey {
                column,
                descending: desc,
            });
        }
    }
    let mut shard_sql = query.body.to_string();
    if let Some(ob) = &query.order_by {
        shard_sql.push(' ');
        shard_sql.push_str(&ob.to_string());
    }
    if let Some(l) = limit {
        shard_sql.push_str(&format!(" LIMIT {}", l.saturating_add(offset)));
    }
    let _ = sql;
    Ok(Plan::Route(Route {
        keyspace: keyspace.clone(),
        routing: Routing::Scatter,
        sql: Some(shard_sql),
        merge: Some(MergeTemplate {
            spec: MergeSpec {
                aggregate: false,
                group_by: Vec::new(),
                aggregates: Vec::new(),
                having: None,
                distinct,
                order_by,
                offset,
                limit,
                visible_columns: names.len(),
                computed: Vec::new(),
            },
            hidden: 0,
            from_end: Vec::new(),
            item_sources: first
                .projection
                .iter()
                .map(|i| match i {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        column_ref(e).map(|(_, c)| c)
                    }
                    _ => None,
                })
                .map(|c| c.and_then(|c| union_table(first).map(|t| (t, c))))
                .collect(),
            hidden_sources: Vec::new(),
            limit_params: (None, None),
            gather_instead: None,
            default_table: union_table(first),
            star_index: first.projection.iter().position(|i| {
                matches!(
                    i,
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                )
            }),
        }),
        write: false,
        note: "UNION on every shard, merged in the gate".to_string(),
    }))
}

/// The table of a UNION's first SELECT, when it reads exactly one.
fn union_table(select: &Select) -> Option<String> {
    match select.from.as_slice() {
        [twj] if twj.joins.is_empty() => match &twj.relation {
            TableFactor::Table { name, .. } => name
                .0
                .last()
                .map(|p| p.to_string().trim_matches('`').to_string()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::routing;
    use super::super::{Plan, PlanContext, Route, Routing, plan};

    fn planned(sql: &str) -> super::PlanResult<Plan> {
        let table = routing();
        let ctx = PlanContext {
            routing: &table,
            keyspace: Some("ks"),
            schema: None,
        };
        plan(&ctx, sql)
    }

    fn route(sql: &str) -> Route {
        match planned(sql).unwrap() {
            Plan::Route(r) => r,
            other => panic!("{sql}: not a route: {other:?}"),
        }
    }

    fn one_shard(r: &Route) -> bool {
        matches!(&r.routing, Routing::Vindex { values, .. } if values.len() == 1)
    }

    #[test]
    fn negative_literals_route_by_the_vindex_once_normalized() {
        let (text, values) =
            super::text::normalize("SELECT * FROM customer WHERE id = -5").unwrap();
        assert_eq!(values, vec![super::OwnedValue::Int(-5)]);
        assert!(one_shard(&route(&text)), "{text}");
        let (text, _) =
            super::text::normalize("SELECT * FROM customer WHERE id IN (-1, 2)").unwrap();
        let r = route(&text);
        assert!(matches!(&r.routing, Routing::Vindex { values, .. } if values.len() == 2));
    }

    #[test]
    fn expressions_around_aggregates_are_computed_in_the_gate() {
        let r = route(
            "SELECT city, SUM(score) / COUNT(*) AS m, ROUND(AVG(balance), 2) FROM customer GROUP BY city HAVING m > 2 ORDER BY MAX(score) - MIN(score)",
        );
        let merge = r.merge.expect("a merge");
        // Two select items and the ORDER BY expression are computed.
        assert_eq!(merge.spec.computed.len(), 3);
        assert_eq!(merge.spec.computed[0].0, 1);
        assert!(merge.spec.having.is_some());
        let shard_sql = r.sql.unwrap();
        assert!(shard_sql.contains("SUM(balance)") && shard_sql.contains("COUNT(balance)"));
        // What the merge cannot compute is computed by one shard over the
        // rows the WHERE keeps, gathered by the gate.
        for gathered in [
            "SELECT IFNULL(SUM(score), 0) FROM customer WHERE city = 'Oslo'",
            "SELECT COUNT(*) DIV 2 FROM customer c WHERE c.city = 'Oslo'",
            "SELECT ROUND(AVG(score), id) FROM customer WHERE city = 'Oslo'",
        ] {
            let Ok(Plan::Materialize(m)) = planned(gathered) else {
                panic!("{gathered}: not gathered");
            };
            let inner = &m.gathered[0].sql;
            assert!(inner.starts_with("SELECT * FROM customer"), "{inner}");
            assert!(
                inner.ends_with("WHERE city = 'Oslo'") || inner.ends_with("WHERE c.city = 'Oslo'"),
                "{inner}"
            );
            assert!(!m.outer.contains("WHERE"), "{}", m.outer);
            assert!(
                m.outer.contains(&crate::plan::materialize::rows_mark(0)),
                "{}",
                m.outer
            );
        }
        // Not when the query reads more than the table's rows, or locks them.
        for refused in [
            "SELECT IFNULL(SUM(score), 0) FROM customer WHERE id IN (SELECT customer_id FROM orders WHERE qty > 1) FOR UPDATE",
            "SELECT IFNULL(SUM(score), 0) FROM customer FOR UPDATE",
        ] {
            let e = planned(refused).unwrap_err();
            assert_eq!(e.code, 1235, "{refused}: {}", e.message);
        }
    }

    #[test]
    fn vexplain_shows_what_is_gathered_and_what_runs_over_it() {
        let Ok(Plan::VExplain(inner)) = planned(
            "VEXPLAIN SELECT c.id FROM customer c WHERE c.city = 'Oslo' AND EXISTS (SELECT 1 FROM orders o WHERE o.qty > c.score)",
        ) else {
            panic!("not a VEXPLAIN");
        };
        let text = inner.explain();
        assert!(
            text.starts_with("Rows gathered by the gate on keyspace ks"),
            "{text}"
        );
        assert!(
            text.contains("gathered <rows 0>: SELECT * FROM customer AS c WHERE (c.city = ")
                || text.contains("gathered <rows 0>: SELECT * FROM customer c WHERE (c.city = "),
            "{text}"
        );
        assert!(
            text.contains("gathered <rows 1>: SELECT * FROM orders"),
            "{text}"
        );
        assert!(
            text.contains("then on one shard over them: SELECT c.id FROM <rows 0> AS `c`"),
            "{text}"
        );
    }

    #[test]
    fn derived_tables_run_where_they_are_complete() {
        let r = route("SELECT x.id FROM (SELECT id FROM customer WHERE id = 30) AS x");
        assert!(one_shard(&r) && r.merge.is_none() && r.sql.is_none());
        let r = route(
            "SELECT MAX(t.total) FROM (SELECT customer_id, SUM(price) AS total FROM orders GROUP BY customer_id) AS t",
        );
        assert!(matches!(r.routing, Routing::Scatter));
        assert!(r.merge.expect("merged").spec.aggregate);
        // Derived tables whose rows on one shard need other shards' rows are
        // gathered by the gate; the outer query runs over them.
        for gathered in [
            "SELECT COUNT(*) FROM (SELECT id FROM customer LIMIT 5) AS d",
            "SELECT d.n FROM (SELECT name, COUNT(*) AS n FROM customer GROUP BY name) AS d",
            "SELECT COUNT(*) FROM (SELECT DISTINCT name FROM customer) AS d",
            "SELECT d.n, p.title FROM (SELECT COUNT(*) AS n FROM customer) AS d JOIN product p ON p.price > d.n",
        ] {
            let Ok(Plan::Materialize(m)) = planned(gathered) else {
                panic!("{gathered}: not gathered");
            };
            assert!(
                m.outer.contains(&format!(
                    "{} AS `d`",
                    crate::plan::materialize::rows_mark(0)
                )),
                "{}",
                m.outer
            );
            assert!(
                !m.gathered[0].sql.contains(" AS d"),
                "{}",
                m.gathered[0].sql
            );
        }
        // Joined to a sharded table: both gathered.
        let Ok(Plan::Materialize(m)) = planned(
            "SELECT d.id FROM (SELECT id FROM customer) AS d JOIN orders o ON o.customer_id = d.id",
        ) else {
            panic!("not gathered");
        };
        let gathered: Vec<&str> = m.gathered.iter().map(|g| g.sql.as_str()).collect();
        assert_eq!(
            gathered,
            ["SELECT id FROM customer", "SELECT * FROM orders o"]
        );
    }
}
