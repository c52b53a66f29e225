//! The planner for sharded keyspaces: resolves tables against the VSchema,
//! decides which shards a statement needs, and what the gate must do with
//! their answers.
//!
//! Statements for unsharded targets never come here: they are relayed as the
//! client sent them. A plan keeps the client's text whenever the shards can
//! run it unchanged, and rewrites only what a merge needs (aggregates split
//! into partial ones, hidden ORDER BY columns, widened LIMIT).

pub mod vschema;

mod dml;
pub mod join;
pub mod lookup;
pub mod materialize;
mod select;
pub mod subquery;
pub mod text;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use sqlparser::ast::{ObjectName, ObjectNamePart, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserOptions};

use crate::merge::MergeSpec;
use crate::topology::RoutingTable;
use crate::vindex::{KeyspaceId, Vindex, VindexValue};
pub use dml::{InsertPlan, InsertRow, OwnedDml, OwnedLookup, RowValue};
pub use text::{OwnedValue, interpolate};
use vschema::{KeyspaceVSchema, TableInfo, TableKind};

/// A planning failure, sent to the client as a MySQL error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub code: u16,
    pub sqlstate: &'static str,
    pub message: String,
}

impl PlanError {
    pub fn unsupported(what: impl fmt::Display) -> Self {
        PlanError {
            code: 1235,
            sqlstate: "42000",
            message: format!("This version of Tessera doesn't yet support '{what}'"),
        }
    }
    pub fn syntax(message: impl Into<String>) -> Self {
        PlanError {
            code: 1064,
            sqlstate: "42000",
            message: message.into(),
        }
    }
    pub fn no_table(keyspace: &str, table: &str) -> Self {
        PlanError {
            code: 1146,
            sqlstate: "42S02",
            message: format!("Table '{keyspace}.{table}' doesn't exist"),
        }
    }
    pub fn other(message: impl Into<String>) -> Self {
        PlanError {
            code: 1105,
            sqlstate: "HY000",
            message: message.into(),
        }
    }
}

pub type PlanResult<T> = Result<T, PlanError>;

/// A value that picks a shard: known when planned, or a prepared
/// statement's parameter known at execution.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteValue {
    Literal(OwnedValue),
    Param(usize),
}

/// Which shards a statement goes to.
#[derive(Clone)]
pub enum Routing {
    /// Every shard.
    Scatter,
    /// Any single shard: every shard has the same answer (reference tables,
    /// statements without tables, metadata).
    AnyShard,
    /// The shards owning the keyspace ids of these primary-vindex values.
    Vindex {
        vindex: Arc<dyn Vindex>,
        values: Vec<RouteValue>,
    },
    /// One named shard.
    Shard(Arc<str>),
}

impl fmt::Debug for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Routing::Scatter => f.write_str("Scatter"),
            Routing::AnyShard => f.write_str("AnyShard"),
            Routing::Vindex { vindex, values } => {
                write!(f, "Vindex({} {:?})", vindex.name(), values)
            }
            Routing::Shard(s) => write!(f, "Shard({s})"),
        }
    }
}

/// A column of a scatter result named from its start, or from its end when
/// a `*` before it makes the count unknown until the answer comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRef {
    FromStart(usize),
    FromEnd(usize),
}

/// What to do with the rows of several shards.
#[derive(Debug, Clone)]
pub struct MergeTemplate {
    pub spec: MergeSpec,
    /// Hidden columns appended to the shard query (dropped at the end).
    pub hidden: usize,
    /// Column references in `spec` that count from the end: resolved when
    /// the column count is known.
    pub from_end: Vec<ColumnSlot>,
    /// The (table, column) shown by each select-list item (None for an
    /// expression, and for `*`, whose columns count as `default_table`'s).
    pub item_sources: Vec<Option<(String, String)>>,
    pub hidden_sources: Vec<Option<(String, String)>>,
    /// The only table of the query, for the columns of a `*`.
    pub default_table: Option<String>,
    /// Where the select list's first `*` is.
    pub star_index: Option<usize>,
    /// Prepared-statement parameters giving (OFFSET, LIMIT).
    pub limit_params: (Option<usize>, Option<usize>),
    /// What answers the query when the merge finds at execution that it
    /// cannot (a computed text column it would compare).
    pub gather_instead: Option<Arc<materialize::MaterializePlan>>,
}

/// Where in a MergeSpec a from-end column index sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnSlot {
    GroupBy(usize, usize),
    Order(usize, usize),
}

impl MergeTemplate {
    /// The (table, column) behind each of an answer's columns, as far as
    /// the plan knows them.
    pub fn column_sources(&self, names: &[&str]) -> Vec<Option<(String, String)>> {
        let n = names.len();
        let visible = n.saturating_sub(self.hidden);
        // Items before a `*` keep their positions; the `*`'s columns are
        // its table's, by name.
        let before_star = self.star_index.unwrap_or(visible);
        (0..n)
            .map(|i| {
                if i >= visible {
                    return self.hidden_sources.get(i - visible).cloned().flatten();
                }
                if i < before_star {
                    return self.item_sources.get(i).cloned().flatten();
                }
                self.default_table
                    .as_ref()
                    .map(|t| (t.clone(), names[i].to_ascii_lowercase()))
            })
            .collect()
    }

    /// The spec for an answer of `columns` columns, with LIMIT/OFFSET
    /// parameters filled in.
    pub fn resolve_with(&self, columns: usize, params: &[OwnedValue]) -> PlanResult<MergeSpec> {
        let mut spec = self.resolve(columns);
        let value = |i: usize| -> PlanResult<u64> {
            match params.get(i) {
                Some(OwnedValue::Int(n)) if *n >= 0 => Ok(*n as u64),
                Some(OwnedValue::UInt(n)) => Ok(*n),
                Some(OwnedValue::Bytes(b)) | Some(OwnedValue::Decimal(b)) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .ok_or_else(|| PlanError {
                        code: 1210,
                        sqlstate: "HY000",
                        message: "Incorrect arguments to LIMIT".to_string(),
                    }),
                _ => Err(PlanError {
                    code: 1210,
                    sqlstate: "HY000",
                    message: "Incorrect arguments to LIMIT".to_string(),
                }),
            }
        };
        if let Some(i) = self.limit_params.0 {
            spec.offset = value(i)?;
        }
        if let Some(i) = self.limit_params.1 {
            spec.limit = Some(value(i)?);
        }
        Ok(spec)
    }

