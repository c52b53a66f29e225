//! Planning of INSERT, UPDATE and DELETE on sharded keyspaces: rows split by
//! their primary vindex, auto-increment ids from sequences, writes to
//! reference tables, and the refusals Vitess users expect (changing a
//! vindex column, LIMIT over several shards).

use std::sync::Arc;

use std::fmt::Write as _;

use sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, Insert, ObjectName, OnInsert, OrderByExpr, SetExpr,
    Statement, TableFactor, TableObject, Update,
};

use super::select::vindex_routing;
use super::text::{self, OwnedValue};
use super::vschema::{AutoIncrement, ColumnVindex, TableKind};
use super::{
    Plan, PlanContext, PlanError, PlanResult, ResolvedTable, Route, Routing, TableKindRef,
};
use crate::vindex::Vindex;

/// One value of an inserted row.
#[derive(Debug, Clone)]
pub enum RowValue {
    /// An expression, as the client wrote it; `value` when it is a literal.
    Text {
        sql: String,
        value: Option<OwnedValue>,
    },
    /// A prepared statement's parameter.
    Param(usize),
    /// The auto-increment column the client left out: a sequence id.
    Generated,
}

/// The values of one inserted row, in the plan's column order.
pub type InsertRow = Vec<RowValue>;

/// An owned lookup vindex of the written table, and where the values of its
/// `from` columns are in the rows the plan handles (`usize::MAX`: a column
/// the INSERT leaves out, so NULL).
#[derive(Clone)]
pub struct OwnedLookup {
    pub vindex: Arc<dyn Vindex>,
    pub columns: Vec<usize>,
}

/// UPDATE or DELETE of a table with owned lookup vindexes. The rows it
/// touches are read and locked first (in the statement's transaction), so
/// their lookup entries change with them.
#[derive(Clone)]
pub struct OwnedDml {
    /// The written table's name in its keyspace.
    pub table: String,
    /// Where the statement goes; its `sql` is always set.
    pub route: Route,
    /// `SELECT <primary vindex column>, <lookup columns> ... FOR UPDATE`.
    pub select_sql: String,
    pub primary: Arc<dyn Vindex>,
    /// The lookups whose entries change; `columns` index the select's
    /// columns.
    pub lookups: Vec<OwnedLookup>,
    /// UPDATE: per lookup, per `from` column, the assigned value (None:
    /// unchanged). None for DELETE.
    pub new_values: Option<Vec<Vec<Option<RowValue>>>>,
}

impl std::fmt::Debug for OwnedDml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedDml")
            .field("route", &self.route)
            .field("select_sql", &self.select_sql)
            .field("lookups", &self.lookups.len())
            .finish()
    }
}

#[derive(Clone)]
pub struct InsertPlan {
    pub keyspace: Arc<str>,
    pub table: String,
    /// `INSERT [IGNORE] INTO t (c1, ...)` (or REPLACE).
    pub prefix: String,
    pub rows: Vec<InsertRow>,
    /// ` ON DUPLICATE KEY UPDATE ...`, as written.
    pub suffix: String,
    /// The primary vindex and its column's index in the rows; None when
    /// every row goes to every shard (reference table) or the one shard.
    pub vindex: Option<Arc<dyn Vindex>>,
    pub vindex_column: usize,
    pub sequence: Option<AutoIncrement>,
    pub sequence_column: usize,
    /// Reference table: the rows go to every shard.
    pub all_shards: bool,
    /// Owned lookup vindexes that get an entry per row.
    pub lookups: Vec<OwnedLookup>,
}

impl std::fmt::Debug for InsertPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InsertPlan")
            .field("keyspace", &self.keyspace)
            .field("table", &self.table)
            .field("rows", &self.rows.len())
            .finish()
    }
}

fn table_of(ctx: &PlanContext<'_>, name: &ObjectName) -> PlanResult<ResolvedTable> {
    ctx.resolve(name, None)
}

/// A reference table takes writes only when it is its own source.
fn check_reference_write(t: &ResolvedTable) -> PlanResult<()> {
    if let Some(TableKind::Reference {
        source: Some(source),
    }) = t.info.as_ref().map(|i| &i.kind)
    {
        return Err(PlanError::unsupported(format!(
            "writes to reference table '{}' of keyspace '{}'; write to its source '{source}'",
            t.name, t.keyspace.name
        )));
    }
    Ok(())
}

