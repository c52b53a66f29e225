//! Lookup vindexes at execution: asking a lookup table which shards hold the
//! rows a condition names, and keeping owned lookup tables in step with the
//! inserts, updates and deletes of their owner tables.
//!
//! Where the statements run, by lookup type:
//! - lookup / lookup_unique: in the owner write's transaction (an implicit
//!   one when the session is in autocommit), so entry and row commit or roll
//!   back together;
//! - with `autocommit`: inserts commit on their own before the owner write;
//! - consistent lookups: inserts commit on their own before the owner write
//!   (a duplicate pointing at a row that no longer exists is taken over),
//!   deletes after the owner's transaction commits; an entry may point at a
//!   missing row for a moment, a row never lacks its entry.

use std::sync::Arc;

use tessera_topo::TabletType;
use tessera_wire::{BackendError, QueryResult};

use super::{End, Session};
use crate::merge::is_numeric;
use crate::plan::lookup::{LookupTable, cell_value, locate, lookup_of};
use crate::plan::vschema::KeyspaceVSchema;
use crate::plan::{
    self, InsertPlan, OwnedDml, OwnedLookup, OwnedValue, PlanError, RouteValue, Routing, RowValue,
};
use crate::pool::Lease;
use crate::vindex::lookup_sql::{
    self, ConsistentStatements, Destination, DuplicateResolution, LookupKind, MapPlan,
};
use crate::vindex::{KeyspaceId, LookupParams, Vindex, VindexValue};

/// A statement for one shard of a keyspace.
struct ShardStatement {
    keyspace: Arc<str>,
    shard: Arc<str>,
    sql: String,
}

/// A lookup-table insert that commits before the owner's write.
struct PreInsert {
    statement: ShardStatement,
    /// Consistent lookups: how to resolve a duplicate entry.
    consistent: Option<ConsistentInsert>,
}

struct ConsistentInsert {
    statements: ConsistentStatements,
    params: LookupParams,
    kind: LookupKind,
    ksid: KeyspaceId,
    /// The owner table's keyspace, where `lock_owner` runs.
    owner_keyspace: Arc<KeyspaceVSchema>,
    /// For the duplicate-key message.
    value: String,
    vindex: String,
}

/// The lookup-table statements of one owner write, by when they run.
#[derive(Default)]
struct LookupWrites {
    pre: Vec<PreInsert>,
    in_tx: Vec<ShardStatement>,
    post: Vec<ShardStatement>,
}

/// An error to send the client: code, SQLSTATE, message.
type Failure = (u16, String, String);

fn plan_failure(e: PlanError) -> Failure {
    (e.code, e.sqlstate.to_string(), e.message)
}

fn lookup_failure(e: lookup_sql::LookupSqlError) -> Failure {
    (1105, "HY000".to_string(), e.to_string())
}

fn has_null(values: &[OwnedValue]) -> bool {
    values.contains(&OwnedValue::Null)
}

fn vindex_values(values: &[OwnedValue]) -> Vec<VindexValue<'_>> {
    values.iter().map(OwnedValue::as_vindex_value).collect()
}

impl Session {
    /// The shards a routing needs; a lookup vindex's table is asked first.
    /// Err when the client was told why not.
    pub(super) async fn route_shards(
        &mut self,
        vschema: &KeyspaceVSchema,
        routing: &Routing,
        params: &[OwnedValue],
        for_dml: bool,
    ) -> Result<Vec<Arc<str>>, ()> {
        if let Routing::Vindex { vindex, values } = routing
            && vindex.needs_lookup()
        {
            return self
                .lookup_route(vschema, vindex, values, params, for_dml)
                .await;
        }
        match plan::shards_for(vschema, routing, params) {
            Ok(s) => Ok(s),
            Err(e) => {
                let _ = self.send_plan_error(e).await;
                Err(())
            }
        }
    }