    /// The spec for an answer of `columns` columns.
    pub fn resolve(&self, columns: usize) -> MergeSpec {
        let mut spec = self.spec.clone();
        spec.visible_columns = columns.saturating_sub(self.hidden);
        for slot in &self.from_end {
            match *slot {
                ColumnSlot::GroupBy(i, k) => spec.group_by[i] = columns.saturating_sub(k),
                ColumnSlot::Order(i, k) => spec.order_by[i].column = columns.saturating_sub(k),
            }
        }
        spec
    }
}

/// A statement for one keyspace's shards.
#[derive(Debug, Clone)]
pub struct Route {
    pub keyspace: Arc<str>,
    pub routing: Routing,
    /// The text the shards run; None means the client's own.
    pub sql: Option<String>,
    /// How several shards' rows combine; None for DML and for plain
    /// concatenation.
    pub merge: Option<MergeTemplate>,
    /// The statement changes data (its shards' answers are OK packets whose
    /// affected rows add up).
    pub write: bool,
    /// A description of the route for VEXPLAIN.
    pub note: String,
}

#[derive(Debug, Clone)]
pub enum Plan {
    Route(Route),
    Insert(InsertPlan),
    /// UPDATE or DELETE of a table with owned lookup vindexes.
    OwnedDml(Box<OwnedDml>),
    /// DDL runs on every shard of the keyspace.
    Ddl {
        keyspace: Arc<str>,
    },
    Begin,
    Commit,
    Rollback,
    ShowVSchemaTables {
        keyspace: Arc<str>,
    },
    ShowVSchemaVindexes {
        keyspace: Arc<str>,
    },
    /// `SELECT NEXT n VALUES FROM seq`.
    SelectNext {
        keyspace: Arc<str>,
        table: String,
        count: u64,
    },
    VExplain(Box<Plan>),
    /// A join of two tables the gate does itself.
    Join(Box<join::JoinPlan>),
    /// Subqueries the gate runs first; their answers complete `outer`,
    /// which is then planned and run.
    Pullout {
        subqueries: Vec<subquery::Pulled>,
        outer: String,
    },
    /// Rows the gate gathers first, written into the rest of the query,
    /// which runs on one shard.
    Materialize(Box<materialize::MaterializePlan>),
    /// INSERT ... SELECT into a sharded table: the SELECT's rows, then an
    /// INSERT of them.
    InsertSelect(Box<materialize::InsertSelectPlan>),
}

