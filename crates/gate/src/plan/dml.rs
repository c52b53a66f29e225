//! Planning of INSERT, UPDATE and DELETE on sharded keyspaces: rows split by
//! their primary vindex, auto-increment ids from sequences, writes to
//! reference tables, and the refusals Vitess users expect (changing a
//! vindex column, LIMIT over several shards).

use std::sync::Arc;

use sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, Insert, ObjectName, OnInsert, SetExpr, TableFactor,
    TableObject, Update,
};

use super::select::{column_ref, vindex_routing};
use super::text::{self, OwnedValue};
use super::vschema::{AutoIncrement, TableKind};
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
    if info
        .column_vindexes
        .iter()
        .skip(1)
        .any(|cv| cv.vindex.needs_lookup())
    {
        return Err(PlanError::unsupported(format!(
            "writes to table '{}': maintaining its lookup vindexes",
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
        return Err(PlanError::unsupported(
            "INSERT ... SELECT on a sharded table",
        ));
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
    if let Some(info) = &t.info
        && info
            .column_vindexes
            .iter()
            .skip(1)
            .any(|cv| cv.vindex.needs_lookup())
    {
        return Err(PlanError::unsupported(format!(
            "{what} on table '{}': maintaining its lookup vindexes",
            t.name
        )));
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
            "routed by the primary vindex".to_string()
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
    if t.kind() == TableKindRef::Sharded
        && let Some(info) = &t.info
    {
        for a in &update.assignments {
            let targets: Vec<&ObjectName> = match &a.target {
                AssignmentTarget::ColumnName(c) => vec![c],
                AssignmentTarget::Tuple(cs) => cs.iter().collect(),
            };
            for c in targets {
                let col =
                    c.0.last()
                        .map(|p| p.to_string().trim_matches('`').to_ascii_lowercase())
                        .unwrap_or_default();
                if info
                    .column_vindexes
                    .iter()
                    .any(|cv| cv.columns.contains(&col))
                {
                    return Err(vindex_change_error(&col));
                }
            }
        }
    }
    dml_route(
        &t,
        update.selection.as_ref(),
        update.limit.is_some(),
        !update.order_by.is_empty(),
        "UPDATE",
    )
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
    let _ = column_ref;
    dml_route(
        &t,
        delete.selection.as_ref(),
        delete.limit.is_some(),
        !delete.order_by.is_empty(),
        "DELETE",
    )
}
