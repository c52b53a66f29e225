//! The control plane's operations over the topology and the tablet agents.
//! The HTTP handlers call these, and so does `local up` in-process, so both
//! paths behave the same. Errors that are the caller's fault carry a
//! `CtldError` (see `error.rs`) so the API can answer 4xx.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tessera_tablet::api::{
    AgentClient, ExecuteRequest, ReplicateFrom, SchemaDefinition, TabletHealth,
};
use tessera_topo::{Keyspace, Shard, Tablet, TabletAlias, TabletType, Topo, TopoError};
use tracing::{info, warn};

use crate::error::{bad_request, conflict, not_found, tablet_failed};
use crate::gtid::GtidPos;
use crate::statements::split_statements;
use crate::vschema::validate_vschema;

/// How long a health probe may take before the tablet is shown unreachable;
/// short, because one dead agent must not stall a listing.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// How long to wait for another reparent holding the shard lock.
pub(crate) const SHARD_LOCK_WAIT: Duration = Duration::from_secs(30);
/// How long the new primary may take to apply what the old one wrote before
/// the (forced) promotion goes ahead anyway.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Agent calls during a reparent: promotion and repointing involve a few
/// statements on mysqld each.
pub(crate) const REPARENT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// A schema change may rebuild a big table.
const SCHEMA_CHANGE_TIMEOUT: Duration = Duration::from_secs(3600);

/// A tablet's record with what its agent says about it now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TabletInfo {
    pub tablet: Tablet,
    /// Start of the tablet's term (Unix ms) when it is its shard's primary.
    pub primary_term_start_ms: Option<u64>,
    /// None when the agent could not be reached; see `health_error`.
    pub health: Option<TabletHealth>,
    pub health_error: Option<String>,
}

/// A keyspace with its shards (each naming its primary).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyspaceInfo {
    pub keyspace: Keyspace,
    pub shards: Vec<Shard>,
    pub has_vschema: bool,
}

/// What a schema change did on one shard.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardResult {
    pub shard: String,
    pub primary: TabletAlias,
    pub rows_affected: u64,
}

/// The ctld's own summary (GET /api/status).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusInfo {
    pub cell: String,
    pub read_only: bool,
    pub keyspaces: Vec<String>,
    pub tablet_count: usize,
    pub uptime_seconds: u64,
    pub version: String,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Every tablet of every cell, in alias order, each probed for health