impl Plan {
    /// What VEXPLAIN PLAN prints.
    pub fn explain(&self) -> String {
        match self {
            Plan::Route(r) => format!(
                "Route {} on keyspace {} ({}){}{}",
                match &r.routing {
                    Routing::Scatter => "Scatter".to_string(),
                    Routing::AnyShard => "AnyShard".to_string(),
                    Routing::Vindex { vindex, values } => format!(
                        "{} by vindex {} ({}) on {} value(s)",
                        if values.len() == 1 && vindex.is_unique() {
                            "EqualUnique"
                        } else {
                            "IN"
                        },
                        vindex.name(),
                        vindex.kind(),
                        values.len()
                    ),
                    Routing::Shard(s) => format!("Shard {s}"),
                },
                r.keyspace,
                r.note,
                r.sql
                    .as_ref()
                    .map(|q| format!("\n  query: {q}"))
                    .unwrap_or_default(),
                r.merge
                    .as_ref()
                    .map(|m| format!("\n  merge in gate: {}", describe_merge(&m.spec)))
                    .unwrap_or_default(),
            ),
            Plan::Insert(i) => format!(
                "Insert into {}.{} split by vindex {}{}{}",
                i.keyspace,
                i.table,
                i.vindex.as_ref().map_or("-", |v| v.name()),
                i.sequence
                    .as_ref()
                    .map(|s| format!(
                        ", column {} from sequence {}.{}",
                        s.column, s.sequence_keyspace, s.sequence_table
                    ))
                    .unwrap_or_default(),
                if i.lookups.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", entries added to lookup vindex(es) {}",
                        i.lookups
                            .iter()
                            .map(|l| l.vindex.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
            Plan::OwnedDml(d) => format!(
                "{}\n  rows read and locked first: {}\n  then the entries of lookup vindex(es) {} changed with them",
                Plan::Route(d.route.clone()).explain(),
                d.select_sql,
                d.lookups
                    .iter()
                    .map(|l| l.vindex.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Plan::Ddl { keyspace } => format!("DDL on every shard of keyspace {keyspace}"),
            Plan::Begin | Plan::Commit | Plan::Rollback => "Transaction control".to_string(),
            Plan::ShowVSchemaTables { .. } | Plan::ShowVSchemaVindexes { .. } => {
                "Answered by the gate from the VSchema".to_string()
            }
            Plan::SelectNext {
                keyspace, table, ..
            } => format!("Sequence {keyspace}.{table}"),
            Plan::VExplain(p) => p.explain(),
            Plan::Join(j) => format!(
                "{} in the gate (nested loop on {} key(s)) on keyspace {}\n  left: {}\n  right, per left key: {}{}{}",
                if j.outer.is_some() { "Left join" } else { "Join" },
                j.keys.len(),
                j.keyspace,
                j.left_sql,
                j.right_sql.replace('\u{3}', ""),
                j.outer
                    .as_ref()
                    .map(|o| {
                        let mut text = format!(
                            "\n  right side of a left row no right row matches: {}\n  right columns from: {}",
                            o.null_row_sql, o.columns_sql
                        );
                        if let Some(i) = o.on_left {
                            text += &format!("\n  rows match only when left column {i} is 1 (ON)");
                        }
                        if let Some(i) = o.where_right {
                            text += &format!(
                                "\n  joined rows kept only when right column {i} is 1 (WHERE)"
                            );
                        }
                        text
                    })
                    .unwrap_or_default(),
                j.merge
                    .as_ref()
                    .map(|m| format!(
                        "\n  joined rows merged in gate: {}\n  columns from: {}",
                        describe_merge(&m.template.spec),
                        m.shape_sql
                    ))
                    .unwrap_or_default()
            ),
            Plan::Materialize(m) => format!(
                "Rows gathered by the gate on keyspace {} ({})\n{}\n  then on one shard over them: {}",
                m.keyspace,
                m.note,
                m.gathered
                    .iter()
                    .enumerate()
                    .map(|(i, g)| format!("  gathered <rows {i}>: {}", g.sql))
                    .collect::<Vec<_>>()
                    .join("\n"),
                materialize::fill(
                    &m.outer,
                    &(0..m.gathered.len())
                        .map(|i| format!("<rows {i}>"))
                        .collect::<Vec<_>>()
                )
                .unwrap_or_else(|_| m.outer.clone())
            ),
            Plan::InsertSelect(i) => format!(
                "Rows of a SELECT gathered by the gate, then inserted on keyspace {}\n  gathered: {}\n  then: {}",
                i.keyspace,
                i.select,
                i.insert.replace(&materialize::rows_mark(0), "VALUES <gathered rows>")
            ),
            Plan::Pullout { subqueries, outer } => format!(
                "Subqueries evaluated first by the gate:\n{}\n  then: {}",
                subqueries
                    .iter()
                    .map(|s| format!("  {:?}: {}", s.kind, s.sql))
                    .collect::<Vec<_>>()
                    .join("\n"),
                outer.replace('\u{2}', "")
            ),
        }
    }
}

fn describe_merge(spec: &MergeSpec) -> String {
    let mut parts = Vec::new();
    if spec.aggregate {
        parts.push(format!(
            "aggregate ({} aggregates, group by {:?})",
            spec.aggregates.len(),
            spec.group_by
        ));
    }
    if spec.having.is_some() {
        parts.push("having".to_string());
    }
    if spec.distinct {
        parts.push("distinct".to_string());
    }
    if !spec.order_by.is_empty() {
        parts.push(format!(
            "order by {:?}",
            spec.order_by
                .iter()
                .map(|k| (k.column, k.descending))
                .collect::<Vec<_>>()
        ));
    }
    if let Some(l) = spec.limit {
        parts.push(format!("limit {l} offset {}", spec.offset));
    }
    if parts.is_empty() {
        "concatenate".to_string()
    } else {
        parts.join(", ")
    }
}

/// What the planner needs of the session and the topology.
pub struct PlanContext<'a> {
    pub routing: &'a RoutingTable,
    /// The session's keyspace (`USE ks`), when it has one.
    pub keyspace: Option<&'a str>,
    /// Table schemas, to tell a subquery's own columns from the outer
    /// query's.
    pub schema: Option<&'a crate::schema::SchemaTracker>,
}

/// A table of the statement, resolved.
#[derive(Clone)]
pub struct ResolvedTable {
    pub keyspace: Arc<KeyspaceVSchema>,
    /// The VSchema entry; None for a table of an unsharded keyspace the
    /// VSchema does not list, or a system schema.
    pub info: Option<TableInfo>,
    pub name: String,
    /// The name the statement refers to it by (alias or table name).
    pub refname: String,
    /// information_schema, mysql, performance_schema, sys: answered by any shard.
    pub system: bool,
}

impl ResolvedTable {
    fn kind(&self) -> TableKindRef {
        if self.system {
            return TableKindRef::Reference;
        }
        if !self.keyspace.sharded {
            return TableKindRef::Unsharded;
        }
        match self.info.as_ref().map(|i| &i.kind) {
            Some(TableKind::Reference { .. }) => TableKindRef::Reference,
            Some(TableKind::Sequence) | Some(TableKind::Unsharded) => TableKindRef::Unsharded,
            _ => TableKindRef::Sharded,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableKindRef {
    Sharded,
    Reference,
    Unsharded,
}

const SYSTEM_SCHEMAS: &[&str] = &["information_schema", "mysql", "performance_schema", "sys"];

impl PlanContext<'_> {
    fn keyspace(&self, name: &str) -> PlanResult<Arc<KeyspaceVSchema>> {
        self.routing
            .keyspaces
            .get(name)
            .map(|k| k.vschema.clone())
            .ok_or_else(|| PlanError {
                code: 1049,
                sqlstate: "42000",
                message: format!("Unknown database '{name}'"),
            })
    }

    /// The keyspace for statements that name no table.
    fn default_keyspace(&self) -> PlanResult<Arc<KeyspaceVSchema>> {
        match self.keyspace {
            Some(ks) => self.keyspace(ks),
            None => self
                .routing
                .default_keyspace()
                .or_else(|| self.routing.keyspaces.values().next())
                .map(|k| k.vschema.clone())
                .ok_or(PlanError {
                    code: 1046,
                    sqlstate: "3D000",
                    message: "No database selected".to_string(),
                }),
        }
    }

    /// Resolves a table name as written (`t` or `ks.t`).
    pub fn resolve(&self, name: &ObjectName, refname: Option<String>) -> PlanResult<ResolvedTable> {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) => Ok(i.value.clone()),
                other => Err(PlanError::unsupported(format!("table name {other}"))),
            })
            .collect::<PlanResult<_>>()?;
        let (qualifier, table) = match parts.as_slice() {
            [t] => (None, t.clone()),
            [ks, t] => (Some(ks.clone()), t.clone()),
            _ => return Err(PlanError::unsupported(format!("table name {name}"))),
        };
        let refname = refname.unwrap_or_else(|| table.clone());
        let mut qualifier = qualifier;
        match self
            .routing
            .routing_rules
            .find(qualifier.as_deref(), self.keyspace, &table)
        {
            None => {}
            Some(None) => {
                return Err(PlanError::other(format!(
                    "table {table} has been disabled by a routing rule"
                )));
            }
            Some(Some((ks, target))) => {
                if *target != table {
                    return Err(PlanError::unsupported(format!(
                        "a routing rule that renames table {table} to {ks}.{target}"
                    )));
                }
                if let Some(q) = &qualifier
                    && q != ks
                {
                    return Err(PlanError::unsupported(format!(
                        "the keyspace-qualified name {q}.{table}, which a routing rule sends to keyspace {ks} (name it without the keyspace)"
                    )));
                }
                qualifier = Some(ks.clone());
            }
        }
        if let Some(q) = &qualifier
            && SYSTEM_SCHEMAS.contains(&q.to_ascii_lowercase().as_str())
        {
            return Ok(ResolvedTable {
                keyspace: self.default_keyspace()?,
                info: None,
                name: table,
                refname,
                system: true,
            });
        }
        let keyspace = match (&qualifier, self.keyspace) {
            (Some(q), _) => {
                // `ks/-80.t` style shard qualifiers are not table names.
                let ks = q.split([':', '/', '@']).next().unwrap_or(q);
                self.keyspace(ks)?
            }
            (None, Some(ks)) => self.keyspace(ks)?,
            (None, None) => self.find_table_keyspace(&table)?,
        };
        if let Some(e) = &keyspace.error {
            return Err(PlanError::other(e.clone()));
        }
        let info = keyspace.tables.get(&table).cloned();
        if keyspace.sharded && info.is_none() {
            return Err(PlanError {
                code: 1146,
                sqlstate: "42S02",
                message: format!(
                    "Table '{}.{table}' doesn't exist: the VSchema of sharded keyspace '{}' has no table '{table}'",
                    keyspace.name, keyspace.name
                ),
            });
        }
        Ok(ResolvedTable {
            keyspace,
            info,
            name: table,
            refname,
            system: false,
        })
    }

    /// The keyspace of a table named without one, for a session without a
    /// keyspace: the one keyspace whose VSchema lists it, else the default
    /// unsharded keyspace.
    fn find_table_keyspace(&self, table: &str) -> PlanResult<Arc<KeyspaceVSchema>> {
        let mut found = self.routing.keyspaces.values().filter(|k| {
            !k.vschema.require_explicit_routing && k.vschema.tables.contains_key(table)
        });
        match (found.next(), found.next()) {
            (Some(only), None) => Ok(only.vschema.clone()),
            (Some(a), Some(b)) => Err(PlanError {
                code: 1105,
                sqlstate: "HY000",
                message: format!(
                    "ambiguous table reference: '{table}' is in keyspaces '{}' and '{}'; qualify it or USE one",
                    a.keyspace.name, b.keyspace.name
                ),
            }),
            (None, _) => match self.routing.default_keyspace() {
                Some(k) if !k.vschema.sharded => Ok(k.vschema.clone()),
                _ => Err(PlanError {
                    code: 1146,
                    sqlstate: "42S02",
                    message: format!("Table '{table}' doesn't exist in any keyspace's VSchema"),
                }),
            },
        }
    }
}

/// Parses one statement the way the planner needs it: string literals kept
/// as written, so re-printed SQL means exactly what the client sent.
pub fn parse(sql: &str) -> PlanResult<Statement> {
    let dialect = MySqlDialect {};
    let mut statements = Parser::new(&dialect)
        .with_options(ParserOptions::new().with_unescape(false))
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| {
            PlanError::syntax(format!(
                "You have an error in your SQL syntax; {}",
                e.to_string().trim_start_matches("sql parser error: ")
            ))
        })?;
    match statements.len() {
        1 => Ok(statements.pop().expect("one statement")),
        0 => Err(PlanError {
            code: 1065,
            sqlstate: "42000",
            message: "Query was empty".to_string(),
        }),
        _ => Err(PlanError::unsupported(
            "several statements in one query on a sharded keyspace",
        )),
    }
}

/// Plans one statement (text or prepared: prepared ones carry `?`).
pub fn plan(ctx: &PlanContext<'_>, sql: &str) -> PlanResult<Plan> {
    let trimmed = text::strip_leading_comments(sql);
    if let Some(rest) = text::strip_keyword(trimmed, "vexplain") {
        let rest = text::strip_keyword(rest, "plan")
            .or_else(|| text::strip_keyword(rest, "all"))
            .or_else(|| text::strip_keyword(rest, "queries"))
            .unwrap_or(rest);
        return Ok(Plan::VExplain(Box::new(plan(ctx, rest)?)));
    }
    if let Some(rest) = text::strip_keyword(trimmed, "show")
        && let Some(rest) = text::strip_keyword(rest, "vschema")
    {
        let keyspace: Arc<str> = Arc::from(ctx.default_keyspace()?.name.as_str());
        let rest = rest.trim().trim_end_matches(';').trim();
        return if rest.eq_ignore_ascii_case("tables") {
            Ok(Plan::ShowVSchemaTables { keyspace })
        } else if rest.eq_ignore_ascii_case("vindexes") {
            Ok(Plan::ShowVSchemaVindexes { keyspace })
        } else {
            Err(PlanError::unsupported(format!("SHOW VSCHEMA {rest}")))
        };
    }
    if let Some((table, count)) = crate::sequence::parse_select_next(trimmed) {
        let name = ObjectName::from(
            table
                .split('.')
                .map(sqlparser::ast::Ident::new)
                .collect::<Vec<_>>(),
        );
        let resolved = ctx.resolve(&name, None)?;
        if !matches!(
            resolved.info.as_ref().map(|i| &i.kind),
            Some(TableKind::Sequence)
        ) {
            return Err(PlanError::other(format!(
                "'{table}' is not a sequence table of the VSchema"
            )));
        }
        return Ok(Plan::SelectNext {
            keyspace: Arc::from(resolved.keyspace.name.as_str()),
            table: resolved.name,
            count,
        });
    }
    let mut statement = parse(sql)?;
    let params = number_params(&mut statement);
    // With parameters, the shards get the printed statement, whose
    // placeholders carry their numbers, with the values filled in.
    let printed = (params > 0).then(|| statement.to_string());
    let mut planned = plan_statement(ctx, sql, statement)?;
    if let (Some(printed), Plan::Route(route)) = (printed, &mut planned)
        && route.sql.is_none()
    {
        route.sql = Some(printed);
    }
    Ok(planned)
}

/// Renames each `?` to a numbered mark (in text order), so printed SQL can
/// be filled with the values of an execution. Returns how many there are.
fn number_params(statement: &mut Statement) -> usize {
    use sqlparser::ast::{Expr, Value, visit_expressions, visit_expressions_mut};
    use std::ops::ControlFlow;
    let mut starts = Vec::new();
    let _ = visit_expressions(&*statement, |e| {
        if let Expr::Value(v) = e
            && matches!(v.value, Value::Placeholder(_))
        {
            starts.push((v.span.start.line, v.span.start.column));
        }
        ControlFlow::<()>::Continue(())
    });
    let mut order: Vec<usize> = (0..starts.len()).collect();
    order.sort_by_key(|&i| starts[i]);
    let mut rank = vec![0; starts.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let mut seen = 0;
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(p) = &mut v.value
        {
            *p = format!("{}{}{}", text::PARAM_MARK, rank[seen], text::PARAM_END);
            seen += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    starts.len()
}

fn plan_statement(ctx: &PlanContext<'_>, sql: &str, statement: Statement) -> PlanResult<Plan> {
    match statement {
        Statement::Query(query) => select::plan_query(ctx, sql, *query),
        Statement::Insert(insert) => dml::plan_insert(ctx, insert),
        Statement::Update(update) => dml::plan_update(ctx, update),
        Statement::Delete(delete) => dml::plan_delete(ctx, delete),
        Statement::StartTransaction { .. } => Ok(Plan::Begin),
        Statement::Commit { chain: false, .. } => Ok(Plan::Commit),
        Statement::Rollback {
            chain: false,
            savepoint: None,
        } => Ok(Plan::Rollback),
        Statement::CreateTable(ref c) => ddl(ctx, &c.name),
        Statement::AlterTable(ref a) => ddl(ctx, &a.name),
        Statement::CreateIndex(ref c) => ddl(ctx, &c.table_name),
        Statement::Drop { ref names, .. } => match names.first() {
            Some(n) => ddl(ctx, n),
            None => Err(PlanError::unsupported("DROP without a name")),
        },
        Statement::Truncate(ref t) => match t.table_names.first() {
            Some(n) => ddl(ctx, &n.name),
            None => Err(PlanError::unsupported("TRUNCATE without a table")),
        },
        Statement::RenameTable(ref r) => match r.first() {
            Some(r) => ddl(ctx, &r.old_name),
            None => Err(PlanError::unsupported("RENAME TABLE without a table")),
        },
        Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCreate { .. }
        | Statement::ExplainTable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCollation { .. }
        | Statement::ShowCharset(..) => Ok(Plan::Route(Route {
            keyspace: Arc::from(ctx.default_keyspace()?.name.as_str()),
            routing: Routing::AnyShard,
            sql: None,
            merge: None,
            write: false,
            note: "metadata from one shard".to_string(),
        })),
        Statement::Set(_) => Err(PlanError::unsupported(
            "SET on a sharded keyspace (session variables are not carried to every shard yet)",
        )),
        other => Err(PlanError::unsupported(format!(
            "{} on a sharded keyspace",
            statement_name(&other)
        ))),
    }
}

fn statement_name(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

fn ddl(ctx: &PlanContext<'_>, name: &ObjectName) -> PlanResult<Plan> {
    let keyspace = match name.0.as_slice() {
        [ObjectNamePart::Identifier(ks), _] => ctx.keyspace(&ks.value)?,
        _ => ctx.default_keyspace()?,
    };
    Ok(Plan::Ddl {
        keyspace: Arc::from(keyspace.name.as_str()),
    })
}

/// Computes the shards a routing needs, given the values of a prepared
/// statement's parameters (empty for text statements).
pub fn shards_for(
    keyspace: &KeyspaceVSchema,
    routing: &Routing,
    params: &[OwnedValue],
) -> PlanResult<Vec<Arc<str>>> {
    match routing {
        Routing::Scatter => Ok(keyspace.shards.iter().map(|(n, _)| n.clone()).collect()),
        Routing::AnyShard => keyspace
            .shards
            .first()
            .map(|(n, _)| vec![n.clone()])
            .ok_or_else(|| PlanError::other(format!("keyspace '{}' has no shards", keyspace.name))),
        Routing::Shard(s) => Ok(vec![s.clone()]),
        // A lookup is asked by the executor (see `lookup_destinations`);
        // without its answer every shard may hold the rows.
        Routing::Vindex { vindex, .. } if vindex.needs_lookup() => {
            Ok(keyspace.shards.iter().map(|(n, _)| n.clone()).collect())
        }
        Routing::Vindex { vindex, values } => {
            let mut out: Vec<Arc<str>> = Vec::new();
            for v in values {
                let value = match v {
                    RouteValue::Literal(l) => l,
                    RouteValue::Param(i) => params.get(*i).ok_or_else(|| {
                        PlanError::other(format!("parameter {} was not bound", i + 1))
                    })?,
                };
                let shard = match vindex.map_fixed(&value.as_vindex_value()) {
                    // 8-byte keyspace ids are mapped without allocating;
                    // errors as `map_value` makes them for reads.
                    Some(Ok(Some(ksid))) => keyspace
                        .shards
                        .iter()
                        .find(|(_, range)| range.contains(&ksid))
                        .map(|(name, _)| name),
                    Some(Ok(None)) | Some(Err(crate::vindex::VindexError::InvalidValue { .. })) => {
                        continue;
                    }
                    Some(Err(e)) => return Err(PlanError::other(e.to_string())),
                    None => {
                        let Some(ksid) = map_value(vindex.as_ref(), value, false)? else {
                            continue;
                        };
                        keyspace.shard_for(&ksid)
                    }
                };
                if let Some(shard) = shard
                    && !out.contains(shard)
                {
                    out.push(shard.clone());
                }
            }
            Ok(out)
        }
    }
}

/// A value's keyspace id. For reads a value the vindex cannot map matches
/// no row (None); for writes it is an error.
pub fn map_value(
    vindex: &dyn Vindex,
    value: &OwnedValue,
    for_write: bool,
) -> PlanResult<Option<KeyspaceId>> {
    let v = value.as_vindex_value();
    match vindex.map(&v) {
        Ok(Some(k)) => Ok(Some(k)),
        Ok(None) if for_write => Err(PlanError::other(format!(
            "could not map {v} to a keyspace id with vindex '{}'",
            vindex.name()
        ))),
        Ok(None) => Ok(None),
        Err(crate::vindex::VindexError::InvalidValue { .. }) if !for_write => Ok(None),
        Err(e) => Err(PlanError::other(e.to_string())),
    }
}

impl OwnedValue {
    pub fn as_vindex_value(&self) -> VindexValue<'_> {
        match self {
            OwnedValue::Null => VindexValue::Null,
            OwnedValue::Int(i) => VindexValue::Int(*i),
            OwnedValue::UInt(u) => VindexValue::UInt(*u),
            OwnedValue::Bytes(b) | OwnedValue::Decimal(b) => VindexValue::Bytes(b),
        }
    }
}

/// The key both plan caches find a statement by: a hash of the session's
/// keyspace and the (normalised) text. Entries keep the text itself, so a
/// collision of two keys never returns the other statement's plan.
pub fn plan_key(keyspace: Option<&str>, sql: &str) -> u64 {
    use xxhash_rust::xxh64::Xxh64;
    let mut h = Xxh64::new(0);
    match keyspace {
        // A separator no keyspace name contains keeps ("a", "bc") and
        // ("ab", "c") apart.
        Some(ks) => {
            h.update(&[1]);
            h.update(ks.as_bytes());
            h.update(&[0]);
        }
        None => h.update(&[2]),
    }
    h.update(sql.as_bytes());
    h.digest()
}

/// Plans cached by statement text, within a bound on their number and
/// total text size.
pub struct PlanCache {
    inner: RwLock<CacheInner>,
    max_bytes: usize,
}

/// One cached plan with what it was made for.
struct CacheEntry {
    keyspace: Option<Box<str>>,
    sql: Box<str>,
    epoch: u64,
    plan: Arc<Plan>,
}

/// Plans are found by [`plan_key`], so a lookup allocates nothing; entries
/// keep their text to rule out collisions.
#[derive(Default)]
struct CacheInner {
    plans: HashMap<u64, Vec<CacheEntry>, BuildHasherDefault<KeyHasher>>,
    bytes: usize,
}

/// The map's keys are already hashes: they are used as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; this is a fallback that still mixes.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl PlanCache {
    pub fn new(max_bytes: usize) -> Self {
        PlanCache {
            inner: RwLock::new(CacheInner::default()),
            max_bytes,
        }
    }

    /// The plan cached for `sql` in a session of `keyspace`, if it was made
    /// with the VSchema of `epoch`; `key` is [`plan_key`] of the two.
    pub fn get(
        &self,
        key: u64,
        keyspace: Option<&str>,
        sql: &str,
        epoch: u64,
    ) -> Option<Arc<Plan>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .plans
            .get(&key)?
            .iter()
            .find(|e| e.epoch == epoch && e.keyspace.as_deref() == keyspace && &*e.sql == sql)
            .map(|e| e.plan.clone())
    }

    /// Keeps `plan` for [`get`](Self::get).
    pub fn insert(&self, key: u64, keyspace: Option<&str>, sql: &str, epoch: u64, plan: Arc<Plan>) {
        let cost = sql.len() * 2 + 512;
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.bytes + cost > self.max_bytes {
            // Dropping everything is crude but bounded, and a hot working
            // set refills in a moment.
            inner.plans.clear();
            inner.bytes = 0;
        }
        inner.bytes += cost;
        let entries = inner.plans.entry(key).or_default();
        entries.retain(|e| !(e.keyspace.as_deref() == keyspace && &*e.sql == sql));
        entries.push(CacheEntry {
            keyspace: keyspace.map(Box::from),
            sql: Box::from(sql),
            epoch,
            plan,
        });
    }

    /// Forgets every plan (a VSchema or shard list changed).
    pub fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.plans.clear();
        inner.bytes = 0;
    }
}

