//! The VSchema as the planner uses it: each keyspace's stored JSON turned into
//! vindex instances and per-table routing facts, plus the shards' key ranges.
//! Built by the topology watcher only when a keyspace's VSchema text or shard
//! list changes, so a query never parses JSON.

use std::collections::HashMap;
use std::sync::Arc;

use tessera_topo::KeyRange;
use tessera_topo::vschema::{self as vs, TableType};

use crate::vindex::{KeyspaceId, Vindex, create_vindex};

/// How a table's rows are placed.
#[derive(Clone)]
pub enum TableKind {
    /// Rows spread over the shards by the primary vindex.
    Sharded,
    /// A full copy on every shard; `source` is the table writes must go to,
    /// when the VSchema names one.
    Reference { source: Option<String> },
    /// A sequence table (only in unsharded keyspaces).
    Sequence,
    /// A table of an unsharded keyspace.
    Unsharded,
}

/// A vindex bound to the columns of one table.
#[derive(Clone)]
pub struct ColumnVindex {
    pub columns: Vec<String>,
    pub vindex: Arc<dyn Vindex>,
    /// A lookup vindex whose VSchema `owner` is this table: the table's
    /// writes keep its lookup table in step.
    pub owned: bool,
}

/// Where a table's auto-increment ids come from.
#[derive(Clone, Debug)]
pub struct AutoIncrement {
    pub column: String,
    pub sequence_keyspace: String,
    pub sequence_table: String,
}

#[derive(Clone)]
pub struct TableInfo {
    pub name: String,
    pub kind: TableKind,
    /// The first is the primary vindex.
    pub column_vindexes: Vec<ColumnVindex>,
    pub auto_increment: Option<AutoIncrement>,
}

impl TableInfo {
    /// The primary vindex's single column and function, when it has exactly one column.
    /// The lookup vindexes this table's writes maintain.
    pub fn owned_lookups(&self) -> impl Iterator<Item = &ColumnVindex> {
        self.column_vindexes.iter().skip(1).filter(|cv| cv.owned)
    }

    pub fn primary(&self) -> Option<(&str, &Arc<dyn Vindex>)> {
        let cv = self.column_vindexes.first()?;
        match cv.columns.as_slice() {
            [one] => Some((one.as_str(), &cv.vindex)),
            _ => None,
        }
    }
}

/// One keyspace's planning facts.
pub struct KeyspaceVSchema {
    pub name: String,
    pub sharded: bool,
    pub require_explicit_routing: bool,
    pub tables: HashMap<String, TableInfo>,
    /// Shards in key-range order.
    pub shards: Vec<(Arc<str>, KeyRange)>,
    /// What could not be built (an unknown vindex type, ...): planning any
    /// statement on the keyspace reports it.
    pub error: Option<String>,
    /// The JSON this was built from, to skip rebuilding an unchanged one.
    pub source_json: Option<String>,
    /// The parsed VSchema, for SHOW VSCHEMA.
    pub parsed: vs::Keyspace,
}