/// concurrently.
pub async fn list_tablets(topo: &Topo) -> anyhow::Result<Vec<TabletInfo>> {
    let tablets = topo.list_tablets(None).await?;
    let mut shards: HashMap<(String, String), Option<Shard>> = HashMap::new();
    for t in &tablets {
        let key = (t.keyspace.clone(), t.shard.clone());
        if !t.keyspace.is_empty() && !shards.contains_key(&key) {
            let shard = topo.get_shard(&t.keyspace, &t.shard).await?.map(|(s, _)| s);
            shards.insert(key, shard);
        }
    }
    let healths = join_all(tablets.iter().map(|t| async move {
        AgentClient::with_timeout(&t.agent_addr, HEALTH_TIMEOUT)
            .health()
            .await
    }))
    .await;
    Ok(tablets
        .into_iter()
        .zip(healths)
        .map(|(tablet, health)| {
            let primary_term_start_ms = shards
                .get(&(tablet.keyspace.clone(), tablet.shard.clone()))
                .and_then(Option::as_ref)
                .filter(|s| s.primary_alias.as_ref() == Some(&tablet.alias))
                .map(|s| s.primary_term_start_ms);
            let (health, health_error) = match health {
                Ok(h) => (Some(h), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            };
            TabletInfo {
                tablet,
                primary_term_start_ms,
                health,
                health_error,
            }
        })
        .collect())
}

/// Every keyspace with its shards, in name order.
pub async fn list_keyspaces(topo: &Topo) -> anyhow::Result<Vec<KeyspaceInfo>> {
    let mut out = Vec::new();
    for keyspace in topo.list_keyspaces().await? {
        let shards = topo.list_shards(&keyspace.name).await?;
        let has_vschema = topo.get_vschema(&keyspace.name).await?.is_some();
        out.push(KeyspaceInfo {
            keyspace,
            shards,
            has_vschema,
        });
    }
    out.sort_by(|a, b| a.keyspace.name.cmp(&b.keyspace.name));
    Ok(out)
}

pub async fn status(
    topo: &Topo,
    cell: &str,
    read_only: bool,
    uptime: Duration,
) -> anyhow::Result<StatusInfo> {
    let mut keyspaces: Vec<String> = topo
        .list_keyspaces()
        .await?
        .into_iter()
        .map(|k| k.name)
        .collect();
    keyspaces.sort();
    Ok(StatusInfo {
        cell: cell.to_string(),
        read_only,
        keyspaces,
        tablet_count: topo.list_tablets(None).await?.len(),
        uptime_seconds: uptime.as_secs(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// Makes `alias` the primary of `keyspace/shard` under the shard lock, in a
/// new primary term, and points every other tablet of the shard at it
/// (rdonly tablets stay rdonly). When the shard already has another primary
/// it is forced out: made read-only first, the candidate given a moment to
/// apply what it wrote, then repointed as a replica.
pub async fn init_shard_primary(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
    alias: &TabletAlias,
) -> anyhow::Result<()> {
    if topo.get_shard(keyspace, shard).await?.is_none() {
        return Err(not_found(format!(
            "shard {keyspace}/{shard} does not exist"
        )));
    }
    let Some((candidate, _)) = topo.get_tablet(alias).await? else {
        return Err(not_found(format!("tablet {alias} does not exist")));
    };
    if candidate.keyspace != keyspace || candidate.shard != shard {
        return Err(bad_request(format!(
            "tablet {alias} belongs to {}/{}, not to {keyspace}/{shard}",
            candidate.keyspace, candidate.shard
        )));
    }
    if candidate.needs_reseed {
        return Err(conflict(format!(
            "tablet {alias} has transactions the shard lacks and must be re-seeded before it can be primary"
        )));
    }
    let lock = topo
        .lock_shard(keyspace, shard, SHARD_LOCK_WAIT)
        .await
        .map_err(|e| match e {
            TopoError::LockTimeout(_) => conflict(format!(
                "shard {keyspace}/{shard} is locked by another operation (reparent in progress?); try again later"
            )),
            other => other.into(),
        })?;
    let result = reparent_locked(topo, keyspace, shard, &candidate).await;
    if let Err(e) = lock.unlock().await {
        warn!(keyspace, shard, error = %e, "could not release the shard lock; it expires with its lease");
    }
    let detail = match &result {
        Ok(()) => format!("{alias} is primary"),
        Err(e) => format!("{alias}: {e:#}"),
    };
    crate::events::record_event(
        topo,
        &format!("{keyspace}/{shard}"),
        "InitShardPrimary",
        detail,
    )
    .await;
    result
}

async fn reparent_locked(
    topo: &Topo,
    keyspace: &str,
    shard: &str,
    candidate: &Tablet,
) -> anyhow::Result<()> {
    let alias = &candidate.alias;
    // Re-read under the lock: the record may have changed while we waited.
    let Some((shard_record, _)) = topo.get_shard(keyspace, shard).await? else {
        return Err(not_found(format!(
            "shard {keyspace}/{shard} does not exist"
        )));
    };
    let new_term = shard_record.primary_term + 1;
    let tablets = topo.list_shard_tablets(keyspace, shard).await?;
    let candidate_client = AgentClient::with_timeout(&candidate.agent_addr, REPARENT_CALL_TIMEOUT);

    let old_primary = match shard_record.primary_alias.as_ref().filter(|a| *a != alias) {
        Some(old_alias) => match tablets.iter().find(|t| &t.alias == old_alias) {
            Some(t) => Some(t.clone()),
            None => topo.get_tablet(old_alias).await?.map(|(t, _)| t),
        },
        None => None,
    };
    let fenced = match &old_primary {
        Some(old) => fence_old_primary(old, &candidate_client).await,
        None => None,
    };

    if let Err(e) = candidate_client.promote(new_term).await {
        if let Some(old_client) = fenced {
            // Promotion failed: give the shard its writable primary back.
            if let Err(undo) = old_client.set_read_only(false).await {
                warn!(error = %format!("{undo:#}"), "could not make the old primary writable again");
            }
        }
        return Err(tablet_failed(format!(
            "tablet {alias} at {} could not be promoted: {e:#}",
            candidate.agent_addr
        )));
    }
    crate::reparent::record_promotion(topo, keyspace, shard, alias, new_term).await?;
    info!(keyspace, shard, %alias, term = new_term, "promoted shard primary");

    let failures: Vec<String> = join_all(tablets.iter().filter(|t| &t.alias != alias).map(
        |t| async move {
            repoint(topo, t, candidate)
                .await
                .map_err(|e| format!("{} ({}): {e:#}", t.alias, t.agent_addr))
        },
    ))
    .await
    .into_iter()
    .filter_map(Result::err)
    .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(tablet_failed(format!(
            "{alias} is now primary of {keyspace}/{shard} (term {new_term}), but these tablets could not be pointed at it: {}",
            failures.join("; ")
        )))
    }
}

/// Makes the old primary read-only so it takes no more writes, then waits
/// (bounded) for the candidate to apply everything it wrote. Returns the
/// old primary's client when it was fenced, None when it was unreachable.
async fn fence_old_primary(old: &Tablet, candidate: &AgentClient) -> Option<AgentClient> {
    let client = AgentClient::with_timeout(&old.agent_addr, REPARENT_CALL_TIMEOUT);
    if let Err(e) = client.set_read_only(true).await {
        warn!(old_primary = %old.alias, error = %format!("{e:#}"),
            "old primary unreachable; promoting without waiting for catch-up");
        return None;
    }
    let target = match client
        .health()
        .await
        .map(|h| GtidPos::parse(&h.gtid_binlog_pos))
    {
        Ok(Ok(pos)) => pos,
        Ok(Err(e)) => {
            warn!(old_primary = %old.alias, error = %e, "unreadable GTID position; not waiting");
            return Some(client);
        }
        Err(e) => {
            warn!(old_primary = %old.alias, error = %format!("{e:#}"), "no GTID position; not waiting");
            return Some(client);
        }
    };
    let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        match candidate.health().await {
            Ok(h) => {
                if applied_pos(&h).contains(&target) {
                    return Some(client);
                }
                // Only a replica of the old primary can ever catch up.
                let replicates_old = h.replication.as_ref().is_some_and(|r| {
                    r.source_port == old.mysql_port && r.source_host == old.mysql_host
                });
                if !replicates_old {
                    warn!(old_primary = %old.alias, "candidate does not replicate from the old primary; promoting without catch-up");
                    return Some(client);
                }
            }
            Err(e) => warn!(error = %format!("{e:#}"), "candidate health probe failed"),
        }
        if tokio::time::Instant::now() >= deadline {
            warn!(old_primary = %old.alias, "candidate did not catch up in time; forcing promotion");
            return Some(client);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Everything a tablet has applied, whether it replicated it or wrote it.
pub(crate) fn applied_pos(h: &TabletHealth) -> GtidPos {
    let parse = |s: &str| GtidPos::parse(s).unwrap_or_default();
    parse(&h.gtid_slave_pos).merge(&parse(&h.gtid_current_pos))
}

pub(crate) async fn repoint(topo: &Topo, tablet: &Tablet, primary: &Tablet) -> anyhow::Result<()> {
    let tablet_type = match tablet.tablet_type {
        TabletType::Rdonly => Some(TabletType::Rdonly),
        TabletType::Primary | TabletType::Replica => Some(TabletType::Replica),
        // Spare and drained tablets follow the primary but stay out of serving.
        TabletType::Spare | TabletType::Drained => None,
    };
    let health = AgentClient::with_timeout(&tablet.agent_addr, REPARENT_CALL_TIMEOUT)
        .replicate_from(&ReplicateFrom {
            primary_alias: primary.alias.clone(),
            host: primary.mysql_host.clone(),
            port: primary.mysql_port,
            tablet_type,
        })
        .await?;
    if health.tablet_type != tablet.tablet_type {
        topo.update_tablet(&tablet.alias, |t| {
            t.tablet_type = health.tablet_type;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// Runs `sql` (one or more `;`-separated statements) on the primary of every
/// shard of `keyspace`; replicas get it through replication. Refuses to
/// start unless every shard has a primary, so a keyspace is not left with
/// the change on some shards only for that reason.
pub async fn apply_schema(
    topo: &Topo,
    keyspace: &str,
    sql: &str,
) -> anyhow::Result<Vec<ShardResult>> {
    let statements = split_statements(sql).map_err(bad_request)?;
    if statements.is_empty() {
        return Err(bad_request("no SQL statement given"));
    }
    if topo.get_keyspace(keyspace).await?.is_none() {
        return Err(not_found(format!("keyspace {keyspace} does not exist")));
    }
    let shards = topo.list_shards(keyspace).await?;
    if shards.is_empty() {
        return Err(conflict(format!("keyspace {keyspace} has no shards")));
    }
    let mut targets = Vec::new();
    for shard in &shards {
        let Some(primary) = &shard.primary_alias else {
            return Err(conflict(format!(
                "shard {keyspace}/{} has no primary; run init-shard-primary first",
                shard.name
            )));
        };
        let Some((tablet, _)) = topo.get_tablet(primary).await? else {
            return Err(conflict(format!(
                "primary {primary} of shard {keyspace}/{} has no tablet record",
                shard.name
            )));
        };
        targets.push((shard.name.clone(), tablet));
    }

    let statements = &statements;
    let outcomes = join_all(targets.into_iter().map(|(shard, tablet)| async move {
        let client = AgentClient::with_timeout(&tablet.agent_addr, SCHEMA_CHANGE_TIMEOUT);
        let mut rows_affected = 0;
        for (i, statement) in statements.iter().enumerate() {
            let result = client
                .execute(&ExecuteRequest {
                    sql: statement.clone(),
                    db: None,
                    skip_binlog: false,
                })
                .await
                .map_err(|e| {
                    format!(
                        "shard {shard} (primary {}), statement {} of {} [{}]: {e:#}",
                        tablet.alias,
                        i + 1,
                        statements.len(),
                        excerpt(statement)
                    )
                })?;
            rows_affected += result.rows_affected;
        }
        Ok::<_, String>(ShardResult {
            shard,
            primary: tablet.alias,
            rows_affected,
        })
    }))
    .await;

    let (done, failed): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_ok);
    let done: Vec<ShardResult> = done.into_iter().filter_map(Result::ok).collect();
    if failed.is_empty() {
        return Ok(done);
    }
    let failed: Vec<String> = failed.into_iter().filter_map(Result::err).collect();
    let applied: Vec<&str> = done.iter().map(|r| r.shard.as_str()).collect();
    Err(tablet_failed(format!(
        "schema change failed: {}; applied fully on shards: [{}]",
        failed.join("; "),
        applied.join(", ")
    )))
}

fn excerpt(sql: &str) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}…", one_line.chars().take(60).collect::<String>())
    } else {
        one_line
    }
}

/// The tables of the tablet's database and their CREATE statements.
pub async fn get_schema(topo: &Topo, alias: &TabletAlias) -> anyhow::Result<SchemaDefinition> {
    let Some((tablet, _)) = topo.get_tablet(alias).await? else {
        return Err(not_found(format!("tablet {alias} does not exist")));
    };
    AgentClient::with_timeout(&tablet.agent_addr, REPARENT_CALL_TIMEOUT)
        .schema()
        .await
        .map_err(|e| {
            tablet_failed(format!(
                "tablet {alias} at {} did not give its schema: {e:#}",
                tablet.agent_addr
            ))
        })
}

/// Checks `json` (see `vschema::validate_vschema`) and stores it as the
/// keyspace's VSchema, as given.
pub async fn apply_vschema(topo: &Topo, keyspace: &str, json: &str) -> anyhow::Result<()> {
    if topo.get_keyspace(keyspace).await?.is_none() {
        return Err(not_found(format!("keyspace {keyspace} does not exist")));
    }
    validate_vschema(json).map_err(|e| bad_request(format!("keyspace {keyspace}: {e}")))?;
    topo.put_vschema(keyspace, json.trim()).await?;
    info!(keyspace, "vschema applied");
    Ok(())
}

/// Checks Vitess routing rules JSON (names well formed, each target
/// `keyspace.table` in an existing keyspace) and stores it for every gate.
pub async fn apply_routing_rules(topo: &Topo, json: &str) -> anyhow::Result<()> {
    let rules = tessera_topo::vschema::RoutingRules::from_json(json)
        .map_err(|e| bad_request(format!("routing rules: {e}")))?;
    for rule in &rules.rules {
        for target in &rule.to_tables {
            let Some((keyspace, _)) = target.split_once('.') else {
                return Err(bad_request(format!(
                    "routing rule for {}: target {target} must be keyspace.table",
                    rule.from_table
                )));
            };
            let keyspace = keyspace.trim_matches('`');
            if topo.get_keyspace(keyspace).await?.is_none() {
                return Err(bad_request(format!(
                    "routing rule for {}: keyspace {keyspace} of {target} does not exist",
                    rule.from_table
                )));
            }
        }
    }
    topo.put_routing_rules(json.trim()).await?;
    info!(rules = rules.rules.len(), "routing rules applied");
    Ok(())
}

/// The routing rules text; `{"rules": []}` when none were applied.
pub async fn get_routing_rules(topo: &Topo) -> anyhow::Result<String> {
    Ok(topo
        .get_routing_rules()
        .await?
        .unwrap_or_else(|| r#"{"rules": []}"#.to_string()))
}

/// The keyspace's VSchema text; `{}` for a keyspace that has none (an
/// unsharded keyspace needs none).
pub async fn get_vschema(topo: &Topo, keyspace: &str) -> anyhow::Result<String> {
    if topo.get_keyspace(keyspace).await?.is_none() {
        return Err(not_found(format!("keyspace {keyspace} does not exist")));
    }
    Ok(topo
        .get_vschema(keyspace)
        .await?
        .unwrap_or_else(|| "{}".to_string()))
}