    async fn lookup_route(
        &mut self,
        vschema: &KeyspaceVSchema,
        vindex: &Arc<dyn Vindex>,
        values: &[RouteValue],
        params: &[OwnedValue],
        for_dml: bool,
    ) -> Result<Vec<Arc<str>>, ()> {
        let mut owned = Vec::with_capacity(values.len());
        for v in values {
            match v {
                RouteValue::Literal(l) => owned.push(l.clone()),
                RouteValue::Param(i) => match params.get(*i) {
                    Some(p) => owned.push(p.clone()),
                    None => {
                        let _ = self
                            .send_gate_error(1210, "HY000", &format!("parameter {i} was not bound"))
                            .await;
                        return Err(());
                    }
                },
            }
        }
        let destinations = match self
            .lookup_destinations(vschema, vindex.as_ref(), &owned, for_dml)
            .await
        {
            Ok(d) => d,
            Err(Some((code, state, message))) => {
                let _ = self.send_error(code, &state, &message).await;
                return Err(());
            }
            Err(None) => return Err(()),
        };
        let mut out: Vec<Arc<str>> = Vec::new();
        for d in destinations {
            match d {
                Destination::None => {}
                Destination::AllShards => {
                    return Ok(vschema.shards.iter().map(|(n, _)| n.clone()).collect());
                }
                Destination::KeyspaceIds(ksids) => {
                    for k in ksids {
                        if let Some(s) = vschema.shard_for(&k)
                            && !out.contains(s)
                        {
                            out.push(s.clone());
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Where each value of a lookup vindex's first column leads. Err(None)
    /// when the client was already told of a failure.
    async fn lookup_destinations(
        &mut self,
        owner: &KeyspaceVSchema,
        vindex: &dyn Vindex,
        values: &[OwnedValue],
        for_dml: bool,
    ) -> Result<Vec<Destination>, Option<Failure>> {
        let (params, kind) = lookup_of(vindex).map_err(|e| Some(plan_failure(e)))?;
        let vvals = vindex_values(values);
        let sql = match lookup_sql::map_plan(params, kind, &vvals, for_dml && self.sharded_tx) {
            MapPlan::Known(d) => return Ok(d),
            MapPlan::Query { sql } => sql,
        };
        let table = {
            let routing = self.shared.routing.load();
            locate(&routing, &owner.name, params).map_err(|e| Some(plan_failure(e)))?
        };
        let shards = table.shards_for_query(values);
        let mut rows = Vec::new();
        if !shards.is_empty() {
            let parts: Vec<(Arc<str>, String)> =
                shards.into_iter().map(|s| (s, sql.clone())).collect();
            let ty = if for_dml {
                TabletType::Primary
            } else {
                self.tablet_type()
            };
            let results = self
                .run_on_shards(&table.keyspace_name, &parts, ty)
                .await
                .map_err(|()| None)?;
            for r in results {
                rows.extend(r.rows);
            }
        }
        lookup_sql::decode_map(params, kind, &vvals, &rows).map_err(|e| Some(lookup_failure(e)))
    }

    /// A connection to a shard's primary outside the session's transaction.
    async fn detached_lease(&self, keyspace: &str, shard: &str) -> Result<Lease, Failure> {
        let pool = {
            let routing = self.shared.routing.load();
            routing
                .keyspaces
                .get(keyspace)
                .and_then(|k| k.shards.get(shard))
                .and_then(|s| s.primary.as_ref())
                .map(|p| p.pool.clone())
        };
        let Some(pool) = pool else {
            return Err((
                1105,
                "HY000".to_string(),
                format!("no primary for shard {keyspace}/{shard}"),
            ));
        };
        pool.get(self.flavour)
            .await
            .map_err(|e| (1105, "HY000".to_string(), e.to_string()))
    }

    /// Opens the session's transaction for an owner write whose lookup
    /// statements must commit with it. True when it opened one.
    fn begin_implicit(&mut self, needed: bool) -> bool {
        if needed && !self.sharded_tx {
            self.sharded_tx = true;
            return true;
        }
        false
    }

    /// Ends an implicit transaction: commits after success, rolls back after
    /// a failure the client was told of. Err when the commit failed (told).
    async fn end_implicit(&mut self, implicit: bool, success: bool) -> Result<(), ()> {
        if !implicit {
            return Ok(());
        }
        if success {
            if let Err(message) = self.finish_quiet("COMMIT").await {
                let _ = self.send_gate_error(1105, "HY000", &message).await;
                return Err(());
            }
        } else {
            let _ = self.finish_quiet("ROLLBACK").await;
        }
        Ok(())
    }

    /// One statement on one shard, in the session's transaction when it has
    /// one. Err when the client was told of a failure.
    async fn run_statement(&mut self, s: &ShardStatement) -> Result<QueryResult, ()> {
        let parts = [(s.shard.clone(), s.sql.clone())];
        let mut results = self
            .run_on_shards(&s.keyspace, &parts, TabletType::Primary)
            .await?;
        results.pop().ok_or(())
    }

    /// Runs the writes that go before and with the owner's: `pre` committed
    /// on their own, `in_tx` in the session's transaction; queues `post`
    /// for after the commit. Err when the client was told of a failure.
    async fn run_lookup_writes(&mut self, writes: LookupWrites) -> Result<(), ()> {
        for pre in &writes.pre {
            if let Err(failure) = self.run_pre_insert(pre).await {
                if let Some((code, state, message)) = failure {
                    let _ = self.send_error(code, &state, &message).await;
                }
                return Err(());
            }
        }
        for s in &writes.in_tx {
            self.run_statement(s).await?;
        }
        self.post_commit.extend(
            writes
                .post
                .into_iter()
                .map(|s| (s.keyspace, s.shard, s.sql)),
        );
        Ok(())
    }

    /// A lookup insert committed on its own connection; a consistent
    /// lookup's duplicate is resolved as the module docs say. Err(None) when
    /// the client was already told.
    async fn run_pre_insert(&mut self, pre: &PreInsert) -> Result<(), Option<Failure>> {
        let s = &pre.statement;
        let mut lease = self.detached_lease(&s.keyspace, &s.shard).await?;
        let first = query_on(&mut lease, &s.sql).await;
        let Some(consistent) = &pre.consistent else {
            lease.release();
            return first.map(|_| ()).map_err(Some);
        };
        match first {
            Ok(_) => {
                lease.release();
                return Ok(());
            }
            Err((1062, _, _)) => {}
            Err(other) => {
                lease.release();
                return Err(Some(other));
            }
        }
        // A duplicate entry: is its row still there?
        let result = self
            .resolve_duplicate(&mut lease, consistent)
            .await
            .and_then(|r| r.map_err(Some));
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        match query_on(&mut lease, end).await {
            Ok(_) => lease.release(),
            Err(_) => lease.discard(),
        }
        result
    }

    /// Inside BEGIN on `lease`: locks the entry, checks its owner row and
    /// takes the entry over when that row is gone. The outer Err(None):
    /// the client was told; the inner Err: a failure to report.
    async fn resolve_duplicate(
        &mut self,
        lease: &mut Lease,
        c: &ConsistentInsert,
    ) -> Result<Result<(), Failure>, Option<Failure>> {
        query_on(lease, "BEGIN").await?;
        let locked = query_on(lease, &c.statements.lock_lookup).await?;
        let mut owner_rows = None;
        loop {
            let step = lookup_sql::resolve_consistent_duplicate(
                &c.params,
                c.kind,
                &locked.rows,
                owner_rows,
                &c.ksid,
            )
            .map_err(|e| Some(lookup_failure(e)))?;
            match step {
                DuplicateResolution::Insert => {
                    query_on(lease, &c.statements.insert).await?;
                    return Ok(Ok(()));
                }
                DuplicateResolution::AlreadyCurrent => return Ok(Ok(())),
                DuplicateResolution::TakeOver => {
                    query_on(lease, &c.statements.update_lookup).await?;
                    return Ok(Ok(()));
                }
                DuplicateResolution::Duplicate => {
                    return Ok(Err((
                        1062,
                        "23000".to_string(),
                        format!(
                            "Duplicate entry '{}' for key '{}'",
                            c.value.replace('\'', ""),
                            c.vindex
                        ),
                    )));
                }
                DuplicateResolution::CheckOwner(existing) => {
                    let Some(shard) = c.owner_keyspace.shard_for(&existing).cloned() else {
                        // No shard owns it: the row cannot exist.
                        owner_rows = Some(0);
                        continue;
                    };
                    let statement = ShardStatement {
                        keyspace: Arc::from(c.owner_keyspace.name.as_str()),
                        shard,
                        sql: c.statements.lock_owner.clone(),
                    };
                    let rows = self.run_statement(&statement).await.map_err(|()| None)?;
                    owner_rows = Some(rows.rows.len());
                }
            }
        }
    }

    /// An INSERT into a table with owned lookup vindexes: entries first, then
    /// the rows. `entries`: per row, its keyspace id and column values.
    pub(super) async fn run_insert_with_lookups(
        &mut self,
        insert: &InsertPlan,
        owner: &Arc<KeyspaceVSchema>,
        entries: &[(KeyspaceId, Vec<OwnedValue>)],
        parts: &[(Arc<str>, String)],
    ) -> Result<Vec<QueryResult>, ()> {
        let writes = match self.insert_writes(insert, owner, entries) {
            Ok(w) => w,
            Err((code, state, message)) => {
                let _ = self.send_error(code, &state, &message).await;
                return Err(());
            }
        };
        let implicit = self.begin_implicit(!writes.in_tx.is_empty());
        if self.run_lookup_writes(writes).await.is_err() {
            let _ = self.end_implicit(implicit, false).await;
            return Err(());
        }
        let results = self
            .run_on_shards(&insert.keyspace, parts, TabletType::Primary)
            .await;
        let success = results.is_ok();
        self.end_implicit(implicit, success).await?;
        if !implicit && !self.sharded_tx {
            self.run_post_commit().await;
        }
        results
    }

    fn insert_writes(
        &self,
        insert: &InsertPlan,
        owner: &Arc<KeyspaceVSchema>,
        entries: &[(KeyspaceId, Vec<OwnedValue>)],
    ) -> Result<LookupWrites, Failure> {
        let routing = self.shared.routing.load();
        let mut writes = LookupWrites::default();
        for lookup in &insert.lookups {
            let (params, kind) = lookup_of(lookup.vindex.as_ref()).map_err(plan_failure)?;
            let table = locate(&routing, &owner.name, params).map_err(plan_failure)?;
            let rows: Vec<(KeyspaceId, Vec<OwnedValue>)> = entries
                .iter()
                .map(|(ksid, row)| {
                    let from = lookup
                        .columns
                        .iter()
                        .map(|&i| row.get(i).cloned().unwrap_or(OwnedValue::Null))
                        .collect();
                    (ksid.clone(), from)
                })
                .collect();
            add_inserts(
                &mut writes,
                &table,
                params,
                kind,
                lookup,
                &rows,
                owner,
                &insert.table,
            )?;
        }
        Ok(writes)
    }

    /// An UPDATE or DELETE of a table with owned lookup vindexes: the rows
    /// are read and locked, their entries changed, then the statement runs.
    pub(super) async fn run_owned_dml(
        &mut self,
        dml: &OwnedDml,
        params: &[OwnedValue],
    ) -> Result<(), End> {
        let route = &dml.route;
        let Some(vschema) = self.keyspace_vschema(&route.keyspace) else {
            return self
                .send_gate_error(1049, "42000", "Unknown database")
                .await;
        };
        let (select_sql, dml_sql) = match (
            plan::interpolate(&dml.select_sql, params),
            plan::interpolate(route.sql.as_deref().unwrap_or_default(), params),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(i), _) | (_, Err(i)) => {
                return self
                    .send_gate_error(1210, "HY000", &format!("parameter {i} was not bound"))
                    .await;
            }
        };
        let implicit = self.begin_implicit(true);
        let Ok(shards) = self
            .route_shards(&vschema, &route.routing, params, true)
            .await
        else {
            let _ = self.end_implicit(implicit, false).await;
            return Ok(());
        };
        let mut affected = 0;
        if !shards.is_empty() {
            let reads: Vec<(Arc<str>, String)> = shards
                .iter()
                .map(|s| (s.clone(), select_sql.clone()))
                .collect();
            let Ok(found) = self
                .run_on_shards(&route.keyspace, &reads, TabletType::Primary)
                .await
            else {
                let _ = self.end_implicit(implicit, false).await;
                return Ok(());
            };
            let writes = match self.dml_writes(dml, &vschema, &found, params) {
                Ok(w) => w,
                Err((code, state, message)) => {
                    let _ = self.send_error(code, &state, &message).await;
                    let _ = self.end_implicit(implicit, false).await;
                    return Ok(());
                }
            };
            if self.run_lookup_writes(writes).await.is_err() {
                let _ = self.end_implicit(implicit, false).await;
                return Ok(());
            }
            let parts: Vec<(Arc<str>, String)> =
                shards.into_iter().map(|s| (s, dml_sql.clone())).collect();
            let Ok(results) = self
                .run_on_shards(&route.keyspace, &parts, TabletType::Primary)
                .await
            else {
                let _ = self.end_implicit(implicit, false).await;
                return Ok(());
            };
            affected = results
                .iter()
                .filter_map(|r| r.ok.map(|o| o.affected_rows))
                .sum();
        }
        if self.end_implicit(implicit, true).await.is_err() {
            return Ok(());
        }
        self.send_ok_counts(affected, 0).await
    }

    fn dml_writes(
        &self,
        dml: &OwnedDml,
        owner: &Arc<KeyspaceVSchema>,
        found: &[QueryResult],
        params: &[OwnedValue],
    ) -> Result<LookupWrites, Failure> {
        let routing = self.shared.routing.load();
        let mut writes = LookupWrites::default();
        for (li, lookup) in dml.lookups.iter().enumerate() {
            let (lp, kind) = lookup_of(lookup.vindex.as_ref()).map_err(plan_failure)?;
            let table = locate(&routing, &owner.name, lp).map_err(plan_failure)?;
            let mut inserts: Vec<(KeyspaceId, Vec<OwnedValue>)> = Vec::new();
            for result in found {
                let numeric: Vec<bool> = result.specs.iter().map(is_numeric).collect();
                let cell = |row: &Vec<Option<Vec<u8>>>, i: usize| {
                    cell_value(
                        row.get(i).and_then(|c| c.as_deref()),
                        numeric.get(i).copied().unwrap_or(false),
                    )
                };
                for row in &result.rows {
                    let ksid = plan::map_value(dml.primary.as_ref(), &cell(row, 0), true)
                        .map_err(plan_failure)?
                        .ok_or_else(|| (1105, "HY000".to_string(), "unmappable row".to_string()))?;
                    let old: Vec<OwnedValue> =
                        lookup.columns.iter().map(|&i| cell(row, i)).collect();
                    let new: Option<Vec<OwnedValue>> = match &dml.new_values {
                        None => None,
                        Some(per_lookup) => Some(
                            per_lookup[li]
                                .iter()
                                .zip(&old)
                                .map(|(assigned, old)| match assigned {
                                    None => Ok(old.clone()),
                                    Some(v) => row_value(v, params),
                                })
                                .collect::<Result<_, Failure>>()?,
                        ),
                    };
                    if new.as_ref() == Some(&old) {
                        continue;
                    }
                    if !has_null(&old) {
                        let deletes =
                            lookup_sql::delete_sql(lp, kind, &[vindex_values(&old)], &ksid)
                                .map_err(lookup_failure)?;
                        let shard = table.shard_for_entry(&old).map_err(plan_failure)?;
                        for sql in deletes {
                            let s = ShardStatement {
                                keyspace: table.keyspace_name.clone(),
                                shard: shard.clone(),
                                sql,
                            };
                            if kind.consistent {
                                writes.post.push(s);
                            } else {
                                writes.in_tx.push(s);
                            }
                        }
                    }
                    if let Some(new) = new {
                        inserts.push((ksid, new));
                    }
                }
            }
            if !inserts.is_empty() {
                let lookup_at: OwnedLookup = OwnedLookup {
                    vindex: lookup.vindex.clone(),
                    columns: (0..lookup.columns.len()).collect(),
                };
                add_inserts(
                    &mut writes,
                    &table,
                    lp,
                    kind,
                    &lookup_at,
                    &inserts,
                    owner,
                    &dml.table,
                )?;
            }
        }
        Ok(writes)
    }

    /// Consistent-lookup deletes queued for after the commit: each on its
    /// own connection; a failure leaves a stale entry, which consistent
    /// lookups tolerate, so it is logged, not reported.
    pub(super) async fn run_post_commit(&mut self) {
        let queued = std::mem::take(&mut self.post_commit);
        for (keyspace, shard, sql) in queued {
            match self.detached_lease(&keyspace, &shard).await {
                Ok(mut lease) => match query_on(&mut lease, &sql).await {
                    Ok(_) => lease.release(),
                    Err((_, _, message)) => {
                        lease.release();
                        tracing::warn!(%keyspace, %shard, "lookup entry delete failed: {message}");
                    }
                },
                Err((_, _, message)) => {
                    tracing::warn!(%keyspace, %shard, "lookup entry delete failed: {message}");
                }
            }
        }
    }
}

/// The value a plan's row value stands for.
fn row_value(v: &RowValue, params: &[OwnedValue]) -> Result<OwnedValue, Failure> {
    match v {
        RowValue::Param(i) => params.get(*i).cloned().ok_or_else(|| {
            (
                1210,
                "HY000".to_string(),
                format!("parameter {i} was not bound"),
            )
        }),
        RowValue::Text { value: Some(v), .. } => Ok(v.clone()),
        RowValue::Text { sql, .. } => Err((
            1235,
            "42000".to_string(),
            format!(
                "This version of Tessera doesn't yet support 'the expression {sql} as a lookup vindex value'"
            ),
        )),
        RowValue::Generated => Ok(OwnedValue::Null),
    }
}

/// Adds the entries of `rows` (keyspace id, `from` values) to `writes`:
/// batched per lookup shard in the transaction, or one by one before it
/// (consistent, autocommit).
#[allow(clippy::too_many_arguments)]
fn add_inserts(
    writes: &mut LookupWrites,
    table: &LookupTable,
    params: &LookupParams,
    kind: LookupKind,
    lookup: &OwnedLookup,
    rows: &[(KeyspaceId, Vec<OwnedValue>)],
    owner: &Arc<KeyspaceVSchema>,
    owner_table: &str,
) -> Result<(), Failure> {
    /// The entries bound for one lookup shard.
    type Entries<'a> = Vec<(Vec<VindexValue<'a>>, KeyspaceId)>;
    let mut per_shard: Vec<(Arc<str>, Entries<'_>)> = Vec::new();
    for (ksid, from) in rows {
        if has_null(from) {
            if params.ignore_nulls {
                continue;
            }
            let column = from
                .iter()
                .position(|v| *v == OwnedValue::Null)
                .unwrap_or(0);
            return Err((
                1048,
                "23000".to_string(),
                format!(
                    "Column '{}' cannot be null (lookup vindex '{}' needs a value)",
                    params.from.get(column).map_or("?", |c| c.as_str()),
                    lookup.vindex.name()
                ),
            ));
        }
        let shard = table.shard_for_entry(from).map_err(plan_failure)?;
        if kind.consistent {
            let statements = lookup_sql::consistent_statements(
                params,
                kind,
                owner_table,
                &owner_columns(owner, owner_table, lookup),
                &vindex_values(from),
                ksid,
            )
            .map_err(lookup_failure)?;
            writes.pre.push(PreInsert {
                statement: ShardStatement {
                    keyspace: table.keyspace_name.clone(),
                    shard,
                    sql: statements.insert.clone(),
                },
                consistent: Some(ConsistentInsert {
                    statements,
                    params: params.clone(),
                    kind,
                    ksid: ksid.clone(),
                    owner_keyspace: owner.clone(),
                    value: vindex_values(from)
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join("-"),
                    vindex: lookup.vindex.name().to_string(),
                }),
            });
            continue;
        }
        let values = vindex_values(from);
        match per_shard.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, list)) => list.push((values, ksid.clone())),
            None => per_shard.push((shard, vec![(values, ksid.clone())])),
        }
    }
    let separate = params.autocommit || params.multi_shard_autocommit;
    for (shard, list) in per_shard {
        let Some(sql) =
            lookup_sql::insert_sql(params, kind, &list, false).map_err(lookup_failure)?
        else {
            continue;
        };
        let statement = ShardStatement {
            keyspace: table.keyspace_name.clone(),
            shard,
            sql,
        };
        if separate {
            writes.pre.push(PreInsert {
                statement,
                consistent: None,
            });
        } else {
            writes.in_tx.push(statement);
        }
    }
    Ok(())
}

/// The owner table's columns a consistent lookup's `from` columns stand for.
fn owner_columns(owner: &KeyspaceVSchema, owner_table: &str, lookup: &OwnedLookup) -> Vec<String> {
    owner
        .tables
        .get(owner_table)
        .and_then(|t| {
            t.column_vindexes
                .iter()
                .find(|cv| Arc::ptr_eq(&cv.vindex, &lookup.vindex))
                .map(|cv| cv.columns.clone())
        })
        .unwrap_or_default()
}

async fn query_on(lease: &mut Lease, sql: &str) -> Result<QueryResult, Failure> {
    match lease.conn().backend.query(sql).await {
        Ok(r) => Ok(r),
        Err(BackendError::Server(e)) => Err((e.code, e.sqlstate, e.message)),
        Err(e) => Err((
            2013,
            "HY000".to_string(),
            format!(
                "Lost connection to MySQL server: {}",
                crate::pool::backend_error_text(&e)
            ),
        )),
    }
}