impl KeyspaceVSchema {
    /// Builds a keyspace's planning facts. `sequences` resolves a sequence
    /// name (`t` or `ks.t`) to its keyspace and table across all keyspaces.
    pub fn build(
        name: &str,
        sharded_by_topology: bool,
        json: Option<&str>,
        shards: Vec<(Arc<str>, KeyRange)>,
        sequences: &dyn Fn(&str) -> Option<(String, String)>,
    ) -> KeyspaceVSchema {
        let mut out = KeyspaceVSchema {
            name: name.to_string(),
            sharded: sharded_by_topology,
            require_explicit_routing: false,
            tables: HashMap::new(),
            shards,
            error: None,
            source_json: json.map(str::to_string),
            parsed: vs::Keyspace::default(),
        };
        let Some(json) = json else {
            if out.sharded {
                out.error = Some(format!(
                    "keyspace '{name}' is sharded but has no VSchema; apply one with `tessera ctl apply-vschema`"
                ));
            }
            return out;
        };
        let parsed = match vs::Keyspace::from_json(json) {
            Ok(p) => p,
            Err(e) => {
                out.error = Some(format!("the VSchema of keyspace '{name}' is invalid: {e}"));
                return out;
            }
        };
        out.sharded = parsed.sharded || sharded_by_topology;
        out.require_explicit_routing = parsed.require_explicit_routing;
        let mut vindexes: HashMap<&str, Arc<dyn Vindex>> = HashMap::new();
        for (vname, v) in &parsed.vindexes {
            match create_vindex(vname, &v.vindex_type, &v.params) {
                Ok(vx) => {
                    vindexes.insert(vname, Arc::from(vx));
                }
                Err(e) => {
                    out.error = Some(format!("keyspace '{name}': {e}"));
                    out.parsed = parsed;
                    return out;
                }
            }
        }
        for (tname, t) in &parsed.tables {
            let kind = match t.table_type {
                TableType::Reference => TableKind::Reference {
                    source: (!t.source.is_empty()).then(|| t.source.clone()),
                },
                TableType::Sequence => TableKind::Sequence,
                _ if out.sharded => TableKind::Sharded,
                _ => TableKind::Unsharded,
            };
            let mut column_vindexes = Vec::new();
            for cv in &t.column_vindexes {
                if let Some(vx) = vindexes.get(cv.name.as_str()) {
                    let owned = vx.needs_lookup()
                        && parsed
                            .vindexes
                            .get(&cv.name)
                            .is_some_and(|v| v.owner.eq_ignore_ascii_case(tname));
                    column_vindexes.push(ColumnVindex {
                        owned,
                        columns: cv
                            .column_names()
                            .iter()
                            .map(|c| c.to_ascii_lowercase())
                            .collect(),
                        vindex: vx.clone(),
                    });
                }
            }
            let auto_increment = t.auto_increment.as_ref().and_then(|ai| {
                sequences(&ai.sequence).map(|(ks, table)| AutoIncrement {
                    column: ai.column.to_ascii_lowercase(),
                    sequence_keyspace: ks,
                    sequence_table: table,
                })
            });
            out.tables.insert(
                tname.clone(),
                TableInfo {
                    name: tname.clone(),
                    kind,
                    column_vindexes,
                    auto_increment,
                },
            );
        }
        out.parsed = parsed;
        out
    }

    /// The shard owning a keyspace id.
    pub fn shard_for(&self, ksid: &KeyspaceId) -> Option<&Arc<str>> {
        self.shards
            .iter()
            .find(|(_, range)| range.contains(ksid.as_bytes()))
            .map(|(name, _)| name)
    }
}

/// Vitess routing rules as the planner applies them: a table name as a
/// statement writes it (`t`, or `ks.t` also for `t` in a session of `ks`)
/// to the keyspace and table it really is in; None: the name is disabled.
#[derive(Debug, Default)]
pub struct RoutingRuleMap {
    rules: HashMap<String, Option<(String, String)>>,
    /// The JSON this was built from, to skip rebuilding an unchanged one.
    pub source_json: Option<String>,
}

impl RoutingRuleMap {
    /// Builds the map from stored JSON. Rules for one tablet type
    /// (`t@replica`) are skipped: they would make a plan depend on the
    /// session's tablet type. Invalid JSON gives an empty map (ctld checks
    /// rules before storing them).
    pub fn build(json: Option<&str>) -> RoutingRuleMap {
        let mut rules = HashMap::new();
        if let Some(parsed) = json.and_then(|j| vs::RoutingRules::from_json(j).ok()) {
            for rule in parsed.rules {
                if rule.from_table.contains('@') {
                    continue;
                }
                let target = rule.to_tables.first().and_then(|t| {
                    let (ks, table) = t.split_once('.')?;
                    Some((
                        ks.trim_matches('`').to_string(),
                        table.trim_matches('`').to_string(),
                    ))
                });
                rules.insert(rule.from_table.replace('`', ""), target);
            }
        }
        RoutingRuleMap {
            rules,
            source_json: json.map(str::to_string),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when `sql` may name a table some rule redirects (a cheap,
    /// conservative text check: statements of sessions whose keyspace is
    /// not sharded are planned only then).
    pub fn may_apply(&self, sql: &str) -> bool {
        !self.rules.is_empty()
            && self.rules.keys().any(|from| {
                let table = from.rsplit('.').next().unwrap_or(from);
                contains_ignore_case(sql.as_bytes(), table.as_bytes())
            })
    }

    /// The rule for a table named `table`, qualified by `qualifier`, in a
    /// session of `session_keyspace`: Some(None) when the name is disabled.
    pub fn find(
        &self,
        qualifier: Option<&str>,
        session_keyspace: Option<&str>,
        table: &str,
    ) -> Option<Option<&(String, String)>> {
        if self.rules.is_empty() {
            return None;
        }
        let lookup = |name: String| self.rules.get(&name).map(Option::as_ref);
        match (qualifier, session_keyspace) {
            (Some(q), _) => lookup(format!("{q}.{table}")),
            (None, Some(ks)) => {
                lookup(format!("{ks}.{table}")).or_else(|| lookup(table.to_string()))
            }
            (None, None) => lookup(table.to_string()),
        }
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}
