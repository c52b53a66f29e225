//! Tracks the table schemas (columns, types, collations) of every keyspace,
//! read from the tablets, so the planner can expand `SELECT *` and plan joins.
//!
//! One query per refresh reads a keyspace's whole schema from
//! `information_schema` on the primary of its first shard; shards of a
//! keyspace are expected to share one schema (DDL through the gate runs on
//! every shard). Readers load an immutable snapshot without locking.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tessera_topo::TabletType;
use tessera_wire::BackendConn;
use tessera_wire::backend::FLAVOUR_FLAGS;
use tessera_wire::protocol::UTF8MB4_GENERAL_CI;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::pool::{Flavour, Lease, TabletPool, backend_error_text};
use crate::topology::RoutingTable;

/// How long `refresh_now` waits for a fresh read before giving up.
const REFRESH_NOW_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one schema read may take in the background loop.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);
/// How soon a keyspace whose schema was never read (new, or its reads
/// failing) is tried again, however long the full-pass interval is.
const UNLOADED_RETRY: Duration = Duration::from_secs(2);

/// The backend connection flavour of the gate's own statements: every
/// format flag the gate may ask for, in utf8mb4_general_ci.
pub fn internal_flavour() -> Flavour {
    Flavour::of_client(FLAVOUR_FLAGS, UTF8MB4_GENERAL_CI)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    pub name: String,
    /// Lowercase type name without length or attributes, e.g. "varchar".
    pub data_type: String,
    /// The full type, e.g. "varchar(64)" or "int(10) unsigned".
    pub column_type: String,
    /// None for columns that are not text.
    pub collation: Option<String>,
    pub nullable: bool,
    pub primary_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub name: String,
    /// In the table's column order.
    pub columns: Vec<ColumnSchema>,
}

impl TableSchema {
    /// A column by name; column names are case-insensitive in MariaDB.
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The primary key's columns, in table column order.
    pub fn primary_key(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.primary_key)
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// The tables of one keyspace as one refresh read them.
#[derive(Debug, Clone, Default)]
pub struct KeyspaceSchema {
    /// By the name the server stores.
    pub tables: BTreeMap<String, Arc<TableSchema>>,
    /// The server's `lower_case_table_names` is not 0: table names compare
    /// case-insensitively (0, the Linux default, compares them exactly).
    pub fold_case: bool,
    by_lowercase: HashMap<String, String>,
}

impl KeyspaceSchema {
    fn new(tables: BTreeMap<String, Arc<TableSchema>>, fold_case: bool) -> Self {
        let by_lowercase = if fold_case {
            tables
                .keys()
                .map(|name| (name.to_lowercase(), name.clone()))
                .collect()
        } else {
            HashMap::new()
        };
        Self {
            tables,
            fold_case,
            by_lowercase,
        }
    }