fn single_shard_route(t: &ResolvedTable) -> Routing {
    match t.keyspace.shards.as_slice() {
        [(only, _)] => Routing::Shard(only.clone()),
        _ => Routing::AnyShard,
    }
}

pub(super) fn plan_insert(ctx: &PlanContext<'_>, insert: Insert) -> PlanResult<Plan> {
    let TableObject::TableName(name) = &insert.table else {
        return Err(PlanError::unsupported("INSERT into a table function"));
    };
    let t = table_of(ctx, name)?;
    let keyspace: Arc<str> = Arc::from(t.keyspace.name.as_str());
    let kind = t.kind();
    if kind == TableKindRef::Unsharded {
        return Ok(Plan::Route(Route {
            keyspace,
            routing: single_shard_route(&t),
            sql: None,
            merge: None,
            write: true,
            note: "unsharded".to_string(),
        }));
    }
    check_reference_write(&t)?;
    let info = t
        .info
        .clone()
        .ok_or_else(|| PlanError::no_table(&t.keyspace.name, &t.name))?;
    let has_lookups = info.owned_lookups().next().is_some();
    if has_lookups && (insert.ignore || insert.replace_into || insert.on.is_some()) {
        return Err(PlanError::unsupported(format!(
            "{} into table '{}' with owned lookup vindexes",
            if insert.replace_into {
                "REPLACE"
            } else if insert.ignore {
                "INSERT IGNORE"
            } else {
                "INSERT ... ON DUPLICATE KEY UPDATE"
            },
            t.name
        )));
    }
    if !insert.assignments.is_empty() {
        return Err(PlanError::unsupported("INSERT ... SET on a sharded table"));
    }
    let Some(source) = &insert.source else {
        return Err(PlanError::unsupported(
            "INSERT without VALUES on a sharded table",
        ));
    };
    let SetExpr::Values(values) = source.body.as_ref() else {
        // INSERT ... SELECT: the gate runs the SELECT through the planner,
        // then inserts its rows as VALUES (split by vindex, with sequence
        // ids and lookup entries, as any INSERT).
        let select = source.to_string();
        let printed = Statement::Insert(insert.clone()).to_string();
        if !printed.contains(&select) {
            return Err(PlanError::unsupported(
                "this form of INSERT ... SELECT on a sharded table",
            ));
        }
        return Ok(Plan::InsertSelect(Box::new(
            super::materialize::InsertSelectPlan {
                keyspace,
                select,
                insert: printed.replacen(&source.to_string(), &super::materialize::rows_mark(0), 1),
            },
        )));
    };
    let (mut columns, mut column_sql): (Vec<String>, Vec<String>) = if insert.columns.is_empty() {
        // The table's columns in order, as the schema tracker read them.
        let schema = ctx
            .schema
            .and_then(|s| s.table(&t.keyspace.name, &t.name))
            .ok_or_else(|| {
                PlanError::unsupported(format!(
                    "INSERT without a column list into '{}' before its schema is known (name the columns)",
                    t.name
                ))
            })?;
        schema
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.to_ascii_lowercase(),
                    format!("`{}`", c.name.replace('`', "``")),
                )
            })
            .unzip()
    } else {
        insert
            .columns
            .iter()
            .map(|c| {
                (
                    c.0.last()
                        .map(|p| p.to_string().trim_matches('`').to_ascii_lowercase())
                        .unwrap_or_default(),
                    c.to_string(),
                )
            })
            .unzip()
    };
    let mut rows: Vec<InsertRow> = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        if row.content.len() != columns.len() {
            return Err(PlanError {
                code: 1136,
                sqlstate: "21S01",
                message: format!(
                    "Column count doesn't match value count at row {}",
                    rows.len() + 1
                ),
            });
        }
        rows.push(row.content.iter().map(row_value).collect());
    }
    let mut sequence_column = usize::MAX;
    let sequence = info.auto_increment.clone();
    if let Some(ai) = &sequence {
        sequence_column = match columns.iter().position(|c| *c == ai.column) {
            Some(i) => i,
            None => {
                columns.push(ai.column.clone());
                column_sql.push(format!("`{}`", ai.column));
                for r in &mut rows {
                    r.push(RowValue::Generated);
                }
                columns.len() - 1
            }
        };
    }
    let (vindex, vindex_column, all_shards) = match kind {
        TableKindRef::Reference => (None, usize::MAX, true),
        _ => {
            let (vcol, vx) = info.primary().ok_or_else(|| {
                PlanError::unsupported(format!(
                    "writes to table '{}' whose primary vindex has several columns",
                    t.name
                ))
            })?;
            let at = columns.iter().position(|c| c == vcol).ok_or_else(|| PlanError {
                code: 1105,
                sqlstate: "HY000",
                message: format!(
                    "INSERT into sharded table '{}' must give its primary vindex column '{vcol}'",
                    t.name
                ),
            })?;
            if vx.needs_lookup() {
                return Err(PlanError::unsupported(format!(
                    "INSERT into table '{}' whose primary vindex is a lookup",
                    t.name
                )));
            }
            for r in &rows {
                if let RowValue::Text { value: None, sql } = &r[at] {
                    return Err(PlanError::unsupported(format!(
                        "an expression ({sql}) as the primary vindex value of an INSERT"
                    )));
                }
            }
            (Some(vx.clone()), at, false)
        }
    };
    let mut lookups = Vec::new();
    if kind == TableKindRef::Sharded {
        for cv in info.owned_lookups() {
            let at: Vec<usize> = cv
                .columns
                .iter()
                .map(|c| columns.iter().position(|x| x == c).unwrap_or(usize::MAX))
                .collect();
            for r in &rows {
                for &i in &at {
                    if let Some(RowValue::Text { value: None, sql }) = r.get(i) {
                        return Err(PlanError::unsupported(format!(
                            "an expression ({sql}) as the value of lookup vindex '{}' in an INSERT",
                            cv.vindex.name()
                        )));
                    }
                }
            }
            lookups.push(OwnedLookup {
                vindex: cv.vindex.clone(),
                columns: at,
            });
        }
    }
    let verb = if insert.replace_into {
        "REPLACE"
    } else {
        "INSERT"
    };
    let ignore = if insert.ignore { " IGNORE" } else { "" };
    let prefix = format!("{verb}{ignore} INTO {name} ({})", column_sql.join(", "));
    let suffix = match &insert.on {
        None => String::new(),
        Some(OnInsert::DuplicateKeyUpdate(assignments)) => {
            for a in assignments {
                if let AssignmentTarget::ColumnName(c) = &a.target
                    && info.column_vindexes.iter().any(|cv| {
                        cv.columns
                            .iter()
                            .any(|vc| c.to_string().trim_matches('`').eq_ignore_ascii_case(vc))
                    })
                {
                    return Err(vindex_change_error(&c.to_string()));
                }
            }
            let parts: Vec<String> = assignments.iter().map(|a| a.to_string()).collect();
            format!(" ON DUPLICATE KEY UPDATE {}", parts.join(", "))
        }
        Some(other) => return Err(PlanError::unsupported(other.to_string())),
    };
    Ok(Plan::Insert(InsertPlan {
        keyspace,
        table: t.name.clone(),
        prefix,
        rows,
        suffix,
        vindex,
        vindex_column,
        sequence,
        sequence_column,
        all_shards,
        lookups,
    }))
}

