//! The gate's view of the topology: a background task re-reads keyspaces,
//! shards and tablets and polls every tablet agent's health, then swaps in a
//! new immutable routing table. The query path only loads the current table
//! (lock-free); the store is never on it, and when the store is unreachable
//! the last records keep being served.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Serialize;
use tessera_tablet::api::AgentClient;
use tessera_topo::{KeyRange, Keyspace, Shard, Tablet, TabletAlias, TabletType, Topo, TopoResult};

use crate::buffer::{Buffers, FAST_REFRESH};
use crate::metrics::Metrics;
use crate::plan::vschema::KeyspaceVSchema;
use crate::pool::{PoolSettings, TabletPool};
use crate::target::Target;

/// How long one agent health poll may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one topology read may take before the last records are kept.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// The agent says mysqld answers and the tablet may be routed to.
    Serving,
    /// The agent answered and says not to route to the tablet.
    NotServing,
    /// The agent did not answer.
    Unknown,
}

pub struct TabletRoute {
    pub tablet: Tablet,
    pub health: Health,
    /// Why the tablet is not serving, or why its agent did not answer.
    pub health_error: Option<String>,
    pub pool: Arc<TabletPool>,
}

/// The replica (or rdonly) tablets of a shard, balanced round-robin.
#[derive(Default)]
pub struct Candidates {
    serving: Vec<Arc<TabletRoute>>,
    /// Tablets whose agent did not answer: used only when none is serving.
    unknown: Vec<Arc<TabletRoute>>,
    next: AtomicUsize,
}

impl Candidates {
    fn pick(&self) -> Option<&Arc<TabletRoute>> {
        let list = if self.serving.is_empty() {
            &self.unknown
        } else {
            &self.serving
        };
        match list.len() {
            0 => None,
            1 => list.first(),
            n => list.get(self.next.fetch_add(1, Ordering::Relaxed) % n),
        }
    }
}

pub struct ShardRoute {
    pub keyspace_name: Arc<str>,
    pub name: Arc<str>,
    pub shard: Shard,
    /// The shard record's primary, when it exists and is not NotServing.
    pub primary: Option<Arc<TabletRoute>>,
    /// Why there is no routable primary.
    pub primary_problem: Option<String>,
    replicas: Candidates,
    rdonly: Candidates,
    /// Every tablet of the shard that this gate knows, in alias order.
    pub tablets: Vec<Arc<TabletRoute>>,
}

pub struct KeyspaceRoute {
    pub keyspace: Keyspace,
    pub shards: BTreeMap<String, ShardRoute>,
    /// What the planner knows of the keyspace: VSchema and key ranges.
    pub vschema: Arc<KeyspaceVSchema>,
}

/// One immutable snapshot of where everything is.
#[derive(Default)]
pub struct RoutingTable {
    pub keyspaces: BTreeMap<String, KeyspaceRoute>,
    /// Unix milliseconds of the topology read this table is built from.
    pub topology_read_ms: u64,
    /// Unix milliseconds when health was last polled.
    pub built_ms: u64,
    /// The last topology read error, while the store is unreachable.
    pub store_error: Option<String>,
    /// Changes whenever any keyspace's VSchema or shard list changed:
    /// cached plans of an older epoch are stale.
    pub vschema_epoch: u64,
    /// Vitess routing rules (tables moved between keyspaces).
    pub routing_rules: Arc<crate::plan::vschema::RoutingRuleMap>,
}

/// Why a statement could not be routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NoDatabase,
    UnknownDatabase(String),
    ShardedWithoutShard(String),
    NoTablet(String),
}

impl RouteError {
    /// MySQL error code, SQLSTATE and message for the client.
    pub fn to_mysql(&self) -> (u16, &'static str, String) {
        match self {
            RouteError::NoDatabase => (1046, "3D000", "No database selected".to_string()),
            RouteError::UnknownDatabase(db) => (1049, "42000", format!("Unknown database '{db}'")),
            RouteError::ShardedWithoutShard(ks) => (
                1235,
                "42000",
                format!(
                    "This version of Tessera doesn't yet support queries on the sharded keyspace '{ks}' without a shard target (USE {ks}:<shard>)"
                ),
            ),
            RouteError::NoTablet(why) => (1105, "HY000", why.clone()),
        }
    }
}