    /// A table by name, compared as the server compares table names.
    pub fn table(&self, name: &str) -> Option<&Arc<TableSchema>> {
        if let Some(table) = self.tables.get(name) {
            return Some(table);
        }
        if self.fold_case {
            let stored = self.by_lowercase.get(&name.to_lowercase())?;
            return self.tables.get(stored);
        }
        None
    }
}

/// `s` as a single-quoted SQL string literal. Backslashes and NULs are
/// refused rather than escaped: their meaning depends on the sql_mode
/// (NO_BACKSLASH_ESCAPES) of a connection someone else may have tuned.
fn string_literal(s: &str) -> Result<String, String> {
    if s.contains(['\\', '\0']) {
        return Err(format!(
            "name {s:?} contains a backslash or NUL, which the gate does not quote"
        ));
    }
    Ok(format!("'{}'", s.replace('\'', "''")))
}

/// The one statement a refresh runs: every column of every table (and view)
/// of `db`, whether it is part of the primary key (COLUMN_KEY also says PRI
/// for a unique NOT NULL key of a table without primary key, so the index
/// itself is asked), and how the server compares table names.
fn schema_query(db: &str) -> Result<String, String> {
    let db = string_literal(db)?;
    // The primary key columns come from a derived table filtered on the
    // schema: joined directly, information_schema.STATISTICS would be
    // filled for every database on the server (15x slower seen here).
    // information_schema compares case-insensitively; table names must not
    // (`T` and `t` are two tables), column names do.
    Ok(format!(
        "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.COLLATION_NAME, \
         c.IS_NULLABLE, p.COLUMN_NAME IS NOT NULL, @@lower_case_table_names \
         FROM information_schema.COLUMNS c \
         LEFT JOIN (SELECT DISTINCT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = {db} AND INDEX_NAME = 'PRIMARY') p \
         ON BINARY p.TABLE_NAME = c.TABLE_NAME AND p.COLUMN_NAME = c.COLUMN_NAME \
         WHERE c.TABLE_SCHEMA = {db} \
         ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION"
    ))
}

/// Reads the schema of database `db` over `conn` in one query.
pub async fn load_keyspace_schema(
    conn: &mut BackendConn,
    db: &str,
) -> Result<KeyspaceSchema, String> {
    let sql = schema_query(db)?;
    let result = conn
        .query(&sql)
        .await
        .map_err(|e| format!("reading the schema of {db}: {}", backend_error_text(&e)))?;
    let mut tables: BTreeMap<String, TableSchema> = BTreeMap::new();
    let mut fold_case = false;
    for (i, row) in result.rows.iter().enumerate() {
        let text = |column: usize| -> Option<String> {
            row.get(column)?
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let required = |column: usize, what: &str| {
            text(column).ok_or_else(|| format!("reading the schema of {db}: row {i} has no {what}"))
        };
        let table = required(0, "table name")?;
        let column = ColumnSchema {
            name: required(1, "column name")?,
            data_type: required(2, "data type")?.to_ascii_lowercase(),
            column_type: required(3, "column type")?,
            collation: text(4),
            nullable: required(5, "IS_NULLABLE")? == "YES",
            primary_key: required(6, "primary key flag")? == "1",
        };
        fold_case = text(7).is_some_and(|v| v != "0");
        tables
            .entry(table.clone())
            .or_insert_with(|| TableSchema {
                name: table,
                columns: Vec::new(),
            })
            .columns
            .push(column);
    }
    let tables = tables
        .into_iter()
        .map(|(name, table)| (name, Arc::new(table)))
        .collect();
    Ok(KeyspaceSchema::new(tables, fold_case))
}

/// Reads the schema of `pool`'s database over one of its connections.
pub async fn load_from_pool(pool: &Arc<TabletPool>) -> Result<KeyspaceSchema, String> {
    let mut lease = pool
        .get(internal_flavour())
        .await
        .map_err(|e| e.to_string())?;
    let result = load_keyspace_schema(&mut lease.conn().backend, pool.db_name()).await;
    finish_lease(lease, result.is_ok());
    result
}

/// A connection goes back to the pool only when its state is known good.
fn finish_lease(lease: Lease, ok: bool) {
    if ok {
        lease.release();
    } else {
        lease.discard();
    }
}

/// The tablet a keyspace's schema is read from: the primary of its first
/// shard in key-range order, or while that shard has no routable primary
/// (a reparent), one of its replicas.
fn schema_source(routing: &RoutingTable, keyspace: &str) -> Result<Arc<TabletPool>, String> {
    let ks = routing
        .keyspaces
        .get(keyspace)
        .ok_or_else(|| format!("unknown keyspace '{keyspace}'"))?;
    let first = ks
        .shards
        .values()
        .min_by(|a, b| {
            a.shard
                .key_range
                .start
                .cmp(&b.shard.key_range.start)
                .then_with(|| a.name.cmp(&b.name))
        })
        .ok_or_else(|| format!("keyspace '{keyspace}' has no shards"))?;
    match first.pick(TabletType::Primary) {
        Ok(route) => Ok(route.pool.clone()),
        Err(primary_problem) => first
            .pick(TabletType::Replica)
            .map(|route| route.pool.clone())
            .map_err(|_| {
                let (_, _, message) = primary_problem.to_mysql();
                format!("cannot read the schema of keyspace '{keyspace}': {message}")
            }),
    }
}

/// Serialises the reads of one keyspace and remembers the last one, so a
/// caller that only needs "a read that started after I asked" can share one.
#[derive(Default)]
struct RefreshSlot {
    /// Numbers reads as they start (under `last`'s lock).
    started: AtomicU64,
    /// The number and outcome of the last finished read.
    last: tokio::sync::Mutex<Option<(u64, Result<(), String>)>>,
}

/// The schemas of every keyspace, kept fresh in the background.
#[derive(Default)]
pub struct SchemaTracker {
    keyspaces: ArcSwap<HashMap<String, Arc<KeyspaceSchema>>>,
    slots: Mutex<HashMap<String, Arc<RefreshSlot>>>,
    poked: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl SchemaTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The whole schema of `keyspace` as last read.
    pub fn keyspace(&self, keyspace: &str) -> Option<Arc<KeyspaceSchema>> {
        self.keyspaces.load().get(keyspace).cloned()
    }

    /// Columns of `table` in `keyspace`; table names compare as the server
    /// that was read compares them (`lower_case_table_names`).
    pub fn table(&self, keyspace: &str, table: &str) -> Option<Arc<TableSchema>> {
        self.keyspaces.load().get(keyspace)?.table(table).cloned()
    }

    /// The table names of `keyspace`, sorted.
    pub fn tables(&self, keyspace: &str) -> Vec<String> {
        self.keyspaces
            .load()
            .get(keyspace)
            .map(|ks| ks.tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Installs a schema read elsewhere (tests, or a caller holding a
    /// connection already).
    pub fn install(&self, keyspace: &str, schema: KeyspaceSchema) {
        let schema = Arc::new(schema);
        self.keyspaces.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(keyspace.to_string(), schema.clone());
            next
        });
    }

    /// Drops what is known of keyspaces that are not in `keep`.
    fn retain(&self, keep: &BTreeSet<&str>) {
        if self
            .keyspaces
            .load()
            .keys()
            .all(|k| keep.contains(k.as_str()))
        {
            return;
        }
        self.keyspaces.rcu(|current| {
            current
                .iter()
                .filter(|(k, _)| keep.contains(k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
        });
        self.lock_slots().retain(|k, _| keep.contains(k.as_str()));
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<RefreshSlot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(&self, keyspace: &str) -> Arc<RefreshSlot> {
        self.lock_slots()
            .entry(keyspace.to_string())
            .or_default()
            .clone()
    }

    /// Re-reads one keyspace from the primary of its first shard (in
    /// key-range order) via information_schema. On failure the last schema
    /// read is kept.
    pub async fn refresh_keyspace(
        &self,
        routing: &RoutingTable,
        keyspace: &str,
    ) -> Result<(), String> {
        let slot = self.slot(keyspace);
        let mut last = slot.last.lock().await;
        self.read_locked(&slot, &mut last, routing, keyspace).await
    }

    /// One read while holding the keyspace's slot.
    async fn read_locked(
        &self,
        slot: &RefreshSlot,
        last: &mut Option<(u64, Result<(), String>)>,
        routing: &RoutingTable,
        keyspace: &str,
    ) -> Result<(), String> {
        let number = slot.started.fetch_add(1, Ordering::SeqCst) + 1;
        let outcome = match schema_source(routing, keyspace) {
            Ok(pool) => match tokio::time::timeout(REFRESH_TIMEOUT, load_from_pool(&pool)).await {
                Ok(Ok(schema)) => {
                    self.install(keyspace, schema);
                    Ok(())
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!(
                    "reading the schema of keyspace '{keyspace}' from tablet {} took longer than {REFRESH_TIMEOUT:?}",
                    pool.label()
                )),
            },
            Err(e) => Err(e),
        };
        *last = Some((number, outcome.clone()));
        outcome
    }

    /// Waits until a read of `keyspace` that started after this call has
    /// finished (its own, or one another caller started meanwhile), so a
    /// session sees the effect of its own DDL. Bounded by 30 s.
    pub async fn refresh_now(&self, routing: &RoutingTable, keyspace: &str) -> Result<(), String> {
        let slot = self.slot(keyspace);
        // Reads numbered above this one had not started yet.
        let wanted = slot.started.load(Ordering::SeqCst) + 1;
        let wait = async {
            let mut last = slot.last.lock().await;
            if let Some((number, outcome)) = last.as_ref()
                && *number >= wanted
            {
                return outcome.clone();
            }
            self.read_locked(&slot, &mut last, routing, keyspace).await
        };
        tokio::time::timeout(REFRESH_NOW_TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the schema of keyspace '{keyspace}' was not re-read within {REFRESH_NOW_TIMEOUT:?}"
                ))
            })
    }

    /// Asks the background loop to re-read `keyspace` now (after DDL
    /// through the gate) without waiting for it.
    pub fn poke(&self, keyspace: &str) {
        self.poked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(keyspace.to_string());
        // A stored permit: a poke between two waits is not lost.
        self.wake.notify_one();
    }

    fn take_poked(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.poked.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Background loop: re-reads every keyspace every `interval`, a poked
    /// keyspace at once, and a keyspace never read yet (new in the routing
    /// table, or failing) every couple of seconds; forgets keyspaces that
    /// left the routing table. Stops when `stop` becomes true or its sender
    /// is dropped.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        routing: Arc<ArcSwap<RoutingTable>>,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let tracker = self.clone();
        let interval = interval.max(Duration::from_millis(10));
        let tick = interval.min(UNLOADED_RETRY);
        tokio::spawn(async move {
            let mut next_full = Instant::now();
            let mut tried_unloaded: HashMap<String, Instant> = HashMap::new();
            loop {
                if *stop.borrow_and_update() {
                    break;
                }
                let table = routing.load_full();
                let present: BTreeSet<&str> = table.keyspaces.keys().map(String::as_str).collect();
                let now = Instant::now();
                let mut due: BTreeSet<String> = tracker
                    .take_poked()
                    .into_iter()
                    .filter(|k| present.contains(k.as_str()))
                    .collect();
                if now >= next_full {
                    due.extend(present.iter().map(|k| k.to_string()));
                    next_full = now + interval;
                    tracker.retain(&present);
                    tried_unloaded.retain(|k, _| present.contains(k.as_str()));
                } else {
                    let loaded = tracker.keyspaces.load();
                    for ks in &present {
                        let recently = tried_unloaded
                            .get(*ks)
                            .is_some_and(|at| now.duration_since(*at) < UNLOADED_RETRY);
                        if !loaded.contains_key(*ks) && !recently {
                            due.insert(ks.to_string());
                        }
                    }
                }
                for ks in &due {
                    if *stop.borrow() {
                        return;
                    }
                    tried_unloaded.insert(ks.clone(), Instant::now());
                    if let Err(e) = tracker.refresh_keyspace(&table, ks).await {
                        tracing::warn!(keyspace = %ks, "schema refresh failed: {e}");
                    }
                }
                drop(table);
                let wake_at = next_full.min(Instant::now() + tick);
                tokio::select! {
                    _ = tokio::time::sleep_until(wake_at) => {}
                    _ = tracker.wake.notified() => {}
                    changed = stop.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            name: name.to_string(),
            columns: vec![ColumnSchema {
                name: "Id".into(),
                data_type: "int".into(),
                column_type: "int(11)".into(),
                collation: None,
                nullable: false,
                primary_key: true,
            }],
        })
    }

    #[test]
    fn table_names_compare_as_the_server_does() {
        let tables: BTreeMap<_, _> = [("Customer".to_string(), table("Customer"))].into();
        let exact = KeyspaceSchema::new(tables.clone(), false);
        assert!(exact.table("Customer").is_some());
        assert!(exact.table("customer").is_none());
        let folded = KeyspaceSchema::new(tables, true);
        assert_eq!(folded.table("CUSTOMER").unwrap().name, "Customer");
        assert!(folded.table("other").is_none());
    }

    #[test]
    fn columns_compare_case_insensitively() {
        let t = table("t");
        assert_eq!(t.column("ID").unwrap().name, "Id");
        assert_eq!(t.primary_key(), vec!["Id"]);
        assert!(t.column("name").is_none());
    }

    #[test]
    fn names_are_quoted_or_refused() {
        assert_eq!(string_literal("it's").unwrap(), "'it''s'");
        assert!(string_literal("a\\b").is_err());
        assert!(schema_query("x\0").is_err());
        assert!(schema_query("commerce").unwrap().contains("= 'commerce'"));
    }

    #[test]
    fn tracker_answers_from_installed_schemas() {
        let tracker = SchemaTracker::new();
        assert!(tracker.table("ks", "Customer").is_none());
        assert!(tracker.tables("ks").is_empty());
        let tables: BTreeMap<_, _> =
            [("b".to_string(), table("b")), ("a".to_string(), table("a"))].into();
        tracker.install("ks", KeyspaceSchema::new(tables, false));
        assert_eq!(tracker.tables("ks"), vec!["a", "b"]);
        assert!(tracker.table("ks", "a").is_some());
        tracker.retain(&BTreeSet::from(["other"]));
        assert!(tracker.tables("ks").is_empty());
    }
}