/// A value of an inserted row. Literals are written back from their value
/// and other expressions printed from the tree: parser spans do not always
/// cover a whole expression (a negated number's starts at the number).
fn row_value(e: &Expr) -> RowValue {
    match text::literal(e) {
        Some(Err(i)) => RowValue::Param(i),
        Some(Ok(v)) => RowValue::Text {
            sql: v.to_sql(),
            value: Some(v),
        },
        None => RowValue::Text {
            sql: e.to_string(),
            value: None,
        },
    }
}

fn vindex_change_error(column: &str) -> PlanError {
    PlanError::unsupported(format!(
        "changing vindex column {column}: You can't update primary vindex columns"
    ))
}

fn dml_route(
    t: &ResolvedTable,
    selection: Option<&Expr>,
    has_limit: bool,
    has_order: bool,
    what: &str,
) -> PlanResult<Plan> {
    let keyspace: Arc<str> = Arc::from(t.keyspace.name.as_str());
    match t.kind() {
        TableKindRef::Unsharded => {
            return Ok(Plan::Route(Route {
                keyspace,
                routing: single_shard_route(t),
                sql: None,
                merge: None,
                write: true,
                note: "unsharded".to_string(),
            }));
        }
        TableKindRef::Reference => {
            check_reference_write(t)?;
            return Ok(Plan::Route(Route {
                keyspace,
                routing: Routing::Scatter,
                sql: None,
                merge: None,
                write: true,
                note: "reference table: every shard's copy".to_string(),
            }));
        }
        TableKindRef::Sharded => {}
    }
    let routing = vindex_routing(&[t], selection).unwrap_or(Routing::Scatter);
    let single = matches!(&routing, Routing::Vindex { values, vindex } if values.len() == 1 && vindex.is_unique());
    if !single && (has_limit || has_order) {
        return Err(PlanError::unsupported(format!(
            "multi-shard {what} with {}",
            if has_limit { "LIMIT" } else { "ORDER BY" }
        )));
    }
    Ok(Plan::Route(Route {
        keyspace,
        routing,
        sql: None,
        merge: None,
        write: true,
        note: if single {
            "routed by a unique vindex".to_string()
        } else {
            "every shard the condition allows".to_string()
        },
    }))
}