impl ShardRoute {
    /// A tablet of `tablet_type` to send a statement to.
    pub fn pick(&self, tablet_type: TabletType) -> Result<&Arc<TabletRoute>, RouteError> {
        match tablet_type {
            TabletType::Primary => self.primary.as_ref().ok_or_else(|| {
                RouteError::NoTablet(format!(
                    "no routable primary tablet for {}/{}: {}",
                    self.keyspace_name,
                    self.name,
                    self.primary_problem
                        .as_deref()
                        .unwrap_or("the shard has no primary")
                ))
            }),
            TabletType::Replica | TabletType::Rdonly => {
                let candidates = if tablet_type == TabletType::Replica {
                    &self.replicas
                } else {
                    &self.rdonly
                };
                candidates.pick().ok_or_else(|| {
                    RouteError::NoTablet(format!(
                        "no serving {tablet_type} tablet for {}/{}",
                        self.keyspace_name, self.name
                    ))
                })
            }
            other => Err(RouteError::NoTablet(format!(
                "tablet type {other} cannot be targeted"
            ))),
        }
    }
}

impl RoutingTable {
    /// The keyspace statements go to when the session has no target: the only
    /// keyspace, else the first unsharded one in name order.
    pub fn default_keyspace(&self) -> Option<&KeyspaceRoute> {
        if self.keyspaces.len() == 1 {
            return self.keyspaces.values().next();
        }
        self.keyspaces.values().find(|k| !k.keyspace.sharded)
    }

    /// Checks that a target names a keyspace (and shard) that exists.
    pub fn validate(&self, target: &Target) -> Result<(), RouteError> {
        let ks = self
            .keyspaces
            .get(&target.keyspace)
            .ok_or_else(|| RouteError::UnknownDatabase(target.to_string()))?;
        if let Some(shard) = &target.shard
            && !ks.shards.contains_key(shard)
        {
            return Err(RouteError::UnknownDatabase(target.to_string()));
        }
        Ok(())
    }

    /// The shard and tablet type a session target (or no target) means.
    pub fn shard_for(
        &self,
        target: Option<&Target>,
    ) -> Result<(&ShardRoute, TabletType), RouteError> {
        let (ks, shard_name, tablet_type) = match target {
            Some(t) => (
                self.keyspaces
                    .get(&t.keyspace)
                    .ok_or_else(|| RouteError::UnknownDatabase(t.to_string()))?,
                t.shard.as_deref(),
                t.tablet_type,
            ),
            None => (
                self.default_keyspace().ok_or(RouteError::NoDatabase)?,
                None,
                TabletType::Primary,
            ),
        };
        let shard = match shard_name {
            Some(name) => ks.shards.get(name).ok_or_else(|| {
                RouteError::UnknownDatabase(format!("{}:{name}", ks.keyspace.name))
            })?,
            None => {
                let mut shards = ks.shards.values();
                match (shards.next(), shards.next()) {
                    (Some(only), None) => only,
                    (None, _) => {
                        return Err(RouteError::NoTablet(format!(
                            "keyspace '{}' has no shards",
                            ks.keyspace.name
                        )));
                    }
                    (Some(_), Some(_)) => {
                        return Err(RouteError::ShardedWithoutShard(ks.keyspace.name.clone()));
                    }
                }
            }
        };
        Ok((shard, tablet_type))
    }

    /// The tablet a statement of a session with `target` goes to.
    pub fn resolve(&self, target: Option<&Target>) -> Result<&Arc<TabletRoute>, RouteError> {
        let (shard, tablet_type) = self.shard_for(target)?;
        shard.pick(tablet_type)
    }

    /// Every shard of every keyspace has a routable primary (and there is at
    /// least one keyspace).
    pub fn all_primaries_routable(&self) -> bool {
        !self.keyspaces.is_empty()
            && self
                .keyspaces
                .values()
                .all(|k| !k.shards.is_empty() && k.shards.values().all(|s| s.primary.is_some()))
    }

