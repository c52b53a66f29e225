//! Lookup vindexes (lookup, lookup_unique, lookup_hash[_unique],
//! consistent_lookup[_unique]): the keyspace id of a value is stored in a
//! lookup table, so mapping needs a query.
//!
//! Here they are created and their params validated; the gate's executor
//! asks and maintains the lookup table (see `session/lookups.rs`), so `map`
//! answers [`VindexError::NeedsLookup`].

use std::collections::BTreeMap;

use super::{KeyspaceId, Vindex, VindexError, VindexValue};

const LOOKUP_TYPES: &[&str] = &[
    "lookup",
    "lookup_hash",
    "lookup_unique",
    "lookup_hash_unique",
    "consistent_lookup",
    "consistent_lookup_unique",
];

const BOOL_PARAMS: &[&str] = &[
    "autocommit",
    "multi_shard_autocommit",
    "write_only",
    "ignore_nulls",
    "batch_lookup",
    "no_verify",
];

pub(super) fn is_lookup_type(kind: &str) -> bool {
    LOOKUP_TYPES.contains(&kind)
}

/// The settings shared by every lookup type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupParams {
    /// The lookup table, possibly qualified as `keyspace.table`.
    pub table: String,
    /// The lookup table's columns holding the indexed value(s).
    pub from: Vec<String>,
    /// The lookup table's column holding the keyspace id.
    pub to: String,
    pub autocommit: bool,
    pub multi_shard_autocommit: bool,
    pub write_only: bool,
    pub ignore_nulls: bool,
    pub batch_lookup: bool,
    pub no_verify: bool,
    /// "exclusive", "shared" or "none".
    pub read_lock: Option<String>,
}

pub(super) struct Lookup {
    name: String,
    kind: &'static str,
    params: LookupParams,
    unknown_params: Vec<String>,
}

impl Lookup {
    pub(super) fn new(
        name: &str,
        kind: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Lookup, VindexError> {
        let kind = LOOKUP_TYPES
            .iter()
            .copied()
            .find(|k| *k == kind)
            .expect("callers check is_lookup_type first");
        let invalid = |message: String| VindexError::InvalidParam {
            vindex: name.to_string(),
            kind: kind.to_string(),
            message,
        };
        let required = |key: &str| -> Result<String, VindexError> {
            match params.get(key).map(|v| v.trim()) {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => Err(invalid(format!("missing required param '{key}'"))),
            }
        };
        let table = required("table")?;
        let from: Vec<String> = required("from")?
            .split(',')
            .map(|c| c.trim().to_string())
            .collect();
        if from.iter().any(|c| c.is_empty()) {
            return Err(invalid(format!(
                "param 'from' has an empty column name: '{}'",
                params["from"]
            )));
        }
        let to = required("to")?;
        if to.contains(',') {
            return Err(invalid(format!(
                "param 'to' must name one column, got '{to}'"
            )));
        }
        let flag = |key: &str| -> Result<bool, VindexError> {
            match params.get(key).map(|v| v.trim()) {
                None | Some("") => Ok(false),
                Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(other) => Err(invalid(format!(
                    "param '{key}' must be 'true' or 'false', got '{other}'"
                ))),
            }
        };
        let read_lock = match params.get("read_lock").map(|v| v.trim()) {
            None | Some("") => None,
            Some(v @ ("exclusive" | "shared" | "none")) => Some(v.to_string()),
            Some(other) => {
                return Err(invalid(format!(
                    "param 'read_lock' must be 'exclusive', 'shared' or 'none', got '{other}'"
                )));
            }
        };
        let lookup_params = LookupParams {
            table,
            from,
            to,
            autocommit: flag("autocommit")?,
            multi_shard_autocommit: flag("multi_shard_autocommit")?,
            write_only: flag("write_only")?,
            ignore_nulls: flag("ignore_nulls")?,
            batch_lookup: flag("batch_lookup")?,
            no_verify: flag("no_verify")?,
            read_lock,
        };
        let known = |key: &str| {
            matches!(key, "table" | "from" | "to" | "read_lock") || BOOL_PARAMS.contains(&key)
        };
        Ok(Lookup {
            name: name.to_string(),
            kind,
            params: lookup_params,
            unknown_params: params.keys().filter(|k| !known(k)).cloned().collect(),
        })
    }
}

impl Vindex for Lookup {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn is_unique(&self) -> bool {
        self.kind.ends_with("_unique")
    }

    /// Vitess's costs: a unique lookup narrows to one row, so it is cheaper.
    fn cost(&self) -> u32 {
        if self.is_unique() { 10 } else { 20 }
    }

    fn needs_lookup(&self) -> bool {
        true
    }

    fn unknown_params(&self) -> &[String] {
        &self.unknown_params
    }

    fn lookup_params(&self) -> Option<&LookupParams> {
        Some(&self.params)
    }

    fn map(&self, _value: &VindexValue<'_>) -> Result<Option<KeyspaceId>, VindexError> {
        Err(VindexError::NeedsLookup {
            vindex: self.name.clone(),
            kind: self.kind.to_string(),
            table: self.params.table.clone(),
        })
    }
}