/// The plans one session used last, checked before the shared
/// [`PlanCache`]: a hit takes no lock and allocates nothing. Entries are
/// found as in the shared cache, by key, keyspace, text and VSchema epoch,
/// so a VSchema change or a `USE` never finds a plan made for other
/// conditions.
#[derive(Default)]
pub struct SessionPlans {
    entries: Vec<SessionPlan>,
    /// The entry the next new plan replaces once all are in use.
    next: usize,
}

struct SessionPlan {
    key: u64,
    epoch: u64,
    /// None: a session without a keyspace.
    keyspace: Option<String>,
    /// The text the plan is for; its buffer is reused by the plan that
    /// replaces this one.
    sql: String,
    plan: Arc<Plan>,
}

impl SessionPlans {
    /// How many plans a session keeps: enough for an application's few hot
    /// statements, few enough to scan without hashing.
    const SIZE: usize = 8;
    /// Longer texts (bulk inserts) are left to the shared cache, so that a
    /// session holds little memory.
    const MAX_TEXT: usize = 4096;

    /// The plan this session last made or found for `sql` (key from
    /// [`plan_key`]) under VSchema `epoch`.
    pub fn get(
        &self,
        key: u64,
        keyspace: Option<&str>,
        sql: &str,
        epoch: u64,
    ) -> Option<&Arc<Plan>> {
        self.entries
            .iter()
            .find(|e| {
                e.key == key
                    && e.epoch == epoch
                    && e.keyspace.as_deref() == keyspace
                    && e.sql == sql
            })
            .map(|e| &e.plan)
    }

