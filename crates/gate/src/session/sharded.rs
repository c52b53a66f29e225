//! The session's path for sharded keyspaces: plans each statement, relays a
//! single-shard statement like any other (same buffering and transaction
//! handling), and runs the rest on several shards at once, combining their
//! answers in the gate.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use tessera_sql::{Classified, Flags, StatementKind};
use tessera_topo::TabletType;
use tessera_wire::{BackendError, ColumnSpec, QueryResult, StatusFlags};

use super::{BufferState, End, Request, Session, Slot, settings, slot_conn};
use crate::merge::{self, Rows};
use crate::plan::{self, InsertPlan, OwnedValue, Plan, PlanContext, PlanError, Route, RowValue};

/// What to make of the shards' answers to one statement.
struct Answer<'a> {
    merge: Option<&'a plan::MergeTemplate>,
    /// The answers are OK packets whose affected rows add up.
    write: bool,
    /// The client reads rows in the binary protocol.
    binary: bool,
    params: &'a [OwnedValue],
}

/// One text-protocol row.
type Row = Vec<Option<Vec<u8>>>;

/// What the client sent, for relaying it unchanged to one shard.
#[derive(Clone, Copy)]
enum Original<'a> {
    Query(&'a Bytes),
    Execute { stmt_id: u32, body: &'a [u8] },
}

impl Session {
    /// The session's statements go through the planner: its keyspace is
    /// sharded and no shard is targeted, or it has no keyspace while some
    /// keyspace is sharded (tables are then found through the VSchemas).
    pub(super) fn is_sharded_session(&self) -> bool {
        let table = self.shared.routing.load();
        match &self.target {
            Some(t) if t.shard.is_none() => table
                .keyspaces
                .get(&t.keyspace)
                .is_some_and(|k| k.vschema.sharded || k.shards.len() > 1),
            Some(_) => false,
            None => {
                self.bad_database.is_none() && table.keyspaces.values().any(|k| k.vschema.sharded)
            }
        }
    }

    /// A statement of a session not otherwise planned that may name a table
    /// a routing rule moved: it is planned, so the rule applies. No cost
    /// without rules beyond one pointer load.
    pub(super) fn routing_rules_apply(&self, sql: &str) -> bool {
        let table = self.shared.routing.load();
        if table.routing_rules.is_empty() {
            return false;
        }
        matches!(&self.target, Some(t) if t.shard.is_none()) && table.routing_rules.may_apply(sql)
    }

    /// The first shard of the session's (or default) keyspace, for
    /// statements any shard answers alike.
    pub(super) fn sharded_any_shard(&self) -> Option<(Arc<str>, Arc<str>, TabletType)> {
        if !self.is_sharded_session() {
            return None;
        }
        let table = self.shared.routing.load();
        let ks = match &self.target {
            Some(t) => table.keyspaces.get(&t.keyspace)?,
            None => table
                .default_keyspace()
                .or_else(|| table.keyspaces.values().next())?,
        };
        let (shard, _) = ks.vschema.shards.first()?;
        Some((
            Arc::from(ks.keyspace.name.as_str()),
            shard.clone(),
            self.tablet_type(),
        ))
    }

    pub(super) fn tablet_type(&self) -> TabletType {
        self.target
            .as_ref()
            .map_or(TabletType::Primary, |t| t.tablet_type)
    }

    /// A plan for `sql`, from the shared cache or made now.
    fn plan_for(&self, sql: &str) -> Result<Arc<Plan>, PlanError> {
        let table = self.shared.routing.load();
        let keyspace = self.target.as_ref().map(|t| t.keyspace.as_str());
        self.shared_plan(&table, plan::plan_key(keyspace, sql), keyspace, sql)
    }

    /// The shared cache's plan for `sql` under `table`'s VSchema, made and
    /// cached now when it has none.
    fn shared_plan(
        &self,
        table: &crate::RoutingTable,
        key: u64,
        keyspace: Option<&str>,
        sql: &str,
    ) -> Result<Arc<Plan>, PlanError> {
        let epoch = table.vschema_epoch;
        if let Some(p) = self.shared.plans.get(key, keyspace, sql, epoch) {
            return Ok(p);
        }
        let ctx = PlanContext {
            routing: table,
            keyspace,
            schema: Some(&self.shared.schema),
        };
        let planned = Arc::new(plan::plan(&ctx, sql)?);
        self.shared
            .plans
            .insert(key, keyspace, sql, epoch, planned.clone());
        Ok(planned)
    }

    /// A plan for `sql` from the session's own last plans, else as
    /// `plan_for` finds or makes it (and then kept by the session too).
    fn session_plan_for(&mut self, sql: &str) -> Result<Arc<Plan>, PlanError> {
        let table = self.shared.routing.load();
        let epoch = table.vschema_epoch;
        let keyspace = self.target.as_ref().map(|t| t.keyspace.as_str());
        let key = plan::plan_key(keyspace, sql);
        if let Some(p) = self.plan_cache.get(key, keyspace, sql, epoch) {
            return Ok(p.clone());
        }
        let planned = self.shared_plan(&table, key, keyspace, sql)?;
        self.plan_cache
            .insert(key, keyspace, sql, epoch, planned.clone());
        Ok(planned)
    }

    pub(super) fn sharded_prepare_plan(&self, sql: &str) -> Result<Arc<Plan>, PlanError> {
        self.plan_for(sql)
    }

    pub(super) async fn send_plan_error(&mut self, e: PlanError) -> Result<(), End> {
        self.send_gate_error(e.code, e.sqlstate, &e.message).await
    }

    pub(super) async fn sharded_query(
        &mut self,
        sql: &str,
        payload: &Bytes,
        classified: Classified,
    ) -> Result<(), End> {
        if classified.flags.contains(Flags::MULTI) {
            return self
                .send_gate_error(
                    1235,
                    "42000",
                    "This version of Tessera doesn't yet support 'several statements in one query on a sharded keyspace'",
                )
                .await;
        }
        if classified.kind == tessera_sql::StatementKind::Set {
            return self.sharded_set(sql).await;
        }
        // LAST_INSERT_ID() is the session's, not the pooled connection's.
        if classified.flags.contains(Flags::LAST_INSERT_ID)
            && let Some(rewritten) = tessera_sql::rewrite_last_insert_id(sql, self.last_insert_id)
        {
            let mut bytes = Vec::with_capacity(rewritten.len() + 1);
            bytes.push(tessera_wire::protocol::command::COM_QUERY);
            bytes.extend_from_slice(rewritten.as_bytes());
            let payload = Bytes::from(bytes);
            let plan = match self.plan_for(&rewritten) {
                Ok(p) => p,
                Err(e) => return self.send_plan_error(e).await,
            };
            return self
                .run_plan(&plan, &[], Original::Query(&payload), classified, false)
                .await;
        }
        // Literals become parameters, so one plan serves every statement of
        // the same shape; the client's own text still goes to a single shard.
        // The buffers are the session's, taken for the statement's time.
        if matches!(
            classified.kind,
            StatementKind::Select
                | StatementKind::Insert
                | StatementKind::Replace
                | StatementKind::Update
                | StatementKind::Delete
        ) {
            let mut scratch = std::mem::take(&mut self.scratch);
            let planned = if plan::text::normalize_into(sql, &mut scratch) {
                self.session_plan_for(&scratch.shape).ok()
            } else {
                None
            };
            let result = match planned {
                Some(plan) => Some(
                    self.run_plan(
                        &plan,
                        &scratch.values,
                        Original::Query(payload),
                        classified,
                        false,
                    )
                    .await,
                ),
                None => None,
            };
            scratch.shrink();
            self.scratch = scratch;
            if let Some(result) = result {
                return result;
            }
        }
        let plan = match self.session_plan_for(sql) {
            Ok(p) => p,
            Err(e) => return self.send_plan_error(e).await,
        };
        self.run_plan(&plan, &[], Original::Query(payload), classified, false)
            .await
    }

    pub(super) async fn sharded_execute(
        &mut self,
        stmt_id: u32,
        body: &[u8],
        plan: Arc<Plan>,
    ) -> Result<(), End> {
        // The values go in the session's reused buffer, taken for the
        // statement's time.
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = match self.decode_params(stmt_id, body, &mut scratch.values) {
            Ok(classified) => {
                self.run_plan(
                    &plan,
                    &scratch.values,
                    Original::Execute { stmt_id, body },
                    classified,
                    true,
                )
                .await
            }
            Err(why) => {
                tracing::debug!(peer = %self.peer, "bad execute packet: {why}");
                self.send_gate_error(1210, "HY000", "Incorrect arguments to mysqld_stmt_execute")
                    .await
            }
        };
        scratch.shrink();
        self.scratch = scratch;
        result
    }

    /// The values of an execution's parameters, as the planner's values,
    /// into `out`; and what the statement is.
    fn decode_params(
        &mut self,
        stmt_id: u32,
        body: &[u8],
        out: &mut Vec<OwnedValue>,
    ) -> Result<Classified, String> {
        out.clear();
        let stmt = self
            .stmts
            .get_mut(&stmt_id)
            .ok_or_else(|| "unknown statement".to_string())?;
        let header = tessera_wire::parse_execute(body, stmt.num_params)?;
        if let Some(types) = header.param_types {
            stmt.param_types.clear();
            stmt.param_types.extend_from_slice(types);
        }
        let n = stmt.num_params as usize;
        if n > 0 && stmt.param_types.len() < 2 * n {
            return Err("parameter types were never bound".to_string());
        }
        let mut values = header.values;
        out.reserve(n);
        for i in 0..n {
            let is_null = header
                .null_bitmap
                .get(i / 8)
                .is_some_and(|b| b & (1 << (i % 8)) != 0);
            if let Some((_, data)) = stmt.long_data.iter().find(|(p, _)| *p as usize == i) {
                out.push(OwnedValue::Bytes(data.clone()));
                continue;
            }
            if is_null {
                out.push(OwnedValue::Null);
                continue;
            }
            let ty = stmt.param_types[2 * i];
            let unsigned = stmt.param_types[2 * i + 1] & 0x80 != 0;
            out.push(decode_binary_value(ty, unsigned, &mut values)?);
        }
        stmt.long_data.clear();
        Ok(Classified {
            kind: stmt.kind,
            flags: stmt.flags,
        })
    }

    async fn run_plan(
        &mut self,
        plan: &Plan,
        params: &[OwnedValue],
        original: Original<'_>,
        classified: Classified,
        binary: bool,
    ) -> Result<(), End> {
        match plan {
            Plan::Route(route) => {
                self.run_route(route, params, original, classified, binary)
                    .await
            }
            Plan::Insert(insert) => self.run_insert(insert, params).await,
            Plan::OwnedDml(dml) => self.run_owned_dml(dml, params).await,
            Plan::Ddl { keyspace } => self.run_ddl(keyspace, params, original).await,
            Plan::Begin => self.sharded_begin().await,
            Plan::Commit => self.sharded_finish("COMMIT").await,
            Plan::Rollback => self.sharded_finish("ROLLBACK").await,
            Plan::ShowVSchemaTables { keyspace } => self.show_vschema_tables(keyspace).await,
            Plan::ShowVSchemaVindexes { keyspace } => self.show_vschema_vindexes(keyspace).await,
            Plan::SelectNext {
                keyspace,
                table,
                count,
            } => self.select_next(keyspace, table, *count, binary).await,
            Plan::Join(join) => self.run_join(join, params, binary).await,
            Plan::Pullout { subqueries, outer } => {
                self.run_pullout(subqueries, outer, params, classified, binary)
                    .await
            }
            Plan::Materialize(m) => self.run_materialize(m, params, binary).await,
            Plan::InsertSelect(i) => self.run_insert_select(i, params).await,
            Plan::VExplain(inner) => {
                let text = inner.explain();
                let rows = vec![vec![Some(text.into_bytes())]];
                self.write_rows(&[ColumnSpec::varchar("plan")], &rows, binary)
                    .await
            }
        }
    }

    pub(super) fn keyspace_vschema(
        &self,
        keyspace: &str,
    ) -> Option<Arc<plan::vschema::KeyspaceVSchema>> {
        self.shared
            .routing
            .load()
            .keyspaces
            .get(keyspace)
            .map(|k| k.vschema.clone())
    }

    async fn run_route(
        &mut self,
        route: &Route,
        params: &[OwnedValue],
        original: Original<'_>,
        classified: Classified,
        binary: bool,
    ) -> Result<(), End> {
        // The common case: one shard, known from the plan and the values
        // alone. Found under the routing table's guard without allocating.
        let one = {
            let table = self.shared.routing.load();
            table
                .keyspaces
                .get(&*route.keyspace)
                .and_then(|k| plan::one_shard(&k.vschema, &route.routing, params).cloned())
        };
        if let Some(shard) = one {
            return self
                .relay_to_shard(&route.keyspace, shard, original, classified)
                .await;
        }
        let Some(vschema) = self.keyspace_vschema(&route.keyspace) else {
            return self
                .send_gate_error(
                    1049,
                    "42000",
                    &format!("Unknown database '{}'", route.keyspace),
                )
                .await;
        };
        let Ok(shards) = self
            .route_shards(&vschema, &route.routing, params, route.write)
            .await
        else {
            return Ok(());
        };
        let ty = self.tablet_type();
        if shards.len() == 1 {
            let shard = shards[0].clone();
            return self
                .relay_to_shard(&route.keyspace, shard, original, classified)
                .await;
        }
        let text = match (&route.sql, original) {
            (Some(sql), _) => match plan::interpolate(sql, params) {
                Ok(t) => t,
                Err(i) => {
                    return self
                        .send_gate_error(1210, "HY000", &format!("parameter {i} was not bound"))
                        .await;
                }
            },
            (None, Original::Query(payload)) => String::from_utf8_lossy(&payload[1..]).into_owned(),
            (None, Original::Execute { .. }) => {
                return self
                    .send_gate_error(1105, "HY000", "internal: a prepared route without its text")
                    .await;
            }
        };
        if shards.is_empty() {
            // No shard can hold a matching row (e.g. `id IN ()` of values
            // the vindex maps nowhere): the answer is empty; its shape
            // still comes from a shard, with the condition made false.
            let Some((first, _)) = vschema.shards.first() else {
                return self
                    .send_gate_error(1105, "HY000", "keyspace has no shards")
                    .await;
            };
            if route.write {
                return self.send_ok_counts(0, 0).await;
            }
            let parts = vec![(
                first.clone(),
                format!("SELECT * FROM ({text}) AS t WHERE 1 = 0"),
            )];
            return self
                .gather(
                    &route.keyspace,
                    parts,
                    ty,
                    Answer {
                        merge: None,
                        write: false,
                        binary,
                        params,
                    },
                )
                .await;
        }
        let parts: Vec<(Arc<str>, String)> =
            shards.into_iter().map(|s| (s, text.clone())).collect();
        let merge = route.merge.as_ref();
        self.gather(
            &route.keyspace,
            parts,
            ty,
            Answer {
                merge,
                write: route.write,
                binary,
                params,
            },
        )
        .await
    }

    /// One shard answers exactly what the client asked: relays it there.
    async fn relay_to_shard(
        &mut self,
        keyspace: &Arc<str>,
        shard: Arc<str>,
        original: Original<'_>,
        classified: Classified,
    ) -> Result<(), End> {
        let ty = self.tablet_type();
        if self.sharded_tx && self.begin_on(keyspace, &shard, ty).await.is_err() {
            return Ok(());
        }
        self.route_override = Some((keyspace.clone(), shard, ty));
        let request = match original {
            Original::Query(payload) => Request::Raw(payload),
            Original::Execute { stmt_id, body } => Request::Execute { stmt_id, body },
        };
        let result = self
            .forward(request, classified.flags, classified.kind)
            .await;
        self.route_override = None;
        result
    }

    /// Opens the session's sharded transaction on a shard it has not
    /// reached yet. Err when the client was told why not.
    async fn begin_on(
        &mut self,
        keyspace: &Arc<str>,
        shard: &Arc<str>,
        ty: TabletType,
    ) -> Result<(), ()> {
        let already = self.pinned.iter().any(|p| {
            p.in_tx && p.tablet_type == ty && *p.keyspace == **keyspace && *p.shard == **shard
        });
        if already {
            return Ok(());
        }
        self.route_override = Some((keyspace.clone(), shard.clone(), ty));
        let slot = self.checkout(&mut BufferState::default()).await;
        self.route_override = None;
        let mut slot = slot?;
        let conn = slot_conn(&mut self.pinned, &mut slot);
        match conn.backend.query("BEGIN").await {
            Ok(r) => {
                let status = r.ok.map(|o| o.status).unwrap_or(conn.backend.status);
                self.settle(slot, false, Some(status));
                Ok(())
            }
            Err(e) => {
                super::drop_slot(&mut self.pinned, slot);
                let _ = self
                    .send_gate_error(
                        1105,
                        "HY000",
                        &format!(
                            "BEGIN on {keyspace}/{shard}: {}",
                            crate::pool::backend_error_text(&e)
                        ),
                    )
                    .await;
                Err(())
            }
        }
    }

    /// Runs one statement per shard at once and answers the client: merged
    /// rows, or the OK of a write with its affected rows added up.
    async fn gather(
        &mut self,
        keyspace: &Arc<str>,
        parts: Vec<(Arc<str>, String)>,
        ty: TabletType,
        answer: Answer<'_>,
    ) -> Result<(), End> {
        let Answer {
            merge,
            write,
            binary,
            params,
        } = answer;
        let Ok(results) = self.run_on_shards(keyspace, &parts, ty).await else {
            return Ok(());
        };
        if write {
            let affected: u64 = results
                .iter()
                .filter_map(|r| r.ok.map(|o| o.affected_rows))
                .sum();
            let last_id = results
                .iter()
                .filter_map(|r| r.ok.map(|o| o.last_insert_id))
                .max()
                .unwrap_or(0);
            if last_id != 0 {
                self.last_insert_id = last_id;
            }
            return self.send_ok_counts(affected, last_id).await;
        }
        let combined = match self.combine(keyspace, merge, results, params).await {
            Ok(rows) => rows,
            Err(merge::MergeError::Unsupported(why))
                if let Some(instead) = merge.and_then(|m| m.gather_instead.clone()) =>
            {
                tracing::debug!("merge refused ({why}): rows gathered instead");
                return Box::pin(self.run_materialize(&instead, params, binary)).await;
            }
            Err(e) => {
                let (code, state) = e.mysql_code();
                return self.send_gate_error(code, state, &e.to_string()).await;
            }
        };
        self.write_rows(&combined.columns, &combined.rows, binary)
            .await
    }

    /// The shards' answers as one result: merged as the plan says, or
    /// concatenated.
    async fn combine(
        &self,
        keyspace: &str,
        merge: Option<&plan::MergeTemplate>,
        results: Vec<QueryResult>,
        params: &[OwnedValue],
    ) -> Result<Rows, merge::MergeError> {
        let mut inputs: Vec<Rows> = results
            .into_iter()
            .map(|r| Rows {
                columns: r.specs,
                rows: r.rows,
            })
            .collect();
        match merge {
            Some(template) => {
                let columns = inputs.first().map_or(0, |r| r.columns.len());
                let spec = template
                    .resolve_with(columns, params)
                    .map_err(|e| merge::MergeError::Invalid(e.message))?;
                let collations = self
                    .declared_collations(keyspace, template, &inputs[0].columns)
                    .await;
                merge::merge_with_collations(&spec, &collations, inputs)
            }
            None => {
                let mut first = inputs.remove(0);
                for more in inputs {
                    first.rows.extend(more.rows);
                }
                Ok(first)
            }
        }
    }

    /// Runs a read-only statement through the planner and returns its rows
    /// (for subqueries the gate evaluates itself). Err when the client was
    /// told why not.
    async fn query_rows(&mut self, sql: &str) -> Result<Rows, ()> {
        let plan = match self.plan_for(sql) {
            Ok(p) => p,
            Err(e) => {
                let _ = self.send_plan_error(e).await;
                return Err(());
            }
        };
        let route = match &*plan {
            Plan::Route(route) => route,
            Plan::Materialize(m) => return Box::pin(self.materialize_rows(m, &[], false)).await,
            Plan::Join(join) => return Box::pin(self.join_rows(join, &[], false)).await,
            _ => {
                let _ = self
                    .send_gate_error(
                        1235,
                        "42000",
                        "This version of Tessera doesn't yet support 'this kind of subquery on several shards'",
                    )
                    .await;
                return Err(());
            }
        };
        let Some(vschema) = self.keyspace_vschema(&route.keyspace) else {
            let _ = self
                .send_gate_error(1049, "42000", "Unknown database")
                .await;
            return Err(());
        };
        let shards = self
            .route_shards(&vschema, &route.routing, &[], false)
            .await?;
        if shards.is_empty() {
            return Ok(Rows::default());
        }
        let (text, merge) = if shards.len() == 1 {
            (sql.to_string(), None)
        } else {
            (
                route.sql.clone().unwrap_or_else(|| sql.to_string()),
                route.merge.as_ref(),
            )
        };
        let parts: Vec<(Arc<str>, String)> =
            shards.into_iter().map(|s| (s, text.clone())).collect();
        let ty = self.tablet_type();
        let results = self.run_on_shards(&route.keyspace, &parts, ty).await?;
        match self.combine(&route.keyspace, merge, results, &[]).await {
            Ok(rows) => Ok(rows),
            Err(e) => {
                let (code, state) = e.mysql_code();
                let _ = self.send_gate_error(code, state, &e.to_string()).await;
                Err(())
            }
        }
    }

    /// A join the gate does itself: the left rows, then the right rows
    /// matching each distinct key, assembled, then aggregated, sorted and
    /// limited.
    async fn run_join(
        &mut self,
        join: &plan::join::JoinPlan,
        params: &[OwnedValue],
        binary: bool,
    ) -> Result<(), End> {
        let Ok(result) = self.join_rows(join, params, binary).await else {
            return Ok(());
        };
        self.write_rows(&result.columns, &result.rows, binary).await
    }

    /// Sends an error of the gate's own; Err(()) for the caller to return
    /// (the client was told).
    async fn told_error<T>(&mut self, code: u16, state: &str, message: &str) -> Result<T, ()> {
        let _ = self.send_gate_error(code, state, message).await;
        Err(())
    }

    /// [`Self::told_error`] for a planning error.
    async fn told_plan_error<T>(&mut self, e: PlanError) -> Result<T, ()> {
        let _ = self.send_plan_error(e).await;
        Err(())
    }

    /// The rows of a join the gate does itself. Err when the client was
    /// told why not.
    async fn join_rows(
        &mut self,
        join: &plan::join::JoinPlan,
        params: &[OwnedValue],
        prepared: bool,
    ) -> Result<Rows, ()> {
        use plan::join::{Cell, Side};
        /// Distinct keys the gate looks up one by one before refusing.
        const MAX_LOOKUPS: usize = 10_000;
        let (Ok(left_sql), Ok(right_sql), Ok(shape_sql)) = (
            plan::interpolate(&join.left_sql, params),
            plan::interpolate(&join.right_sql, params),
            plan::interpolate(&join.right_shape_sql, params),
        ) else {
            return self
                .told_error(1210, "HY000", "a parameter was not bound")
                .await;
        };
        // The merged columns' definitions, from one shard, before any row is
        // read (a query the shards refuse fails before the join's work).
        let shape_rows = match &join.merge {
            Some(m) => match self.join_merge_shape(&join.keyspace, m, params).await {
                Ok(rows) => Some(rows),
                Err(()) => return Err(()),
            },
            None => None,
        };
        let Ok(left) = Box::pin(self.query_rows(&left_sql)).await else {
            return Err(());
        };
        // An inner join's right columns are those of its query over no row;
        // a LEFT join's those of the join as written (see plan::join), and
        // it has the right side's NULL row for the left rows nothing
        // matches: all NULL unless the right query computes something.
        let (mut right_columns, null_row) = match &join.outer {
            Some(outer) => {
                let (Ok(columns_sql), Ok(null_row_sql)) = (
                    plan::interpolate(&outer.columns_sql, params),
                    plan::interpolate(&outer.null_row_sql, params),
                ) else {
                    return self
                        .told_error(1210, "HY000", "a parameter was not bound")
                        .await;
                };
                let computed = join.merge.is_some() || outer.where_right.is_some();
                let (columns, row) = if computed {
                    let Ok(mut rows) = self.one_shard_rows(&join.keyspace, null_row_sql).await
                    else {
                        return Err(());
                    };
                    let Some(row) = rows.rows.pop() else {
                        return self
                            .told_error(
                                1105,
                                "HY000",
                                "internal: the NULL row of a left join's right table is missing",
                            )
                            .await;
                    };
                    (rows.columns, Some(row))
                } else {
                    (Vec::new(), None)
                };
                // The merge takes its columns from its own shape query.
                let columns = if join.merge.is_none() {
                    let Ok(rows) = self.one_shard_rows(&join.keyspace, columns_sql).await else {
                        return Err(());
                    };
                    rows.columns
                } else {
                    columns
                };
                let row = row.unwrap_or_else(|| vec![None; columns.len()]);
                (columns, Some(row))
            }
            None => {
                let Ok(shape) = Box::pin(self.query_rows(&shape_sql)).await else {
                    return Err(());
                };
                (shape.columns, None)
            }
        };
        let outer = join.outer.as_ref();
        let is_true = |row: &Row, column: Option<usize>| {
            column.is_none_or(|i| matches!(row.get(i), Some(Some(v)) if v.as_slice() == b"1"))
        };
        let mut cache: HashMap<Row, Vec<Row>> = HashMap::new();
        let mut out_rows: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
        let value = |side: &Side, lrow: &Row, rrow: &Row| match side {
            Side::Left(i) => lrow.get(*i).cloned().flatten(),
            Side::Right(i) => rrow.get(*i).cloned().flatten(),
        };
        for lrow in &left.rows {
            let key: Vec<Option<Vec<u8>>> = join
                .keys
                .iter()
                .map(|(_, i)| lrow.get(*i).cloned().flatten())
                .collect();
            // NULL equals nothing; a left row whose own ON conditions are
            // not true matches nothing either.
            let unmatched =
                key.iter().any(Option::is_none) || !is_true(lrow, outer.and_then(|o| o.on_left));
            if unmatched && null_row.is_none() {
                continue;
            }
            if !unmatched && !cache.contains_key(&key) {
                if cache.len() >= MAX_LOOKUPS {
                    let message = format!(
                        "This version of Tessera doesn't yet support 'a cross-shard join with more than {MAX_LOOKUPS} distinct join keys'"
                    );
                    return self.told_error(1235, "42000", &message).await;
                }
                let mut sql = right_sql.clone();
                for ((marker, i), value) in join.keys.iter().zip(&key) {
                    let value = value.as_deref().unwrap_or_default();
                    let literal = match left.columns.get(*i) {
                        Some(c) if merge::is_numeric(c) => {
                            String::from_utf8_lossy(value).into_owned()
                        }
                        _ => plan::text::quote_bytes(value),
                    };
                    sql = sql.replace(marker, &literal);
                }
                let Ok(rows) = Box::pin(self.query_rows(&sql)).await else {
                    return Err(());
                };
                // A LEFT join's right columns are the NULL row's (nullable).
                if !rows.columns.is_empty() && null_row.is_none() {
                    right_columns = rows.columns;
                }
                cache.insert(key.clone(), rows.rows);
            }
            let matches = if unmatched { &[][..] } else { &cache[&key][..] };
            let rrows = match &null_row {
                Some(null_row) if matches.is_empty() => std::slice::from_ref(null_row),
                _ => matches,
            };
            for rrow in rrows {
                // WHERE's conditions over the right side, after NULL extension.
                if !is_true(rrow, outer.and_then(|o| o.where_right)) {
                    continue;
                }
                out_rows.push(match &join.merge {
                    // One row standing for a group of one (see plan::join).
                    Some(m) => m
                        .cells
                        .iter()
                        .map(|cell| match cell {
                            Cell::Value(side) => value(side, lrow, rrow),
                            Cell::One => Some(b"1".to_vec()),
                            Cell::CountOf(side) => value(side, lrow, rrow).map(|_| b"1".to_vec()),
                            Cell::Computed => None,
                        })
                        .collect(),
                    None => join
                        .output
                        .iter()
                        .map(|side| value(side, lrow, rrow))
                        .collect(),
                });
            }
        }
        let side_column = |side: &Side| match side {
            Side::Left(i) => left.columns.get(*i).cloned(),
            Side::Right(i) => right_columns.get(*i).cloned(),
        };
        if let (Some(m), Some(shape_rows)) = (&join.merge, shape_rows) {
            // SUM and AVG add the values a side returned as text: exact for
            // integers and decimals, refused for DOUBLE sums that round; a
            // FLOAT prints fewer digits than the double MariaDB adds. With
            // no joined row nothing is added (and a side that ran on no
            // shard has no columns to look at).
            let summed = if out_rows.is_empty() {
                &[][..]
            } else {
                &m.summed[..]
            };
            for side in summed {
                let column = side_column(side);
                let addable = column.as_ref().is_some_and(|c| {
                    merge::is_numeric(c)
                        && c.column_type != tessera_wire::ColumnType::MYSQL_TYPE_FLOAT
                });
                if !addable {
                    let message = format!(
                        "This version of Tessera doesn't yet support 'SUM or AVG of the {} column `{}` in a cross-shard join'",
                        column
                            .as_ref()
                            .map_or("unknown".to_string(), |c| format!("{:?}", c.column_type)),
                        column.as_ref().map_or("?", |c| c.name.as_str())
                    );
                    return self.told_error(1235, "42000", &message).await;
                }
            }
            let spec = match m.template.resolve_with(shape_rows.columns.len(), params) {
                Ok(spec) => spec,
                Err(e) => return self.told_plan_error(e).await,
            };
            let collations = self.join_collations(&join.keyspace, &m.sources);
            let merged = if out_rows.is_empty() {
                // No joined row: the shape query's own answer is one server's
                // over no row (one row of COUNT 0, NULL sums and the select
                // list's constants without GROUP BY; none with it), merged
                // as a shard's partial answer would be.
                merge::merge_with_collations(&spec, &collations, vec![shape_rows])
            } else {
                let rows = Rows {
                    columns: shape_rows.columns,
                    rows: out_rows,
                };
                merge::merge_raw_rows(&spec, &collations, rows)
            };
            let result = match merged {
                Ok(r) => r,
                Err(merge::MergeError::Unsupported(why))
                    if let Some(instead) = m.template.gather_instead.clone() =>
                {
                    tracing::debug!("join merge refused ({why}): rows gathered instead");
                    return Box::pin(self.materialize_rows(&instead, params, prepared)).await;
                }
                Err(e) => {
                    let (code, state) = e.mysql_code();
                    return self.told_error(code, state, &e.to_string()).await;
                }
            };
            return Ok(result);
        }
        let columns: Vec<ColumnSpec> = join
            .output
            .iter()
            .zip(&join.aliases)
            .map(|(side, alias)| {
                let mut column = side_column(side).unwrap_or_else(|| ColumnSpec::varchar("?"));
                // The side's query selects the bare column: an alias names it.
                if let Some(alias) = alias {
                    column.name = alias.clone();
                }
                column
            })
            .collect();
        let mut result = Rows {
            columns,
            rows: out_rows,
        };
        if !join.order_by.is_empty() || join.limit.is_some() || join.offset > 0 {
            let spec = merge::MergeSpec {
                order_by: join.order_by.clone(),
                offset: join.offset,
                limit: join.limit,
                visible_columns: join.output.len(),
                ..Default::default()
            };
            let sources: Vec<Option<(String, String)>> =
                join.sources.iter().cloned().map(Some).collect();
            let collations = self.join_collations(&join.keyspace, &sources);
            result = match merge::merge_with_collations(&spec, &collations, vec![result]) {
                Ok(r) => r,
                Err(e) => {
                    let (code, state) = e.mysql_code();
                    return self.told_error(code, state, &e.to_string()).await;
                }
            };
        }
        Ok(result)
    }

    /// The declared collation of each (table, column) of a join's result.
    fn join_collations(
        &self,
        keyspace: &str,
        sources: &[Option<(String, String)>],
    ) -> Vec<Option<u16>> {
        sources
            .iter()
            .map(|source| {
                let (table, column) = source.as_ref()?;
                let schema = self.shared.schema.table(keyspace, table)?;
                let collation = schema.column(column)?.collation.clone()?;
                merge::collation_id(&collation)
            })
            .collect()
    }

    /// The answer of one shard (the keyspace's first) to a query that is the
    /// same on all. Err when the client was told why not.
    async fn one_shard_rows(&mut self, keyspace: &Arc<str>, sql: String) -> Result<Rows, ()> {
        let shard = self
            .keyspace_vschema(keyspace)
            .and_then(|v| v.shards.first().map(|(s, _)| s.clone()));
        let Some(shard) = shard else {
            let _ = self
                .send_gate_error(1105, "HY000", "keyspace has no shards")
                .await;
            return Err(());
        };
        let ty = self.tablet_type();
        let results = self.run_on_shards(keyspace, &[(shard, sql)], ty).await?;
        Ok(results
            .into_iter()
            .next()
            .map(Rows::from)
            .unwrap_or_default())
    }

    /// The columns a join's merge takes: its scatter query over both tables,
    /// matching nothing, on one shard (with its answer over no row). Err
    /// when the client was told why not.
    async fn join_merge_shape(
        &mut self,
        keyspace: &Arc<str>,
        merge: &plan::join::JoinMerge,
        params: &[OwnedValue],
    ) -> Result<Rows, ()> {
        let Ok(sql) = plan::interpolate(&merge.shape_sql, params) else {
            let _ = self
                .send_gate_error(1210, "HY000", "a parameter was not bound")
                .await;
            return Err(());
        };
        let shape = self.one_shard_rows(keyspace, sql).await?;
        if shape.columns.len() != merge.cells.len() {
            let _ = self
                .send_gate_error(
                    1105,
                    "HY000",
                    &format!(
                        "internal: the join's merge expects {} columns, the shard returned {}",
                        merge.cells.len(),
                        shape.columns.len()
                    ),
                )
                .await;
            return Err(());
        }
        Ok(shape)
    }

    /// Evaluates a query's uncorrelated subqueries, writes their answers in,
    /// and runs what results.
    async fn run_pullout(
        &mut self,
        subqueries: &[plan::subquery::Pulled],
        outer: &str,
        params: &[OwnedValue],
        classified: Classified,
        binary: bool,
    ) -> Result<(), End> {
        // More values than the gate may hold in one IN list are refused.
        let max_values = self.shared.max_memory_rows;
        let mut outer_sql = match plan::interpolate(outer, params) {
            Ok(t) => t,
            Err(i) => {
                return self
                    .send_gate_error(1210, "HY000", &format!("parameter {i} was not bound"))
                    .await;
            }
        };
        for pulled in subqueries {
            let Ok(sql) = plan::interpolate(&pulled.sql, params) else {
                return self
                    .send_gate_error(1210, "HY000", "a parameter was not bound")
                    .await;
            };
            let Ok(rows) = Box::pin(self.query_rows(&sql)).await else {
                return Ok(());
            };
            let is_exists = matches!(pulled.kind, plan::subquery::PulledKind::Exists { .. });
            if !is_exists && rows.columns.len() > 1 {
                return self
                    .send_gate_error(1241, "21000", "Operand should contain 1 column(s)")
                    .await;
            }
            if rows.rows.len() > max_values {
                let message = format!(
                    "This version of Tessera doesn't yet support 'a subquery returning more than {max_values} rows on several shards' (the gate's --max-memory-rows)"
                );
                return self.send_gate_error(1235, "42000", &message).await;
            }
            let numeric = rows.columns.first().is_some_and(merge::is_numeric);
            let values: Vec<String> = rows
                .rows
                .iter()
                .map(|r| match r.first().cloned().flatten() {
                    None => "NULL".to_string(),
                    Some(v) if numeric => String::from_utf8_lossy(&v).into_owned(),
                    Some(v) => plan::text::quote_bytes(&v),
                })
                .collect();
            let text = match plan::subquery::replacement(&pulled.kind, &values) {
                Ok(t) => t,
                Err(e) => return self.send_plan_error(e).await,
            };
            outer_sql = outer_sql.replace(&pulled.marker, &text);
        }
        if binary {
            // The outer statement now exists only as text: its rows are
            // re-encoded for the client's binary protocol.
            let Ok(rows) = Box::pin(self.query_rows(&outer_sql)).await else {
                return Ok(());
            };
            return self.write_rows(&rows.columns, &rows.rows, true).await;
        }
        let plan = match self.plan_for(&outer_sql) {
            Ok(p) => p,
            Err(e) => return self.send_plan_error(e).await,
        };
        let mut bytes = Vec::with_capacity(outer_sql.len() + 1);
        bytes.push(tessera_wire::protocol::command::COM_QUERY);
        bytes.extend_from_slice(outer_sql.as_bytes());
        let payload = Bytes::from(bytes);
        Box::pin(self.run_plan(&plan, &[], Original::Query(&payload), classified, false)).await
    }

    /// Gathers the rows of each of `m.gathered` through the planner, then
    /// runs the rest of the query over them on one shard (see
    /// plan::materialize), and sends the answer.
    async fn run_materialize(
        &mut self,
        m: &plan::materialize::MaterializePlan,
        params: &[OwnedValue],
        binary: bool,
    ) -> Result<(), End> {
        let Ok(answer) = self.materialize_rows(m, params, binary).await else {
            return Ok(());
        };
        self.write_rows(&answer.columns, &answer.rows, binary).await
    }

    /// INSERT ... SELECT into a sharded table: the SELECT's rows through the
    /// planner, then one INSERT of them planned as any INSERT.
    async fn run_insert_select(
        &mut self,
        p: &plan::materialize::InsertSelectPlan,
        params: &[OwnedValue],
    ) -> Result<(), End> {
        let (Ok(select), Ok(insert)) = (
            plan::interpolate(&p.select, params),
            plan::interpolate(&p.insert, params),
        ) else {
            return self
                .send_gate_error(1210, "HY000", "a parameter was not bound")
                .await;
        };
        let Ok(rows) = Box::pin(self.query_rows(&select)).await else {
            return Ok(());
        };
        if rows.rows.is_empty() {
            return self.send_ok_counts(0, 0).await;
        }
        let mut budget = plan::materialize::Budget::new(self.shared.max_memory_rows);
        let values = match plan::materialize::rows_as_values(&rows, &mut budget) {
            Ok(v) => v,
            Err(e) => return self.send_plan_error(e).await,
        };
        drop(rows);
        let Ok(sql) = plan::materialize::fill(&insert, &[values]) else {
            return self
                .send_gate_error(1105, "HY000", "internal: gathered rows without their place")
                .await;
        };
        // Planned for this one statement, not cached: its text holds the rows.
        let planned = {
            let table = self.shared.routing.load();
            let ctx = plan::PlanContext {
                routing: &table,
                keyspace: self.target.as_ref().map(|t| t.keyspace.as_str()),
                schema: Some(&self.shared.schema),
            };
            plan::plan(&ctx, &sql)
        };
        match planned {
            Ok(Plan::Insert(insert)) => self.run_insert(&insert, &[]).await,
            Ok(other) => {
                let message = format!(
                    "internal: the rows of INSERT ... SELECT planned as {}",
                    other.explain()
                );
                self.send_gate_error(1105, "HY000", &message).await
            }
            Err(e) => self.send_plan_error(e).await,
        }
    }

    /// The answer of a plan over gathered rows. Err when the client was
    /// told why not.
    async fn materialize_rows(
        &mut self,
        m: &plan::materialize::MaterializePlan,
        params: &[OwnedValue],
        prepared: bool,
    ) -> Result<Rows, ()> {
        let Ok(outer) = plan::interpolate(&m.outer, params) else {
            return self
                .told_error(1210, "HY000", "a parameter was not bound")
                .await;
        };
        let mut budget = plan::materialize::Budget::new(self.shared.max_memory_rows);
        let mut tables = Vec::with_capacity(m.gathered.len());
        for gathered in &m.gathered {
            let Ok(mut sql) = plan::interpolate(&gathered.sql, params) else {
                return self
                    .told_error(1210, "HY000", "a parameter was not bound")
                    .await;
            };
            if gathered.table_rows {
                // One row past the limit is enough to refuse: no shard
                // sends more.
                sql = format!("{sql} LIMIT {}", budget.rows_left() + 1);
            }
            let rows = Box::pin(self.query_rows(&sql)).await?;
            match plan::materialize::rows_as_table(&sql, &rows, &mut budget) {
                Ok(t) => tables.push(t),
                Err(e) => return self.told_plan_error(e).await,
            }
        }
        let Ok(sql) = plan::materialize::fill(&outer, &tables) else {
            return self
                .told_error(1105, "HY000", "internal: gathered rows without their place")
                .await;
        };
        drop(tables);
        let mut answer = self.one_shard_rows(&m.keyspace, sql).await?;
        for (column, name) in answer.columns.iter_mut().zip(&m.names) {
            if let Some(name) = name {
                column.name = name.resolve(params, prepared);
            }
        }
        Ok(answer)
    }

    /// The declared collation of each result column the schema tracker
    /// knows: result metadata carries only the connection's.
    async fn declared_collations(
        &self,
        keyspace: &str,
        template: &plan::MergeTemplate,
        columns: &[ColumnSpec],
    ) -> Vec<Option<u16>> {
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let sources = template.column_sources(&names);
        // A table the tracker has not seen yet (created a moment ago, not
        // through this gate): read the keyspace's schema now.
        if sources
            .iter()
            .flatten()
            .any(|(table, _)| self.shared.schema.table(keyspace, table).is_none())
        {
            let routing = self.shared.routing.load_full();
            if let Err(e) = self.shared.schema.refresh_now(&routing, keyspace).await {
                tracing::debug!("schema refresh of {keyspace} failed: {e}");
            }
        }
        sources
            .into_iter()
            .map(|source| {
                let (table, column) = source?;
                let schema = self.shared.schema.table(keyspace, &table)?;
                let collation = schema.column(&column)?.collation.clone()?;
                merge::collation_id(&collation)
            })
            .collect()
    }

    /// Runs each (shard, sql) on its own connection, all at once. Err when
    /// the client was already told of a failure.
    pub(super) async fn run_on_shards(
        &mut self,
        keyspace: &Arc<str>,
        parts: &[(Arc<str>, String)],
        ty: TabletType,
    ) -> Result<Vec<QueryResult>, ()> {
        let mut slots: Vec<Slot> = Vec::with_capacity(parts.len());
        for (shard, _) in parts {
            if self.sharded_tx && self.begin_on(keyspace, shard, ty).await.is_err() {
                self.settle_all(slots, None);
                return Err(());
            }
            self.route_override = Some((keyspace.clone(), shard.clone(), ty));
            let slot = self.checkout_part(&mut BufferState::default(), false).await;
            self.route_override = None;
            match slot {
                Ok(s) => slots.push(s),
                Err(()) => {
                    self.settle_all(slots, None);
                    return Err(());
                }
            }
        }
        // Pinned slots point into `self.pinned`; lent ones own their lease.
        let results: Vec<Result<QueryResult, BackendError>> = {
            let pinned_idx: Vec<Option<usize>> = slots
                .iter()
                .map(|s| match s {
                    Slot::Pinned(i) => Some(*i),
                    Slot::Lent { .. } => None,
                })
                .collect();
            let mut pinned_conns: Vec<(usize, &mut crate::pool::PooledConn)> = self
                .pinned
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| pinned_idx.contains(&Some(*i)))
                .map(|(i, p)| (i, p.lease.conn()))
                .collect();
            let mut lent_conns: Vec<&mut crate::pool::PooledConn> = slots
                .iter_mut()
                .filter_map(|s| match s {
                    Slot::Lent { lease, .. } => Some(lease.conn()),
                    Slot::Pinned(_) => None,
                })
                .collect();
            // Put the connections back in the parts' order.
            let mut ordered: Vec<&mut crate::pool::PooledConn> = Vec::with_capacity(parts.len());
            let mut lent_iter = lent_conns.drain(..);
            for idx in &pinned_idx {
                match idx {
                    Some(i) => {
                        let at = pinned_conns
                            .iter()
                            .position(|(j, _)| j == i)
                            .expect("pinned slot");
                        ordered.push(pinned_conns.swap_remove(at).1);
                    }
                    None => ordered.push(lent_iter.next().expect("lent slot")),
                }
            }
            join_all(
                ordered
                    .into_iter()
                    .zip(parts.iter())
                    .map(|(conn, (_, sql))| conn.backend.query(sql)),
            )
            .await
        };
        let mut out: Vec<Option<QueryResult>> = Vec::with_capacity(results.len());
        let mut first_error: Option<(u16, String, String)> = None;
        let mut statuses = Vec::with_capacity(results.len());
        let mut broken = Vec::with_capacity(results.len());
        // Reads outside a transaction whose connection broke: run again.
        let mut rerun: Vec<usize> = Vec::new();
        for (i, (r, (shard, sql))) in results.into_iter().zip(parts).enumerate() {
            match r {
                Ok(q) => {
                    statuses.push(q.ok.map(|o| o.status));
                    broken.push(false);
                    out.push(Some(q));
                }
                Err(e)
                    if !matches!(e, BackendError::Server(_))
                        && matches!(slots[i], Slot::Lent { .. })
                        && tessera_sql::classify(sql).kind == StatementKind::Select =>
                {
                    statuses.push(None);
                    broken.push(true);
                    out.push(None);
                    rerun.push(i);
                }
                Err(BackendError::Server(e)) => {
                    statuses.push(None);
                    broken.push(false);
                    first_error.get_or_insert((e.code, e.sqlstate.clone(), e.message.clone()));
                }
                Err(e) => {
                    statuses.push(None);
                    broken.push(true);
                    first_error.get_or_insert((
                        2013,
                        "HY000".to_string(),
                        format!(
                            "Lost connection to MySQL server of shard {keyspace}/{shard}: {}",
                            crate::pool::backend_error_text(&e)
                        ),
                    ));
                }
            }
        }
        // Settle in reverse so swap_remove of pinned slots keeps the other
        // indices valid.
        let mut items: Vec<(Slot, Option<StatusFlags>, bool)> = slots
            .into_iter()
            .zip(statuses)
            .zip(broken)
            .map(|((s, st), b)| (s, st, b))
            .collect();
        items.sort_by_key(|(s, _, _)| match s {
            Slot::Pinned(i) => std::cmp::Reverse(*i as isize),
            Slot::Lent { .. } => std::cmp::Reverse(-1),
        });
        for (slot, status, is_broken) in items {
            if is_broken {
                super::drop_slot(&mut self.pinned, slot);
            } else {
                self.settle(slot, false, status);
            }
        }
        if let Some((code, state, message)) = first_error {
            self.shared.metrics.errors.inc();
            let _ = self.send_error(code, &state, &message).await;
            return Err(());
        }
        for i in rerun {
            let (shard, sql) = &parts[i];
            out[i] = Some(self.rerun_read(keyspace, shard, ty, sql).await?);
        }
        Ok(out
            .into_iter()
            .map(|q| q.expect("every part answered"))
            .collect())
    }

    /// A connection for one shard's part (the caller sets `route_override`).
    /// A pooled one the server closed meanwhile (a reparent ends the old
    /// primary's sessions), or with `fresh` any pooled one, is swapped for a
    /// newly opened one before use. Err when the client was told why none.
    async fn checkout_part(
        &mut self,
        buffering: &mut BufferState,
        fresh: bool,
    ) -> Result<Slot, ()> {
        let mut slot = self.checkout(buffering).await?;
        let replace = match &mut slot {
            Slot::Lent { lease, .. } => {
                !lease.fresh && (fresh || !super::backend_looks_alive(lease.conn()))
            }
            Slot::Pinned(_) => false,
        };
        if replace {
            return self.replace_dead(slot, buffering).await.ok_or(());
        }
        Ok(slot)
    }

    /// Runs a read again on a new connection after its connection broke
    /// (its shard's primary may be changing: the checkout waits for it).
    /// Err when the client was told why it failed.
    async fn rerun_read(
        &mut self,
        keyspace: &Arc<str>,
        shard: &Arc<str>,
        ty: TabletType,
        sql: &str,
    ) -> Result<QueryResult, ()> {
        self.shared.metrics.backend_retries.inc();
        let mut buffering = BufferState::default();
        let mut last_error = String::new();
        for _ in 0..3 {
            self.route_override = Some((keyspace.clone(), shard.clone(), ty));
            let slot = self.checkout_part(&mut buffering, true).await;
            self.route_override = None;
            let mut slot = slot?;
            match slot_conn(&mut self.pinned, &mut slot)
                .backend
                .query(sql)
                .await
            {
                Ok(q) => {
                    self.settle(slot, false, q.ok.map(|o| o.status));
                    return Ok(q);
                }
                Err(BackendError::Server(e)) => {
                    self.settle(slot, false, None);
                    let _ = self.send_error(e.code, &e.sqlstate, &e.message).await;
                    return Err(());
                }
                Err(e) => {
                    last_error = crate::pool::backend_error_text(&e);
                    super::drop_slot(&mut self.pinned, slot);
                    // Give the topology a moment to name the new primary.
                    tokio::time::sleep(crate::buffer::FAST_REFRESH).await;
                }
            }
        }
        let message =
            format!("Lost connection to MySQL server of shard {keyspace}/{shard}: {last_error}");
        let _ = self.send_gate_error(2013, "HY000", &message).await;
        Err(())
    }

    fn settle_all(&mut self, slots: Vec<Slot>, status: Option<StatusFlags>) {
        let mut slots = slots;
        slots.sort_by_key(|s| match s {
            Slot::Pinned(i) => std::cmp::Reverse(*i as isize),
            Slot::Lent { .. } => std::cmp::Reverse(-1),
        });
        for s in slots {
            self.settle(s, false, status);
        }
    }

    pub(super) async fn send_ok_counts(
        &mut self,
        affected: u64,
        last_insert_id: u64,
    ) -> Result<(), End> {
        let status = self.client_status();
        let packet = tessera_wire::ok_packet(self.caps, affected, last_insert_id, status, 0, "");
        let mut seq = 1;
        self.client.write_packet(&mut seq, &packet);
        self.flush_client().await
    }

    async fn write_rows(
        &mut self,
        columns: &[ColumnSpec],
        rows: &[Vec<Option<Vec<u8>>>],
        binary: bool,
    ) -> Result<(), End> {
        let status = self.client_status();
        let mut seq = 1;
        if let Err(e) = tessera_wire::binary_row::write_resultset(
            &mut self.client,
            &mut seq,
            self.caps,
            columns,
            rows,
            status,
            binary,
        ) {
            self.client.clear_write_buffer();
            return self
                .send_gate_error(
                    1105,
                    "HY000",
                    &format!("cannot encode the merged result: {e}"),
                )
                .await;
        }
        self.flush_client().await
    }

    async fn run_insert(&mut self, insert: &InsertPlan, params: &[OwnedValue]) -> Result<(), End> {
        let Some(vschema) = self.keyspace_vschema(&insert.keyspace) else {
            return self
                .send_gate_error(1049, "42000", "Unknown database")
                .await;
        };
        let param = |i: usize| params.get(i).cloned().unwrap_or(OwnedValue::Null);
        // Rows whose auto-increment value is missing or NULL take a sequence id.
        let mut ids: Vec<i64> = Vec::new();
        if let Some(seq) = &insert.sequence {
            let needs = insert
                .rows
                .iter()
                .filter(|r| match &r[insert.sequence_column] {
                    RowValue::Generated => true,
                    RowValue::Text {
                        value: Some(OwnedValue::Null),
                        ..
                    } => true,
                    RowValue::Param(i) => param(*i) == OwnedValue::Null,
                    _ => false,
                })
                .count() as u64;
            if needs > 0 {
                let pool = self.sequence_pool(&seq.sequence_keyspace);
                let Some(pool) = pool else {
                    return self
                        .send_gate_error(
                            1105,
                            "HY000",
                            &format!(
                                "no primary for sequence {}.{}",
                                seq.sequence_keyspace, seq.sequence_table
                            ),
                        )
                        .await;
                };
                match self
                    .shared
                    .sequences
                    .next_ids(&seq.sequence_keyspace, &seq.sequence_table, needs, &pool)
                    .await
                {
                    Ok(v) => ids = v,
                    Err(e) => {
                        let (code, state, message) = e.to_mysql();
                        return self.send_error(code, &state, &message).await;
                    }
                }
            }
        }
        let first_id = ids.first().copied();
        let mut next_id = ids.into_iter();
        let mut per_shard: BTreeMap<Arc<str>, Vec<String>> = BTreeMap::new();
        let with_lookups = !insert.lookups.is_empty() && !insert.all_shards;
        // Per row, for owned lookups: its keyspace id and column values.
        let mut entries: Vec<(crate::vindex::KeyspaceId, Vec<OwnedValue>)> = Vec::new();
        for row in &insert.rows {
            let mut texts = Vec::with_capacity(row.len());
            let mut row_values: Vec<OwnedValue> = Vec::new();
            let mut vindex_value = None;
            for (i, v) in row.iter().enumerate() {
                let generated = i == insert.sequence_column
                    && insert.sequence.is_some()
                    && match v {
                        RowValue::Generated => true,
                        RowValue::Text {
                            value: Some(OwnedValue::Null),
                            ..
                        } => true,
                        RowValue::Param(p) => param(*p) == OwnedValue::Null,
                        _ => false,
                    };
                let (text, value) = if generated {
                    let id = next_id.next().unwrap_or_default();
                    (id.to_string(), Some(OwnedValue::Int(id)))
                } else {
                    match v {
                        // An expression may hold parameters (`-?` of a
                        // normalized `-5`): they are filled in.
                        RowValue::Text { sql, value } => match plan::interpolate(sql, params) {
                            Ok(text) => (text, value.clone()),
                            Err(i) => {
                                return self
                                    .send_gate_error(
                                        1210,
                                        "HY000",
                                        &format!("parameter {i} was not bound"),
                                    )
                                    .await;
                            }
                        },
                        RowValue::Param(p) => {
                            let value = param(*p);
                            (value.to_sql(), Some(value))
                        }
                        RowValue::Generated => ("NULL".to_string(), Some(OwnedValue::Null)),
                    }
                };
                if with_lookups {
                    row_values.push(value.clone().unwrap_or(OwnedValue::Null));
                }
                if i == insert.vindex_column {
                    vindex_value = value;
                }
                texts.push(text);
            }
            let row_text = format!("({})", texts.join(", "));
            if insert.all_shards || insert.vindex.is_none() {
                for (shard, _) in &vschema.shards {
                    per_shard
                        .entry(shard.clone())
                        .or_default()
                        .push(row_text.clone());
                }
                continue;
            }
            let vindex = insert.vindex.as_ref().expect("checked");
            let value = vindex_value.unwrap_or(OwnedValue::Null);
            let ksid = match plan::map_value(vindex.as_ref(), &value, true) {
                Ok(Some(k)) => k,
                Ok(None) => unreachable!("for_write maps or errs"),
                Err(e) => return self.send_plan_error(e).await,
            };
            let Some(shard) = vschema.shard_for(&ksid) else {
                return self
                    .send_gate_error(
                        1105,
                        "HY000",
                        &format!(
                            "no shard of keyspace '{}' owns keyspace id {ksid}",
                            insert.keyspace
                        ),
                    )
                    .await;
            };
            per_shard.entry(shard.clone()).or_default().push(row_text);
            if with_lookups {
                entries.push((ksid, row_values));
            }
        }
        let parts: Vec<(Arc<str>, String)> = per_shard
            .into_iter()
            .map(|(shard, rows)| {
                (
                    shard,
                    format!(
                        "{} VALUES {}{}",
                        insert.prefix,
                        rows.join(", "),
                        insert.suffix
                    ),
                )
            })
            .collect();
        if parts.len() == 1 && !with_lookups && !self.sharded_tx && first_id.is_none() {
            // One shard whose answer is the client's: sent as a one-shard
            // route is, so that a primary change is buffered and an answer
            // lost with its primary is settled by the write's marker.
            let (shard, sql) = parts.into_iter().next().expect("one part");
            self.route_override = Some((insert.keyspace.clone(), shard, self.tablet_type()));
            let result = self
                .forward(
                    Request::Query(sql.as_bytes()),
                    Flags::default(),
                    StatementKind::Insert,
                )
                .await;
            self.route_override = None;
            return result;
        }
        let results = if with_lookups {
            self.run_insert_with_lookups(insert, &vschema, &entries, &parts)
                .await
        } else {
            let ty = self.tablet_type();
            self.run_on_shards(&insert.keyspace, &parts, ty).await
        };
        let Ok(results) = results else {
            return Ok(());
        };
        let mut affected: u64 = results
            .iter()
            .filter_map(|r| r.ok.map(|o| o.affected_rows))
            .sum();
        if insert.all_shards && !parts.is_empty() {
            // Every shard's copy took the same rows: report them once.
            affected /= parts.len() as u64;
        }
        let last_id = match first_id {
            Some(id) => id as u64,
            None => results
                .iter()
                .filter_map(|r| r.ok.map(|o| o.last_insert_id))
                .find(|&id| id != 0)
                .unwrap_or(0),
        };
        if last_id != 0 {
            self.last_insert_id = last_id;
        }
        self.send_ok_counts(affected, last_id).await
    }

    async fn run_ddl(
        &mut self,
        keyspace: &Arc<str>,
        params: &[OwnedValue],
        original: Original<'_>,
    ) -> Result<(), End> {
        let Original::Query(payload) = original else {
            let _ = params;
            return self
                .send_gate_error(
                    1295,
                    "HY000",
                    "This command is not supported in the prepared statement protocol yet",
                )
                .await;
        };
        if self.sharded_tx {
            // DDL commits implicitly, as on a server.
            if self.finish_all("COMMIT").await.is_err() {
                return Ok(());
            }
        }
        let Some(vschema) = self.keyspace_vschema(keyspace) else {
            return self
                .send_gate_error(1049, "42000", "Unknown database")
                .await;
        };
        let sql = String::from_utf8_lossy(&payload[1..]).into_owned();
        let parts: Vec<(Arc<str>, String)> = vschema
            .shards
            .iter()
            .map(|(s, _)| (s.clone(), sql.clone()))
            .collect();
        let result = self
            .run_on_shards(keyspace, &parts, TabletType::Primary)
            .await;
        let routing = self.shared.routing.load_full();
        if let Err(e) = self.shared.schema.refresh_now(&routing, keyspace).await {
            tracing::debug!("schema refresh of {keyspace} after DDL failed: {e}");
        }
        match result {
            Ok(_) => self.send_ok_counts(0, 0).await,
            Err(()) => Ok(()),
        }
    }

    /// SET on a sharded session. autocommit is the session's own (off: every
    /// statement joins a transaction until COMMIT or ROLLBACK); a character
    /// set equal to the one the connection negotiated is a no-op. Anything
    /// else would have to follow the session to every shard connection.
    async fn sharded_set(&mut self, sql: &str) -> Result<(), End> {
        let text = sql.trim().trim_end_matches(';').trim();
        let lower = text.to_ascii_lowercase();
        let body = lower["set".len()..].trim();
        let squashed: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let autocommit = squashed
            .strip_prefix("session ")
            .unwrap_or(&squashed)
            .trim_start_matches("@@session.")
            .trim_start_matches("@@")
            .to_string();
        if let Some(value) = autocommit
            .strip_prefix("autocommit")
            .map(|r| r.trim_start().trim_start_matches(['=', ' ']).trim())
            .filter(|r| !r.is_empty() && !r.contains(','))
        {
            let on = match value.trim_matches('\'') {
                "1" | "on" | "true" => true,
                "0" | "off" | "false" => false,
                _ => {
                    return self
                        .send_gate_error(
                            1231,
                            "42000",
                            &format!(
                                "Variable 'autocommit' can't be set to the value of '{value}'"
                            ),
                        )
                        .await;
                }
            };
            if on {
                // Switching autocommit on commits what is open, as a server does.
                if (self.sharded_tx || self.autocommit_off)
                    && self.finish_all("COMMIT").await.is_err()
                {
                    self.autocommit_off = false;
                    return Ok(());
                }
                self.autocommit_off = false;
                self.sharded_tx = false;
            } else {
                self.autocommit_off = true;
                self.sharded_tx = true;
            }
            return self.send_ok_counts(0, 0).await;
        }
        let charset = squashed
            .strip_prefix("names ")
            .or_else(|| squashed.strip_prefix("character set "))
            .or_else(|| squashed.strip_prefix("charset "))
            .map(|r| {
                r.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_matches(['\'', '"', '`'])
                    .to_string()
            });
        if let Some(charset) = charset {
            let negotiated = charset_of_collation(self.flavour.charset);
            let wanted = match charset.as_str() {
                "utf8" => "utf8mb3",
                other => other,
            };
            if negotiated == Some(wanted) {
                return self.send_ok_counts(0, 0).await;
            }
            return self
                .send_gate_error(
                    1235,
                    "42000",
                    &format!(
                        "This version of Tessera doesn't yet support 'changing the character set to {charset} on a sharded keyspace; connect with it instead'"
                    ),
                )
                .await;
        }
        self.sharded_session_set(text).await
    }

    /// Any other SET: kept by the session and run on every backend
    /// connection it uses (reserved to it from then on), as Vitess's
    /// reserved connections do. It runs on one shard first, so a bad name
    /// or value fails as it would on a server.
    async fn sharded_session_set(&mut self, text: &str) -> Result<(), End> {
        /// Settings one session may accumulate.
        const MAX_SETTINGS: usize = 64;
        if let Some(why) = settings::not_replayable(text) {
            let message = format!(
                "This version of Tessera doesn't yet support '{why}' on a sharded keyspace"
            );
            return self.send_gate_error(1235, "42000", &message).await;
        }
        if self.shard_settings.len() >= MAX_SETTINGS {
            let message = format!(
                "This version of Tessera doesn't yet support 'more than {MAX_SETTINGS} SET statements in one session on a sharded keyspace'"
            );
            return self.send_gate_error(1235, "42000", &message).await;
        }
        let Some(any) = self.sharded_any_shard() else {
            return self
                .send_gate_error(1105, "HY000", "no shard to run SET on")
                .await;
        };
        self.route_override = Some(any);
        let slot = self.checkout(&mut BufferState::default()).await;
        self.route_override = None;
        let Ok(mut slot) = slot else {
            return Ok(());
        };
        if let Err(e) = slot_conn(&mut self.pinned, &mut slot)
            .backend
            .query(text)
            .await
        {
            super::drop_slot(&mut self.pinned, slot);
            return match e {
                BackendError::Server(e) => self.send_error(e.code, &e.sqlstate, &e.message).await,
                other => {
                    let message = crate::pool::backend_error_text(&other);
                    self.send_gate_error(2013, "HY000", &message).await
                }
            };
        }
        // Where the connection it ran on stays: a lent one is pushed last.
        let ran_on = match &slot {
            Slot::Pinned(i) => *i,
            Slot::Lent { .. } => self.pinned.len(),
        };
        self.settle(slot, true, None);
        // The connections already reserved take it too.
        let mut i = 0;
        while i < self.pinned.len() {
            if i == ran_on || !self.pinned[i].reserved {
                i += 1;
                continue;
            }
            match self.pinned[i].lease.conn().backend.query(text).await {
                Ok(_) => i += 1,
                // Its state is now unknown: the next statement for that
                // shard reserves a new connection.
                Err(_) => self.pinned.swap_remove(i).lease.discard(),
            }
        }
        self.shard_settings.push(text.into());
        self.send_ok_counts(0, 0).await
    }

    /// A connection a sharded session with settings takes from a pool: the
    /// settings run on it and it stays with the session.
    pub(super) async fn reserve_with_settings(
        &mut self,
        mut lease: crate::pool::Lease,
        keyspace: Arc<str>,
        shard: Arc<str>,
        tablet_type: TabletType,
    ) -> Result<Slot, ()> {
        for setting in self.shard_settings.clone() {
            if let Err(e) = lease.conn().backend.query(&setting).await {
                lease.discard();
                let message = format!(
                    "could not carry the session's '{setting}' to shard {keyspace}/{shard}: {}",
                    crate::pool::backend_error_text(&e)
                );
                let _ = self.send_gate_error(1105, "HY000", &message).await;
                return Err(());
            }
        }
        self.pinned.push(super::PinnedConn {
            keyspace,
            shard,
            tablet_type,
            lease,
            in_tx: false,
            reserved: true,
            wrote: false,
        });
        Ok(Slot::Pinned(self.pinned.len() - 1))
    }

    async fn sharded_begin(&mut self) -> Result<(), End> {
        if self.sharded_tx && self.finish_all("COMMIT").await.is_err() {
            return Ok(());
        }
        self.sharded_tx = true;
        self.send_ok_counts(0, 0).await
    }

    async fn sharded_finish(&mut self, verb: &str) -> Result<(), End> {
        match self.finish_all(verb).await {
            Ok(()) => self.send_ok_counts(0, 0).await,
            Err(()) => Ok(()),
        }
    }

    /// Commits or rolls back every shard's part of the session's
    /// transaction, in turn. Err when the client was told of a failure.
    async fn finish_all(&mut self, verb: &str) -> Result<(), ()> {
        match self.finish_quiet(verb).await {
            Ok(()) => Ok(()),
            Err(message) => {
                let _ = self.send_gate_error(1105, "HY000", &message).await;
                Err(())
            }
        }
    }

    /// Commits or rolls back every shard's part of the session's
    /// transaction without telling the client; after a commit, runs the
    /// lookup deletes that wait for it. Err: what failed.
    pub(super) async fn finish_quiet(&mut self, verb: &str) -> Result<(), String> {
        // With autocommit off the next statement opens the next transaction.
        self.sharded_tx = self.autocommit_off;
        let mut failure: Option<String> = None;
        // Shards where the verb went through: a failure elsewhere leaves
        // them as they are (there is no two-phase commit), so say which.
        let mut done: Vec<String> = Vec::new();
        let mut i = 0;
        while i < self.pinned.len() {
            if !self.pinned[i].in_tx {
                i += 1;
                continue;
            }
            let label = format!("{}/{}", self.pinned[i].keyspace, self.pinned[i].shard);
            let result = self.pinned[i].lease.conn().backend.query(verb).await;
            match result {
                Ok(r) => {
                    let status = r.ok.map(|o| o.status);
                    self.settle(Slot::Pinned(i), false, status);
                    done.push(label);
                    // settle may have removed entry i (swap_remove): look
                    // at the same index again.
                }
                Err(BackendError::Server(e)) => {
                    failure.get_or_insert(format!(
                        "{verb} failed on {label}: {} (its part was rolled back)",
                        e.message
                    ));
                    self.pinned.swap_remove(i).lease.discard();
                }
                Err(e) => {
                    let text = crate::pool::backend_error_text(&e);
                    failure.get_or_insert(format!(
                        "{verb} on {label} has an unknown outcome: the connection was lost before its answer ({text})"
                    ));
                    self.pinned.swap_remove(i).lease.discard();
                }
            }
        }
        if let Some(message) = &mut failure
            && !done.is_empty()
        {
            message.push_str(&format!("; {verb} went through on {}", done.join(", ")));
        }
        match failure {
            None if verb == "COMMIT" => {
                self.run_post_commit().await;
                Ok(())
            }
            None => {
                self.post_commit.clear();
                Ok(())
            }
            Some(message) => {
                self.post_commit.clear();
                Err(message)
            }
        }
    }

    async fn show_vschema_tables(&mut self, keyspace: &str) -> Result<(), End> {
        let Some(vschema) = self.keyspace_vschema(keyspace) else {
            return self
                .send_gate_error(1049, "42000", "Unknown database")
                .await;
        };
        let mut names: Vec<&String> = vschema.parsed.tables.keys().collect();
        names.sort();
        let rows: Vec<Vec<Option<Vec<u8>>>> = names
            .into_iter()
            .map(|n| vec![Some(n.as_bytes().to_vec())])
            .collect();
        self.write_rows(&[ColumnSpec::varchar("Tables")], &rows, false)
            .await
    }

    async fn show_vschema_vindexes(&mut self, keyspace: &str) -> Result<(), End> {
        let Some(vschema) = self.keyspace_vschema(keyspace) else {
            return self
                .send_gate_error(1049, "42000", "Unknown database")
                .await;
        };
        let rows: Vec<Vec<Option<Vec<u8>>>> = vschema
            .parsed
            .vindexes
            .iter()
            .map(|(name, v)| {
                let params = v
                    .params
                    .iter()
                    .map(|(k, val)| format!("{k}={val}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                vec![
                    Some(keyspace.as_bytes().to_vec()),
                    Some(name.as_bytes().to_vec()),
                    Some(v.vindex_type.as_bytes().to_vec()),
                    Some(params.into_bytes()),
                    Some(v.owner.as_bytes().to_vec()),
                ]
            })
            .collect();
        let columns = ["Keyspace", "Name", "Type", "Params", "Owner"].map(ColumnSpec::varchar);
        self.write_rows(&columns, &rows, false).await
    }

    /// The primary pool of the unsharded keyspace holding a sequence.
    fn sequence_pool(&self, keyspace: &str) -> Option<Arc<crate::pool::TabletPool>> {
        let routing = self.shared.routing.load();
        routing
            .keyspaces
            .get(keyspace)
            .and_then(|k| k.shards.values().next())
            .and_then(|s| s.primary.as_ref())
            .map(|p| p.pool.clone())
    }

    async fn select_next(
        &mut self,
        keyspace: &str,
        table: &str,
        count: u64,
        binary: bool,
    ) -> Result<(), End> {
        let pool = self.sequence_pool(keyspace);
        let Some(pool) = pool else {
            return self
                .send_gate_error(
                    1105,
                    "HY000",
                    &format!("no primary for sequence {keyspace}.{table}"),
                )
                .await;
        };
        match self
            .shared
            .sequences
            .next_range(keyspace, table, count, &pool)
            .await
        {
            Ok(range) => {
                let rows = vec![vec![Some(range.start.to_string().into_bytes())]];
                self.write_rows(&[ColumnSpec::bigint("nextval")], &rows, binary)
                    .await
            }
            Err(e) => {
                let (code, state, message) = e.to_mysql();
                self.send_error(code, &state, &message).await
            }
        }
    }
}

/// The character set of a collation id as a client negotiates it.
fn charset_of_collation(id: u8) -> Option<&'static str> {
    match id {
        45 | 46 | 224..=247 => Some("utf8mb4"),
        33 | 83 | 192..=215 => Some("utf8mb3"),
        8 | 47 | 5 | 15 | 31 | 48 | 49 | 94 => Some("latin1"),
        63 => Some("binary"),
        _ => None,
    }
}