    /// The JSON of /debug/status.
    pub fn status_json(&self) -> serde_json::Value {
        let keyspaces: Vec<_> = self
            .keyspaces
            .values()
            .map(|k| {
                let shards: Vec<_> = k
                    .shards
                    .values()
                    .map(|s| {
                        let tablets: Vec<_> = s
                            .tablets
                            .iter()
                            .map(|t| {
                                let (open, idle) = t.pool.counts();
                                serde_json::json!({
                                    "alias": t.tablet.alias.to_string(),
                                    "type": t.tablet.tablet_type,
                                    "health": t.health,
                                    "health_error": t.health_error,
                                    "mysql_addr": t.tablet.mysql_addr(),
                                    "agent_addr": t.tablet.agent_addr,
                                    "db_name": t.tablet.db_name,
                                    "pool_open": open,
                                    "pool_idle": idle,
                                })
                            })
                            .collect();
                        serde_json::json!({
                            "name": s.shard.name,
                            "primary_alias": s.shard.primary_alias.as_ref().map(|a| a.to_string()),
                            "primary_routable": s.primary.is_some(),
                            "primary_problem": s.primary_problem,
                            "tablets": tablets,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": k.keyspace.name,
                    "sharded": k.keyspace.sharded,
                    "shards": shards,
                })
            })
            .collect();
        serde_json::json!({
            "keyspaces": keyspaces,
            "topology_read_ms": self.topology_read_ms,
            "built_ms": self.built_ms,
            "store_error": self.store_error,
            "ready": self.all_primaries_routable(),
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What one agent's health poll found.
type HealthAnswer = (TabletAlias, (Health, Option<String>));

/// The records a table is built from.
struct Records {
    keyspaces: Vec<Keyspace>,
    /// Each keyspace's VSchema JSON, if one was applied.
    vschemas: HashMap<String, Option<String>>,
    routing_rules: Option<String>,
    shards: Vec<Shard>,
    tablets: Vec<Tablet>,
    read_ms: u64,
}

/// Keeps the routing table current; owned by the refresh task.
pub struct TopologyWatcher {
    topo: Topo,
    cell: String,
    table: Arc<ArcSwap<RoutingTable>>,
    metrics: Arc<Metrics>,
    pool_settings: PoolSettings,
    pools: HashMap<TabletAlias, Arc<TabletPool>>,
    agents: HashMap<TabletAlias, (String, AgentClient)>,
    records: Option<Records>,
    vschemas: HashMap<String, Arc<KeyspaceVSchema>>,
    vschema_epoch: u64,
    routing_rules: Arc<crate::plan::vschema::RoutingRuleMap>,
}

impl TopologyWatcher {
    pub fn new(
        topo: Topo,
        cell: String,
        table: Arc<ArcSwap<RoutingTable>>,
        metrics: Arc<Metrics>,
        pool_settings: PoolSettings,
    ) -> Self {
        Self {
            topo,
            cell,
            table,
            metrics,
            pool_settings,
            pools: HashMap::new(),
            agents: HashMap::new(),
            records: None,
            vschemas: HashMap::new(),
            vschema_epoch: 0,
            routing_rules: Default::default(),
        }
    }

    async fn read_records(&self) -> TopoResult<Records> {
        let read_ms = now_ms();
        let keyspaces = self.topo.list_keyspaces().await?;
        let mut shards = Vec::new();
        let mut vschemas = HashMap::new();
        for ks in &keyspaces {
            shards.extend(self.topo.list_shards(&ks.name).await?);
            vschemas.insert(ks.name.clone(), self.topo.get_vschema(&ks.name).await?);
        }
        let routing_rules = self.topo.get_routing_rules().await?;
        let mut tablets = self.topo.list_tablets(Some(&self.cell)).await?;
        // A primary in another cell is still where this cell's writes go.
        for shard in &shards {
            if let Some(alias) = &shard.primary_alias
                && !tablets.iter().any(|t| &t.alias == alias)
                && let Some((t, _)) = self.topo.get_tablet(alias).await?
            {
                tablets.push(t);
            }
        }
        Ok(Records {
            keyspaces,
            vschemas,
            routing_rules,
            shards,
            tablets,
            read_ms,
        })
    }

    /// One round: re-read the topology, poll health, swap in a new table.
    pub async fn refresh(&mut self) {
        self.refresh_notifying(&|| {}, None).await
    }

    /// `refresh`, calling `swapped` after each table swapped in: a round
    /// that finds a new primary in the records swaps early too. A request
    /// on `hurry` while the round polls health (which can take a second
    /// when a host is gone) re-reads the records meanwhile, so a reparent
    /// recorded then is in force at once instead of after the slow poll.
    pub(crate) async fn refresh_notifying(
        &mut self,
        swapped: &(dyn Fn() + Sync),
        hurry: Option<&Buffers>,
    ) {
        let read = tokio::time::timeout(STORE_TIMEOUT, self.read_records()).await;
        let read = read.unwrap_or_else(|_| {
            Err(tessera_topo::TopoError::Backend(format!(
                "topology read timed out after {STORE_TIMEOUT:?}"
            )))
        });
        let store_error = match read {
            Ok(r) => {
                self.records = Some(r);
                None
            }
            Err(e) => {
                self.metrics.topology_refresh_errors.inc();
                tracing::warn!("topology read failed, serving the last known topology: {e}");
                Some(e.to_string())
            }
        };
        let Some(records) = self.records.take() else {
            let table = RoutingTable {
                built_ms: now_ms(),
                store_error,
                ..Default::default()
            };
            self.swap_in(table);
            swapped();
            return;
        };
        // A new primary in the records is put in force at once, on the
        // tablets' last known health: the poll below waits for every agent,
        // and the old primary's may be on a host that no longer answers.
        let mut records = self.swap_early_if_primaries_moved(records, &store_error, swapped);
        let mut polls = self.start_health_polls(&records.tablets);
        let mut health = HashMap::new();
        loop {
            let requested = async {
                match hurry {
                    Some(b) => b.refresh_requested().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                done = polls.join_next() => match done {
                    Some(Ok((alias, state))) => {
                        health.insert(alias, state);
                    }
                    Some(Err(_)) => {}
                    None => break,
                },
                _ = requested => {
                    let read = tokio::time::timeout(STORE_TIMEOUT, self.read_records()).await;
                    if let Ok(Ok(newer)) = read {
                        records = self.swap_early_if_primaries_moved(newer, &store_error, swapped);
                    }
                }
            }
        }
        self.agents
            .retain(|alias, _| records.tablets.iter().any(|t| &t.alias == alias));
        self.records = Some(records);
        let table = self.build(health, store_error);
        self.swap_in(table);
        swapped();
    }

    /// Swaps in a table built from `records` on the last known health when
    /// they name a primary the table in force does not; returns them.
    fn swap_early_if_primaries_moved(
        &mut self,
        records: Records,
        store_error: &Option<String>,
        swapped: &(dyn Fn() + Sync),
    ) -> Records {
        if !self.primaries_moved(&records) {
            return records;
        }
        tracing::debug!("a shard's primary changed: routing to it before the health poll");
        let health = self.last_health();
        self.records = Some(records);
        let table = self.build(health, store_error.clone());
        self.swap_in(table);
        swapped();
        self.records.take().expect("build puts the records back")
    }

    /// Puts a table in force, then tells every pool whether its tablet is
    /// now a primary (in that order: see `TabletPool::set_routed_primary`).
    fn swap_in(&mut self, table: RoutingTable) {
        let primaries: std::collections::HashSet<&TabletAlias> = table
            .keyspaces
            .values()
            .flat_map(|k| k.shards.values())
            .filter_map(|s| s.shard.primary_alias.as_ref())
            .collect();
        let flags: Vec<(Arc<TabletPool>, bool)> = self
            .pools
            .iter()
            .map(|(alias, pool)| (pool.clone(), primaries.contains(alias)))
            .collect();
        self.table.store(Arc::new(table));
        for (pool, primary) in flags {
            pool.set_routed_primary(primary);
        }
    }

    /// Whether some shard's primary (or its term) in `records` differs from
    /// the table in force.
    fn primaries_moved(&self, records: &Records) -> bool {
        let table = self.table.load();
        records.shards.iter().any(|s| {
            table
                .keyspaces
                .get(&s.keyspace)
                .and_then(|k| k.shards.get(&s.name))
                .is_some_and(|r| {
                    r.shard.primary_alias != s.primary_alias
                        || r.shard.primary_term != s.primary_term
                })
        })
    }

    /// Every tablet's health as the table in force has it.
    fn last_health(&self) -> HashMap<TabletAlias, (Health, Option<String>)> {
        let table = self.table.load();
        table
            .keyspaces
            .values()
            .flat_map(|k| k.shards.values())
            .flat_map(|s| s.tablets.iter())
            .map(|r| (r.tablet.alias.clone(), (r.health, r.health_error.clone())))
            .collect()
    }

    /// One health poll per tablet, each bounded; they run on their own.
    fn start_health_polls(&mut self, tablets: &[Tablet]) -> tokio::task::JoinSet<HealthAnswer> {
        let mut polls = tokio::task::JoinSet::new();
        for t in tablets {
            let client = match self.agents.get(&t.alias) {
                Some((addr, c)) if *addr == t.agent_addr => c.clone(),
                _ => {
                    let c = AgentClient::with_timeout(&t.agent_addr, HEALTH_TIMEOUT);
                    self.agents
                        .insert(t.alias.clone(), (t.agent_addr.clone(), c.clone()));
                    c
                }
            };
            let alias = t.alias.clone();
            polls.spawn(async move {
                let answer = tokio::time::timeout(
                    HEALTH_TIMEOUT + Duration::from_millis(500),
                    client.health(),
                )
                .await;
                let state = match answer {
                    Ok(Ok(h)) if h.serving => (Health::Serving, None),
                    Ok(Ok(h)) => (
                        Health::NotServing,
                        Some(
                            h.error
                                .unwrap_or_else(|| "agent reports not serving".to_string()),
                        ),
                    ),
                    Ok(Err(e)) => (Health::Unknown, Some(format!("agent unreachable: {e}"))),
                    Err(_) => (
                        Health::Unknown,
                        Some("agent health poll timed out".to_string()),
                    ),
                };
                (alias, state)
            });
        }
        polls
    }

    fn pool_for(&mut self, t: &Tablet) -> Arc<TabletPool> {
        let addr = t.mysql_addr();
        if let Some(p) = self.pools.get(&t.alias)
            && p.addr() == addr
            && p.db_name() == t.db_name
        {
            return p.clone();
        }
        let label = t.alias.to_string();
        let pool = TabletPool::new(
            t.alias.clone(),
            addr,
            t.db_name.clone(),
            &self.pool_settings,
            self.metrics.pool_handles(&label),
        );
        if let Some(old) = self.pools.insert(t.alias.clone(), pool.clone()) {
            old.retire();
        }
        pool
    }

    fn build(
        &mut self,
        mut health: HashMap<TabletAlias, (Health, Option<String>)>,
        store_error: Option<String>,
    ) -> RoutingTable {
        let records = self.records.take().expect("caller checked records exist");
        let mut routes: HashMap<TabletAlias, Arc<TabletRoute>> = HashMap::new();
        for t in &records.tablets {
            let (state, error) = health
                .remove(&t.alias)
                .unwrap_or((Health::Unknown, Some("health not polled".to_string())));
            let pool = self.pool_for(t);
            routes.insert(
                t.alias.clone(),
                Arc::new(TabletRoute {
                    tablet: t.clone(),
                    health: state,
                    health_error: error,
                    pool,
                }),
            );
        }
        let gone: Vec<TabletAlias> = self
            .pools
            .keys()
            .filter(|a| !routes.contains_key(*a))
            .cloned()
            .collect();
        for alias in gone {
            if let Some(p) = self.pools.remove(&alias) {
                p.retire();
            }
        }

        self.rebuild_vschemas(&records);
        let mut keyspaces = BTreeMap::new();
        for ks in &records.keyspaces {
            let mut shards = BTreeMap::new();
            for shard in records.shards.iter().filter(|s| s.keyspace == ks.name) {
                shards.insert(shard.name.clone(), build_shard(shard, &routes));
            }
            let vschema = self.vschemas.get(&ks.name).cloned().unwrap_or_else(|| {
                Arc::new(KeyspaceVSchema::build(
                    &ks.name,
                    ks.sharded,
                    None,
                    Vec::new(),
                    &|_| None,
                ))
            });
            keyspaces.insert(
                ks.name.clone(),
                KeyspaceRoute {
                    keyspace: ks.clone(),
                    shards,
                    vschema,
                },
            );
        }
        let table = RoutingTable {
            keyspaces,
            topology_read_ms: records.read_ms,
            built_ms: now_ms(),
            store_error,
            vschema_epoch: self.vschema_epoch,
            routing_rules: self.routing_rules.clone(),
        };
        self.records = Some(records);
        table
    }
}

impl TopologyWatcher {
    /// Rebuilds the planner's view of every keyspace whose VSchema text or
    /// shard list changed since the last round (all of them when any
    /// changed: a sequence may live in another keyspace).
    fn rebuild_vschemas(&mut self, records: &Records) {
        if self.routing_rules.source_json != records.routing_rules {
            self.routing_rules = Arc::new(crate::plan::vschema::RoutingRuleMap::build(
                records.routing_rules.as_deref(),
            ));
            // Plans resolved tables through the old rules.
            self.vschema_epoch += 1;
        }
        let shard_lists: HashMap<&str, Vec<(Arc<str>, KeyRange)>> = records
            .keyspaces
            .iter()
            .map(|ks| {
                let mut list: Vec<(Arc<str>, KeyRange)> = records
                    .shards
                    .iter()
                    .filter(|s| s.keyspace == ks.name)
                    .map(|s| (Arc::from(s.name.as_str()), s.key_range.clone()))
                    .collect();
                list.sort_by(|a, b| a.1.start.cmp(&b.1.start));
                (ks.name.as_str(), list)
            })
            .collect();
        let unchanged = self.vschemas.len() == records.keyspaces.len()
            && records.keyspaces.iter().all(|ks| {
                self.vschemas.get(&ks.name).is_some_and(|old| {
                    old.source_json.as_deref()
                        == records.vschemas.get(&ks.name).cloned().flatten().as_deref()
                        && old.shards == shard_lists[ks.name.as_str()]
                })
            });
        if unchanged {
            return;
        }
        let parsed: HashMap<&str, tessera_topo::vschema::Keyspace> = records
            .vschemas
            .iter()
            .filter_map(|(ks, json)| {
                let json = json.as_deref()?;
                Some((
                    ks.as_str(),
                    tessera_topo::vschema::Keyspace::from_json(json).ok()?,
                ))
            })
            .collect();
        let find_sequence = |name: &str| -> Option<(String, String)> {
            let is_seq = |ks: &str, t: &str| {
                parsed
                    .get(ks)
                    .and_then(|k| k.tables.get(t))
                    .is_some_and(|t| t.table_type == tessera_topo::vschema::TableType::Sequence)
            };
            match name.split_once('.') {
                Some((ks, t)) => is_seq(ks, t).then(|| (ks.to_string(), t.to_string())),
                None => {
                    let mut found = parsed.keys().filter(|ks| is_seq(ks, name));
                    match (found.next(), found.next()) {
                        (Some(ks), None) => Some((ks.to_string(), name.to_string())),
                        _ => None,
                    }
                }
            }
        };
        self.vschema_epoch += 1;
        self.vschemas = records
            .keyspaces
            .iter()
            .map(|ks| {
                let built = KeyspaceVSchema::build(
                    &ks.name,
                    ks.sharded,
                    records.vschemas.get(&ks.name).cloned().flatten().as_deref(),
                    shard_lists[ks.name.as_str()].clone(),
                    &find_sequence,
                );
                (ks.name.clone(), Arc::new(built))
            })
            .collect();
    }
}

fn build_shard(shard: &Shard, routes: &HashMap<TabletAlias, Arc<TabletRoute>>) -> ShardRoute {
    let mut tablets: Vec<Arc<TabletRoute>> = routes
        .values()
        .filter(|r| r.tablet.keyspace == shard.keyspace && r.tablet.shard == shard.name)
        .cloned()
        .collect();
    tablets.sort_by(|a, b| a.tablet.alias.cmp(&b.tablet.alias));

    let (primary, primary_problem) = match &shard.primary_alias {
        None => (None, Some("the shard has no primary".to_string())),
        Some(alias) => match routes.get(alias) {
            None => (
                None,
                Some(format!("primary tablet {alias} has no tablet record")),
            ),
            Some(r) if r.health == Health::NotServing => (
                None,
                Some(format!(
                    "primary tablet {alias} is not serving: {}",
                    r.health_error.as_deref().unwrap_or("no reason given")
                )),
            ),
            Some(r) if r.tablet.needs_reseed => {
                (None, Some(format!("primary tablet {alias} needs a reseed")))
            }
            Some(r) => (Some(r.clone()), None),
        },
    };

    let candidates = |ty: TabletType| {
        let mut c = Candidates::default();
        for r in &tablets {
            if r.tablet.tablet_type != ty
                || r.tablet.needs_reseed
                || shard.primary_alias.as_ref() == Some(&r.tablet.alias)
            {
                continue;
            }
            match r.health {
                Health::Serving => c.serving.push(r.clone()),
                Health::Unknown => c.unknown.push(r.clone()),
                Health::NotServing => {}
            }
        }
        c
    };
    ShardRoute {
        keyspace_name: Arc::from(shard.keyspace.as_str()),
        name: Arc::from(shard.name.as_str()),
        shard: shard.clone(),
        primary,
        primary_problem,
        replicas: candidates(TabletType::Replica),
        rdonly: candidates(TabletType::Rdonly),
        tablets,
    }
}

/// Runs `refresh` every `interval` until `stop` fires; at once when a
/// statement starts buffering, and every `FAST_REFRESH` while any does.
pub(crate) async fn run_watcher(
    mut watcher: TopologyWatcher,
    interval: Duration,
    buffers: Arc<Buffers>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        let fast = buffers.wants_fast_refresh();
        tokio::select! {
            _ = ticker.tick() => {}
            _ = buffers.refresh_requested() => {}
            _ = tokio::time::sleep(FAST_REFRESH), if fast => {}
            _ = stop.changed() => break,
        }
        watcher
            .refresh_notifying(&|| buffers.table_swapped(), Some(&buffers))
            .await;
    }
    for pool in watcher.pools.values() {
        pool.retire();
    }
}

/// Wakes the watcher the moment a shard or tablet record changes (a
/// reparent writes both), rather than at its next tick: statements in
/// flight on an old primary that went silent are only ended, and new ones
/// only routed to its successor, once the gate has read the change.
/// Record changes are rare (reparents, type changes), and a burst of them
/// makes one refresh.
pub(crate) async fn watch_records(
    store: Arc<dyn tessera_topo::Store>,
    cell: String,
    buffers: Arc<Buffers>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use futures::StreamExt;
    const RESUBSCRIBE: Duration = Duration::from_secs(2);
    let tablets = tessera_topo::topo::tablets_prefix(&cell);
    loop {
        let subscribed = async {
            let shards = store.watch("/global/keyspaces/").await?;
            let tablets = store.watch(&tablets).await?;
            TopoResult::Ok(futures::stream::select(shards, tablets))
        };
        match tokio::time::timeout(STORE_TIMEOUT, subscribed).await {
            Ok(Ok(mut events)) => loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(Ok(_)) => {
                            tracing::debug!("topology record changed: refreshing");
                            buffers.request_refresh();
                        }
                        // The store went away; the polling cycle carries on.
                        Some(Err(_)) | None => break,
                    },
                    _ = stop.changed() => return,
                }
            },
            Ok(Err(e)) => tracing::debug!("cannot watch the topology: {e}"),
            Err(_) => tracing::debug!("watching the topology timed out"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RESUBSCRIBE) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PoolMetrics;

    fn route(uid: u32, ty: TabletType, health: Health) -> (TabletAlias, Arc<TabletRoute>) {
        let alias = TabletAlias::new("zone1", uid);
        let tablet = Tablet {
            format: 1,
            alias: alias.clone(),
            hostname: "h".into(),
            keyspace: "ks".into(),
            shard: "0".into(),
            tablet_type: ty,
            mysql_host: "127.0.0.1".into(),
            mysql_port: 1,
            agent_addr: "127.0.0.1:1".into(),
            db_name: "ks".into(),
            primary_term: 0,
            needs_reseed: false,
        };
        let settings = PoolSettings {
            user: "u".into(),
            password: "p".into(),
            max_connections: 1,
            wait_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        };
        let pool = TabletPool::new(
            alias.clone(),
            tablet.mysql_addr(),
            "ks".into(),
            &settings,
            PoolMetrics::default(),
        );
        (
            alias,
            Arc::new(TabletRoute {
                tablet,
                health,
                health_error: None,
                pool,
            }),
        )
    }

    fn shard(primary: Option<u32>) -> Shard {
        Shard {
            keyspace: "ks".into(),
            name: "0".into(),
            primary_alias: primary.map(|uid| TabletAlias::new("zone1", uid)),
            ..Default::default()
        }
    }

    fn table_of(shards: Vec<ShardRoute>, sharded: bool) -> RoutingTable {
        let mut keyspaces = BTreeMap::new();
        keyspaces.insert(
            "ks".to_string(),
            KeyspaceRoute {
                keyspace: Keyspace {
                    name: "ks".into(),
                    sharded,
                    ..Default::default()
                },
                shards: shards
                    .into_iter()
                    .map(|s| (s.shard.name.clone(), s))
                    .collect(),
                vschema: Arc::new(KeyspaceVSchema::build(
                    "ks",
                    sharded,
                    None,
                    Vec::new(),
                    &|_| None,
                )),
            },
        );
        RoutingTable {
            keyspaces,
            ..Default::default()
        }
    }

    #[test]
    fn primary_routed_unless_not_serving() {
        let routes: HashMap<_, _> = [route(1, TabletType::Primary, Health::Unknown)].into();
        let s = build_shard(&shard(Some(1)), &routes);
        assert_eq!(s.pick(TabletType::Primary).unwrap().tablet.alias.uid, 1);

        let routes: HashMap<_, _> = [route(1, TabletType::Primary, Health::NotServing)].into();
        let s = build_shard(&shard(Some(1)), &routes);
        let err = s.pick(TabletType::Primary).err().unwrap();
        assert!(
            matches!(&err, RouteError::NoTablet(m) if m.contains("not serving")),
            "{err:?}"
        );

        let s = build_shard(&shard(None), &routes);
        assert!(s.pick(TabletType::Primary).is_err());
        let s = build_shard(&shard(Some(9)), &routes);
        let err = s.pick(TabletType::Primary).err().unwrap();
        assert!(
            matches!(&err, RouteError::NoTablet(m) if m.contains("no tablet record")),
            "{err:?}"
        );
    }

    #[test]
    fn replicas_round_robin_over_serving_with_unknown_fallback() {
        let routes: HashMap<_, _> = [
            route(1, TabletType::Primary, Health::Serving),
            route(2, TabletType::Replica, Health::Serving),
            route(3, TabletType::Replica, Health::Serving),
            route(4, TabletType::Replica, Health::Unknown),
            route(5, TabletType::Replica, Health::NotServing),
            route(6, TabletType::Rdonly, Health::Unknown),
        ]
        .into();
        let s = build_shard(&shard(Some(1)), &routes);
        let picks: Vec<u32> = (0..4)
            .map(|_| s.pick(TabletType::Replica).unwrap().tablet.alias.uid)
            .collect();
        assert_eq!(
            picks,
            vec![2, 3, 2, 3],
            "only serving replicas, alternating"
        );
        assert_eq!(
            s.pick(TabletType::Rdonly).unwrap().tablet.alias.uid,
            6,
            "unknown as fallback"
        );
        assert!(s.pick(TabletType::Spare).is_err());

        let routes: HashMap<_, _> = [
            route(1, TabletType::Primary, Health::Serving),
            route(5, TabletType::Replica, Health::NotServing),
        ]
        .into();
        let s = build_shard(&shard(Some(1)), &routes);
        assert!(
            s.pick(TabletType::Replica).is_err(),
            "not-serving replicas are never used"
        );
    }

    #[test]
    fn targets_resolve_against_the_table() {
        let routes: HashMap<_, _> = [route(1, TabletType::Primary, Health::Serving)].into();
        let table = table_of(vec![build_shard(&shard(Some(1)), &routes)], false);
        assert!(table.all_primaries_routable());
        assert_eq!(table.resolve(None).unwrap().tablet.alias.uid, 1);
        let t = Target::parse("ks:0").unwrap();
        assert_eq!(table.resolve(Some(&t)).unwrap().tablet.alias.uid, 1);
        let t = Target::parse("ks:80-").unwrap();
        assert_eq!(
            table.validate(&t),
            Err(RouteError::UnknownDatabase("ks:80-".into()))
        );
        let t = Target::parse("other").unwrap();
        let (code, state, message) = table.resolve(Some(&t)).err().unwrap().to_mysql();
        assert_eq!(
            (code, state, message.as_str()),
            (1049, "42000", "Unknown database 'other'")
        );
        assert_eq!(
            RoutingTable::default()
                .resolve(None)
                .err()
                .unwrap()
                .to_mysql()
                .0,
            1046
        );
        assert!(!RoutingTable::default().all_primaries_routable());
    }

    #[test]
    fn buffering_ends_on_a_serving_new_primary_or_a_fresh_poll_of_the_old() {
        use crate::buffer::{FailedPrimary, primary_changed};
        let failed = FailedPrimary {
            alias: Some(TabletAlias::new("zone1", 1)),
            term: 1,
            why: String::new(),
        };
        let changed = |table: &RoutingTable, generation| {
            primary_changed(table, "ks", "0", &failed, generation, 10)
        };
        // The old primary, read-only: never the end, however fresh the table.
        let routes: HashMap<_, _> = [
            route(1, TabletType::Primary, Health::NotServing),
            route(2, TabletType::Replica, Health::Serving),
        ]
        .into();
        let table = table_of(vec![build_shard(&shard(Some(1)), &routes)], false);
        assert!(!changed(&table, 20));
        // The record names the promoted replica, serving: done at once.
        let routes: HashMap<_, _> = [
            route(1, TabletType::Replica, Health::NotServing),
            route(2, TabletType::Primary, Health::Serving),
        ]
        .into();
        let table = table_of(vec![build_shard(&shard(Some(2)), &routes)], false);
        assert!(changed(&table, 10));
        // ... but not while its agent has not answered yet.
        let routes: HashMap<_, _> = [route(2, TabletType::Primary, Health::Unknown)].into();
        let table = table_of(vec![build_shard(&shard(Some(2)), &routes)], false);
        assert!(!changed(&table, 20));
        // The old primary serving again counts only from a health poll that
        // surely started after the failure (two tables later).
        let routes: HashMap<_, _> = [route(1, TabletType::Primary, Health::Serving)].into();
        let table = table_of(vec![build_shard(&shard(Some(1)), &routes)], false);
        assert!(!changed(&table, 11));
        assert!(changed(&table, 12));
        // Same alias, higher term (a re-promotion): a change.
        let mut record = shard(Some(1));
        record.primary_term = 2;
        let table = table_of(vec![build_shard(&record, &routes)], false);
        assert!(changed(&table, 10));
        // A shard the table does not know never resolves.
        assert!(!primary_changed(&table, "ks", "-80", &failed, 20, 10));
    }

    #[test]
    fn sharded_keyspace_needs_a_shard_target() {
        let routes: HashMap<_, _> = [route(1, TabletType::Primary, Health::Serving)].into();
        let mut a = shard(Some(1));
        a.name = "-80".into();
        let mut b = shard(Some(1));
        b.name = "80-".into();
        let table = table_of(
            vec![build_shard(&a, &routes), build_shard(&b, &routes)],
            true,
        );
        let t = Target::parse("ks").unwrap();
        assert_eq!(table.resolve(Some(&t)).err().unwrap().to_mysql().0, 1235);
        let t = Target::parse("ks:80-").unwrap();
        assert!(table.resolve(Some(&t)).is_ok());
        // The only keyspace is the default even when sharded.
        assert!(table.default_keyspace().is_some());
    }
}
