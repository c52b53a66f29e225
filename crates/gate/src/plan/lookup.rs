//! Where a lookup vindex's table lives, and which of its shards holds the
//! entry of given `from` values. The statements themselves are built by
//! [`crate::vindex::lookup_sql`]; the executor runs them.

use std::sync::Arc;

use super::vschema::KeyspaceVSchema;
use super::{OwnedValue, PlanError, PlanResult, map_value};
use crate::topology::RoutingTable;
use crate::vindex::lookup_sql::LookupKind;
use crate::vindex::{LookupParams, Vindex};

/// A lookup vindex's table, located in the topology.
pub struct LookupTable {
    pub keyspace: Arc<KeyspaceVSchema>,
    pub keyspace_name: Arc<str>,
    /// When the lookup table is itself sharded: which `from` column its
    /// primary vindex reads, and that vindex.
    sharded_by: Option<(usize, Arc<dyn Vindex>)>,
}

/// A lookup vindex's settings and type, or an error naming the vindex.
pub fn lookup_of(vindex: &dyn Vindex) -> PlanResult<(&LookupParams, LookupKind)> {
    let params = vindex.lookup_params();
    let kind = LookupKind::of(vindex.kind());
    match (params, kind) {
        (Some(p), Some(k)) => Ok((p, k)),
        _ => Err(PlanError::other(format!(
            "vindex '{}' ({}) is not a lookup vindex",
            vindex.name(),
            vindex.kind()
        ))),
    }
}

/// Finds the table `params.table` names: `ks.table`, or a bare name looked
/// for in the owner's keyspace first, then in the one keyspace listing it.
pub fn locate(
    routing: &RoutingTable,
    owner_keyspace: &str,
    params: &LookupParams,
) -> PlanResult<LookupTable> {
    let (qualifier, table) = match params.table.split_once('.') {
        Some((ks, t)) => (
            Some(ks.trim().trim_matches('`')),
            t.trim().trim_matches('`'),
        ),
        None => (None, params.table.trim().trim_matches('`')),
    };
    let keyspace = match qualifier {
        Some(ks) => routing.keyspaces.get(ks).map(|k| k.vschema.clone()),
        None => routing
            .keyspaces
            .get(owner_keyspace)
            .filter(|k| !k.vschema.sharded || k.vschema.tables.contains_key(table))
            .or_else(|| {
                let mut listing = routing
                    .keyspaces
                    .values()
                    .filter(|k| k.vschema.tables.contains_key(table));
                match (listing.next(), listing.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            })
            .map(|k| k.vschema.clone()),
    }
    .ok_or_else(|| {
        PlanError::other(format!(
            "lookup table '{}' is in no keyspace of the topology",
            params.table
        ))
    })?;
    let sharded_by = if keyspace.sharded {
        let info = keyspace.tables.get(table).ok_or_else(|| {
            PlanError::other(format!(
                "lookup table '{}': sharded keyspace '{}' has no table '{table}' in its VSchema",
                params.table, keyspace.name
            ))
        })?;
        info.primary().and_then(|(column, vindex)| {
            let at = params
                .from
                .iter()
                .position(|f| f.eq_ignore_ascii_case(column))?;
            Some((at, vindex.clone()))
        })
    } else {
        None
    };
    Ok(LookupTable {
        keyspace_name: Arc::from(keyspace.name.as_str()),
        keyspace,
        sharded_by,
    })
}

impl LookupTable {
    fn all_shards(&self) -> Vec<Arc<str>> {
        self.keyspace
            .shards
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The shard whose copy of the lookup table holds the entry of `from`
    /// (the values of the `from` columns, in order). An entry must have one
    /// home: a sharded lookup table not sharded by a `from` column is an
    /// error for writes.
    pub fn shard_for_entry(&self, from: &[OwnedValue]) -> PlanResult<Arc<str>> {
        match (&self.sharded_by, self.keyspace.shards.as_slice()) {
            (None, [(only, _)]) => Ok(only.clone()),
            (None, _) => Err(PlanError::unsupported(format!(
                "a lookup table in sharded keyspace '{}' whose primary vindex is not on a 'from' column",
                self.keyspace.name
            ))),
            (Some((at, vindex)), _) => {
                let value = from.get(*at).cloned().unwrap_or(OwnedValue::Null);
                let ksid = map_value(vindex.as_ref(), &value, true)?
                    .ok_or_else(|| PlanError::other("lookup value maps to no keyspace id"))?;
                self.keyspace.shard_for(&ksid).cloned().ok_or_else(|| {
                    PlanError::other(format!(
                        "no shard of keyspace '{}' owns keyspace id {ksid}",
                        self.keyspace.name
                    ))
                })
            }
        }
    }

    /// The shards to ask for the entries of these values of the first
    /// `from` column.
    pub fn shards_for_query(&self, first_column_values: &[OwnedValue]) -> Vec<Arc<str>> {
        match &self.sharded_by {
            Some((0, vindex)) => {
                let mut out: Vec<Arc<str>> = Vec::new();
                for v in first_column_values {
                    if let Ok(Some(ksid)) = map_value(vindex.as_ref(), v, false)
                        && let Some(shard) = self.keyspace.shard_for(&ksid)
                        && !out.contains(shard)
                    {
                        out.push(shard.clone());
                    }
                }
                out
            }
            _ => self.all_shards(),
        }
    }
}

/// A result cell as a value a vindex can map: numbers of numeric columns
/// as integers, everything else as its bytes.
pub fn cell_value(cell: Option<&[u8]>, numeric: bool) -> OwnedValue {
    let Some(bytes) = cell else {
        return OwnedValue::Null;
    };
    if numeric && let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(i) = text.parse::<i64>() {
            return OwnedValue::Int(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return OwnedValue::UInt(u);
        }
        return OwnedValue::Decimal(bytes.to_vec());
    }
    OwnedValue::Bytes(bytes.to_vec())
}