pub(super) fn plan_update(ctx: &PlanContext<'_>, update: Update) -> PlanResult<Plan> {
    if !update.table.joins.is_empty() || update.from.is_some() {
        return Err(PlanError::unsupported(
            "multi-table UPDATE on a sharded keyspace",
        ));
    }
    let TableFactor::Table { name, alias, .. } = &update.table.relation else {
        return Err(PlanError::unsupported("UPDATE of a derived table"));
    };
    let t = ctx.resolve(name, alias.as_ref().map(|a| a.name.value.clone()))?;
    // Owned lookup columns may change (their entries move with them); any
    // other vindex column may not.
    let mut assigned: Vec<(String, RowValue)> = Vec::new();
    if t.kind() == TableKindRef::Sharded
        && let Some(info) = &t.info
    {
        for a in &update.assignments {
            let targets: Vec<&ObjectName> = match &a.target {
                AssignmentTarget::ColumnName(c) => vec![c],
                AssignmentTarget::Tuple(cs) => cs.iter().collect(),
            };
            for c in &targets {
                let col =
                    c.0.last()
                        .map(|p| p.to_string().trim_matches('`').to_ascii_lowercase())
                        .unwrap_or_default();
                let owned_lookup = info.owned_lookups().any(|cv| cv.columns.contains(&col));
                if owned_lookup {
                    let value = match (targets.len(), row_value(&a.value)) {
                        (1, v @ (RowValue::Param(_) | RowValue::Text { value: Some(_), .. })) => v,
                        _ => {
                            return Err(PlanError::unsupported(format!(
                                "UPDATE setting lookup vindex column {col} to an expression ({})",
                                a.value
                            )));
                        }
                    };
                    assigned.push((col, value));
                } else if info
                    .column_vindexes
                    .iter()
                    .any(|cv| cv.columns.contains(&col))
                {
                    return Err(vindex_change_error(&col));
                }
            }
        }
    }
    let plan = dml_route(
        &t,
        update.selection.as_ref(),
        update.limit.is_some(),
        !update.order_by.is_empty(),
        "UPDATE",
    )?;
    let Some(info) = t.info.as_ref().filter(|_| !assigned.is_empty()) else {
        return Ok(plan);
    };
    let lookups: Vec<&ColumnVindex> = info
        .owned_lookups()
        .filter(|cv| {
            cv.columns
                .iter()
                .any(|c| assigned.iter().any(|(a, _)| a == c))
        })
        .collect();
    let new_values = lookups
        .iter()
        .map(|cv| {
            cv.columns
                .iter()
                .map(|c| {
                    assigned
                        .iter()
                        .find(|(a, _)| a == c)
                        .map(|(_, v)| v.clone())
                })
                .collect()
        })
        .collect();
    owned_dml(
        &t,
        plan,
        &lookups,
        Some(new_values),
        OwnedDmlText {
            statement: update.to_string(),
            relation: update.table.relation.to_string(),
            selection: update.selection.as_ref(),
            order_by: &update.order_by,
            limit: update.limit.as_ref(),
        },
    )
}