/// One binary-protocol parameter value (MySQL's COM_STMT_EXECUTE encoding).
fn decode_binary_value(ty: u8, unsigned: bool, buf: &mut &[u8]) -> Result<OwnedValue, String> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if buf.len() < n {
            return Err("parameter value truncated".to_string());
        }
        let (head, rest) = buf.split_at(n);
        *buf = rest;
        Ok(head)
    }
    let int = |bytes: &[u8], unsigned: bool| -> OwnedValue {
        let mut raw = [0u8; 8];
        raw[..bytes.len()].copy_from_slice(bytes);
        let u = u64::from_le_bytes(raw);
        if unsigned {
            return OwnedValue::UInt(u);
        }
        let bits = bytes.len() * 8;
        let shift = 64 - bits;
        OwnedValue::Int(((u << shift) as i64) >> shift)
    };
    Ok(match ty {
        0x06 => OwnedValue::Null,
        0x01 => int(take(buf, 1)?, unsigned),
        0x02 | 0x0d => int(take(buf, 2)?, unsigned),
        0x03 | 0x09 => int(take(buf, 4)?, unsigned),
        0x08 => int(take(buf, 8)?, unsigned),
        0x04 => {
            let b = take(buf, 4)?;
            let f = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            OwnedValue::Decimal(format!("{f:e}").into_bytes())
        }
        0x05 => {
            let b = take(buf, 8)?;
            let f = f64::from_le_bytes(b.try_into().expect("8 bytes"));
            OwnedValue::Decimal(format!("{f:e}").into_bytes())
        }
        0x0a | 0x07 | 0x0c => {
            let len = take(buf, 1)?[0] as usize;
            let b = take(buf, len)?;
            let get = |i: usize| b.get(i).copied().unwrap_or(0);
            let year = u16::from_le_bytes([get(0), get(1)]);
            let mut text = format!("{year:04}-{:02}-{:02}", get(2), get(3));
            if len >= 7 {
                text.push_str(&format!(" {:02}:{:02}:{:02}", get(4), get(5), get(6)));
            }
            if len >= 11 {
                let us = u32::from_le_bytes([get(7), get(8), get(9), get(10)]);
                text.push_str(&format!(".{us:06}"));
            }
            OwnedValue::Bytes(text.into_bytes())
        }
        0x0b => {
            let len = take(buf, 1)?[0] as usize;
            let b = take(buf, len)?;
            let get = |i: usize| b.get(i).copied().unwrap_or(0);
            let negative = get(0) == 1;
            let days = u32::from_le_bytes([get(1), get(2), get(3), get(4)]);
            let hours = days * 24 + get(5) as u32;
            let mut text = format!(
                "{}{hours:02}:{:02}:{:02}",
                if negative { "-" } else { "" },
                get(6),
                get(7)
            );
            if len >= 12 {
                let us = u32::from_le_bytes([get(8), get(9), get(10), get(11)]);
                text.push_str(&format!(".{us:06}"));
            }
            OwnedValue::Bytes(text.into_bytes())
        }
        _ => {
            let len = tessera_wire::protocol::read_lenenc_int(buf)
                .ok_or("parameter length truncated")? as usize;
            let b = take(buf, len)?;
            if ty == 0xf6 || ty == 0x00 {
                OwnedValue::Decimal(b.to_vec())
            } else {
                OwnedValue::Bytes(b.to_vec())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_params_decode() {
        let mut b: &[u8] = &[0xfe];
        assert_eq!(
            decode_binary_value(0x01, false, &mut b).unwrap(),
            OwnedValue::Int(-2)
        );
        let mut b: &[u8] = &[0xfe];
        assert_eq!(
            decode_binary_value(0x01, true, &mut b).unwrap(),
            OwnedValue::UInt(254)
        );
        let mut b: &[u8] = &[3, b'a', b'\'', b'c'];
        assert_eq!(
            decode_binary_value(0xfd, false, &mut b).unwrap(),
            OwnedValue::Bytes(b"a'c".to_vec())
        );
        let mut b: &[u8] = &[4, 0xe8, 0x07, 1, 2];
        assert_eq!(
            decode_binary_value(0x0a, false, &mut b).unwrap(),
            OwnedValue::Bytes(b"2024-01-02".to_vec())
        );
        assert!(b.is_empty());
    }
}