    pub fn insert(
        &mut self,
        key: u64,
        keyspace: Option<&str>,
        sql: &str,
        epoch: u64,
        plan: Arc<Plan>,
    ) {
        if sql.len() > Self::MAX_TEXT {
            return;
        }
        // The same statement under an older epoch is replaced in place.
        let at = match self
            .entries
            .iter()
            .position(|e| e.key == key && e.keyspace.as_deref() == keyspace && e.sql == sql)
        {
            Some(i) => i,
            None if self.entries.len() < Self::SIZE => {
                self.entries.push(SessionPlan {
                    key,
                    epoch,
                    keyspace: keyspace.map(str::to_string),
                    sql: sql.to_string(),
                    plan,
                });
                return;
            }
            None => {
                let i = self.next;
                self.next = (self.next + 1) % Self::SIZE;
                i
            }
        };
        let e = &mut self.entries[at];
        e.key = key;
        e.epoch = epoch;
        e.plan = plan;
        match (keyspace, &mut e.keyspace) {
            (Some(ks), Some(old)) => {
                old.clear();
                old.push_str(ks);
            }
            (ks, old) => *old = ks.map(str::to_string),
        }
        e.sql.clear();
        e.sql.push_str(sql);
    }
}

/// The one shard a routing needs, found without allocating, when it is
/// plainly one: a named shard, any shard, a keyspace of one shard, or one
/// value of a vindex that maps without a lookup to a shard. None leaves the
/// answer (and any error) to [`shards_for`], which gives the same shard in
/// every case this one answers.
pub fn one_shard<'a>(
    keyspace: &'a KeyspaceVSchema,
    routing: &'a Routing,
    params: &[OwnedValue],
) -> Option<&'a Arc<str>> {
    match routing {
        Routing::Shard(s) => Some(s),
        Routing::AnyShard => keyspace.shards.first().map(|(n, _)| n),
        Routing::Scatter if keyspace.shards.len() == 1 => keyspace.shards.first().map(|(n, _)| n),
        Routing::Scatter => None,
        Routing::Vindex { vindex, values } => {
            if vindex.needs_lookup() {
                return None;
            }
            let [value] = values.as_slice() else {
                return None;
            };
            let value = match value {
                RouteValue::Literal(l) => l,
                RouteValue::Param(i) => params.get(*i)?,
            };
            let value = value.as_vindex_value();
            let ksid = match vindex.map_fixed(&value)? {
                Ok(Some(ksid)) => ksid,
                _ => return None,
            };
            keyspace
                .shards
                .iter()
                .find(|(_, range)| range.contains(&ksid))
                .map(|(name, _)| name)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::topology::KeyspaceRoute;
    use tessera_topo::{KeyRange, Keyspace};

    const VSCHEMA: &str = r#"{
        "sharded": true,
        "vindexes": {"hash": {"type": "hash"}},
        "tables": {
            "customer": {"column_vindexes": [{"column": "id", "name": "hash"}]},
            "orders": {"column_vindexes": [{"column": "customer_id", "name": "hash"}]},
            "product": {"type": "reference"}
        }
    }"#;

    /// Keyspace `ks` in `-80` and `80-`: customer and orders by `hash`,
    /// product a reference table.
    pub(super) fn routing() -> RoutingTable {
        let shards = ["-80", "80-"]
            .iter()
            .map(|s| (Arc::from(*s), KeyRange::from_shard_name(s).unwrap()))
            .collect();
        let vschema = KeyspaceVSchema::build("ks", true, Some(VSCHEMA), shards, &|_| None);
        let mut keyspaces = BTreeMap::new();
        keyspaces.insert(
            "ks".to_string(),
            KeyspaceRoute {
                keyspace: Keyspace {
                    name: "ks".into(),
                    sharded: true,
                    ..Default::default()
                },
                shards: BTreeMap::new(),
                vschema: Arc::new(vschema),
            },
        );
        RoutingTable {
            keyspaces,
            ..Default::default()
        }
    }

    fn planned(sql: &str) -> PlanResult<Plan> {
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

    #[test]
    fn equality_on_the_vindex_routes_to_one_shard_and_keeps_the_text() {
        let r = route("SELECT * FROM customer WHERE id = 5");
        assert!(matches!(&r.routing, Routing::Vindex { values, .. } if values.len() == 1));
        let table = routing();
        let shards = shards_for(&table.keyspaces["ks"].vschema, &r.routing, &[]).unwrap();
        assert_eq!(shards.len(), 1);
    }

    #[test]
    fn other_conditions_scatter_with_a_merge() {
        let r = route(
            "SELECT name, COUNT(*) FROM customer WHERE name = 'x' GROUP BY name ORDER BY 2 DESC LIMIT 3",
        );
        assert!(matches!(r.routing, Routing::Scatter));
        let m = r.merge.expect("a merge");
        assert!(m.spec.aggregate);
        assert_eq!(m.spec.limit, Some(3));
        assert!(
            !r.sql.unwrap().contains("LIMIT"),
            "no LIMIT pushed under a GROUP BY"
        );
    }

    #[test]
    fn colocated_and_reference_joins_stay_on_the_shards() {
        let r = route(
            "SELECT c.id, o.id FROM customer c JOIN orders o ON c.id = o.customer_id JOIN product p ON p.sku = o.sku",
        );
        assert!(matches!(r.routing, Routing::Scatter));
        let r = route("SELECT * FROM product");
        assert!(matches!(r.routing, Routing::AnyShard));
    }

    #[test]
    fn refusals_name_what_is_unsupported() {
        let e = planned("UPDATE customer SET id = 3 WHERE id = 4").unwrap_err();
        assert_eq!((e.code, e.sqlstate), (1235, "42000"));
        assert!(e.message.contains("vindex"), "{}", e.message);
        let e = planned("DELETE FROM customer WHERE name = 'x' LIMIT 1").unwrap_err();
        assert_eq!(e.code, 1235);
        let e = planned("SELECT * FROM nosuch").unwrap_err();
        assert_eq!((e.code, e.sqlstate), (1146, "42S02"));
        let e = planned("SELEC 1").unwrap_err();
        assert_eq!(e.code, 1064);
    }

    #[test]
    fn the_cache_tells_keyspaces_and_vschema_epochs_apart() {
        let cache = PlanCache::new(1 << 20);
        let plan = Arc::new(Plan::Begin);
        let get = |keyspace, sql, epoch| cache.get(plan_key(keyspace, sql), keyspace, sql, epoch);
        cache.insert(
            plan_key(Some("a"), "SELECT 1"),
            Some("a"),
            "SELECT 1",
            7,
            plan.clone(),
        );
        assert!(get(Some("a"), "SELECT 1", 7).is_some());
        assert!(get(Some("b"), "SELECT 1", 7).is_none());
        assert!(get(None, "SELECT 1", 7).is_none());
        assert!(get(Some("a"), "SELECT 1", 8).is_none());
        assert!(get(Some("a"), "SELECT 2", 7).is_none());
    }

    #[test]
    fn session_plans_tell_keyspaces_epochs_and_texts_apart() {
        let mut plans = SessionPlans::default();
        let key = plan_key(Some("a"), "SELECT ?");
        plans.insert(key, Some("a"), "SELECT ?", 7, Arc::new(Plan::Begin));
        assert!(matches!(
            plans.get(key, Some("a"), "SELECT ?", 7).map(|p| &**p),
            Some(Plan::Begin)
        ));
        assert!(plans.get(key, Some("a"), "SELECT ?", 8).is_none());
        assert!(plans.get(key, Some("b"), "SELECT ?", 7).is_none());
        assert!(plans.get(key, None, "SELECT ?", 7).is_none());
        assert_ne!(plan_key(Some("a"), "SELECT ?"), plan_key(None, "SELECT ?"));
        assert_ne!(plan_key(Some("ab"), "c"), plan_key(Some("a"), "bc"));
        // A key collision (forced here) does not return the other text's plan.
        assert!(plans.get(key, Some("a"), "SELECT ? FROM t", 7).is_none());
        // A newer epoch replaces the entry in place.
        plans.insert(key, Some("a"), "SELECT ?", 8, Arc::new(Plan::Commit));
        assert!(plans.get(key, Some("a"), "SELECT ?", 7).is_none());
        assert!(matches!(
            plans.get(key, Some("a"), "SELECT ?", 8).map(|p| &**p),
            Some(Plan::Commit)
        ));
        // Beyond its size the oldest entries go; the newest stay.
        for i in 0..SessionPlans::SIZE * 2 {
            let sql = format!("SELECT {i}");
            let k = plan_key(Some("a"), &sql);
            plans.insert(k, Some("a"), &sql, 8, Arc::new(Plan::Rollback));
        }
        assert_eq!(plans.entries.len(), SessionPlans::SIZE);
        let last = format!("SELECT {}", SessionPlans::SIZE * 2 - 1);
        assert!(
            plans
                .get(plan_key(Some("a"), &last), Some("a"), &last, 8)
                .is_some()
        );
        assert!(plans.get(key, Some("a"), "SELECT ?", 8).is_none());
        // Bulk statements stay out of a session's memory.
        let long = format!("INSERT INTO t VALUES {}(?)", "(?), ".repeat(1000));
        let k = plan_key(Some("a"), &long);
        plans.insert(k, Some("a"), &long, 8, Arc::new(Plan::Rollback));
        assert!(plans.get(k, Some("a"), &long, 8).is_none());
    }

    #[test]
    fn one_shard_agrees_with_shards_for() {
        let table = routing();
        let ks = &table.keyspaces["ks"].vschema;
        let statements = [
            "SELECT * FROM customer WHERE id = 5",
            "SELECT * FROM customer WHERE id = -5",
            "SELECT * FROM customer WHERE id = 'abc'",
            "SELECT * FROM customer WHERE id = NULL",
            "SELECT * FROM customer WHERE id = ?",
            "SELECT * FROM customer WHERE id IN (1, 2, 3)",
            "SELECT * FROM customer WHERE name = 'x'",
            "SELECT * FROM product",
        ];
        let params_sets: [&[OwnedValue]; 4] = [
            &[],
            &[OwnedValue::Int(77)],
            &[OwnedValue::Bytes(b"18446744073709551615".to_vec())],
            &[OwnedValue::Null],
        ];
        let mut answered = 0;
        for sql in statements {
            let r = route(sql);
            for params in params_sets {
                let all = shards_for(ks, &r.routing, params);
                if let Some(one) = one_shard(ks, &r.routing, params) {
                    answered += 1;
                    assert_eq!(all, Ok(vec![one.clone()]), "{sql} {params:?}");
                }
            }
        }
        assert!(
            answered >= 10,
            "the fast path answered only {answered} cases"
        );
        // One value of each vindex maps to the shard its keyspace id says.
        for id in [0i64, 1, 2, 3, 4, 5, 1000, -1, i64::MAX, i64::MIN] {
            let r = route(&format!("SELECT * FROM customer WHERE id = {id}"));
            let all = shards_for(ks, &r.routing, &[]).unwrap();
            assert_eq!(one_shard(ks, &r.routing, &[]), all.first(), "{id}");
        }
    }
}