/// The parts of an UPDATE or DELETE its row-reading SELECT repeats.
struct OwnedDmlText<'a> {
    statement: String,
    relation: String,
    selection: Option<&'a Expr>,
    order_by: &'a [OrderByExpr],
    limit: Option<&'a Expr>,
}

/// Wraps the route of an UPDATE or DELETE that changes entries of owned
/// lookup vindexes: the rows are read first (primary vindex column, then
/// each lookup's columns) with the statement's own WHERE, ORDER BY and
/// LIMIT.
fn owned_dml(
    t: &ResolvedTable,
    plan: Plan,
    lookups: &[&ColumnVindex],
    new_values: Option<Vec<Vec<Option<RowValue>>>>,
    text: OwnedDmlText<'_>,
) -> PlanResult<Plan> {
    let Plan::Route(mut route) = plan else {
        return Ok(plan);
    };
    if lookups.is_empty() {
        return Ok(Plan::Route(route));
    }
    let info = t
        .info
        .as_ref()
        .expect("sharded tables have VSchema entries");
    let (primary_column, primary) = info.primary().ok_or_else(|| {
        PlanError::unsupported(format!(
            "writes to table '{}' whose primary vindex has several columns",
            t.name
        ))
    })?;
    let quote = |c: &str| format!("`{}`", c.replace('`', "``"));
    let mut columns = vec![format!("{}.{}", quote(&t.refname), quote(primary_column))];
    let mut owned = Vec::with_capacity(lookups.len());
    for cv in lookups {
        let mut at = Vec::with_capacity(cv.columns.len());
        for c in &cv.columns {
            at.push(columns.len());
            columns.push(format!("{}.{}", quote(&t.refname), quote(c)));
        }
        owned.push(OwnedLookup {
            vindex: cv.vindex.clone(),
            columns: at,
        });
    }
    let mut select_sql = format!("SELECT {} FROM {}", columns.join(", "), text.relation);
    if let Some(w) = text.selection {
        let _ = write!(select_sql, " WHERE {w}");
    }
    if !text.order_by.is_empty() {
        let keys: Vec<String> = text.order_by.iter().map(|o| o.to_string()).collect();
        let _ = write!(select_sql, " ORDER BY {}", keys.join(", "));
    }
    if let Some(l) = text.limit {
        let _ = write!(select_sql, " LIMIT {l}");
    }
    select_sql.push_str(" FOR UPDATE");
    route.sql = Some(text.statement);
    route.note = format!("{}; lookup entries kept in step", route.note);
    Ok(Plan::OwnedDml(Box::new(OwnedDml {
        table: t.name.clone(),
        route,
        select_sql,
        primary: primary.clone(),
        lookups: owned,
        new_values,
    })))
}

pub(super) fn plan_delete(ctx: &PlanContext<'_>, delete: Delete) -> PlanResult<Plan> {
    if !delete.tables.is_empty() || delete.using.is_some() {
        return Err(PlanError::unsupported(
            "multi-table DELETE on a sharded keyspace",
        ));
    }
    let from = match &delete.from {
        FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
    };
    let [twj] = from.as_slice() else {
        return Err(PlanError::unsupported(
            "multi-table DELETE on a sharded keyspace",
        ));
    };
    if !twj.joins.is_empty() {
        return Err(PlanError::unsupported(
            "multi-table DELETE on a sharded keyspace",
        ));
    }
    let TableFactor::Table { name, alias, .. } = &twj.relation else {
        return Err(PlanError::unsupported("DELETE from a derived table"));
    };
    let t = ctx.resolve(name, alias.as_ref().map(|a| a.name.value.clone()))?;
    let plan = dml_route(
        &t,
        delete.selection.as_ref(),
        delete.limit.is_some(),
        !delete.order_by.is_empty(),
        "DELETE",
    )?;
    let lookups: Vec<&ColumnVindex> = match (&t.info, t.kind()) {
        (Some(info), TableKindRef::Sharded) => info.owned_lookups().collect(),
        _ => Vec::new(),
    };
    owned_dml(
        &t,
        plan,
        &lookups,
        None,
        OwnedDmlText {
            statement: delete.to_string(),
            relation: twj.relation.to_string(),
            selection: delete.selection.as_ref(),
            order_by: &delete.order_by,
            limit: delete.limit.as_ref(),
        },
    )
}
