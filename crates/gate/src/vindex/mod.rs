//! Vindex functions: map a column value to the 64-bit-range keyspace id that
//! picks its shard, bit-compatible with Vitess so rows placed by Vitess map to
//! the same shards here.
//!
//! Only the pure functions live here. Lookup vindexes map through a query
//! on their lookup table, which the gate's executor runs (the statements
//! come from [`lookup_sql`]); their `map` answers
//! [`VindexError::NeedsLookup`].

mod functional;
mod lookup;
pub mod lookup_sql;
mod unicode;
mod value;

use std::collections::BTreeMap;
use std::fmt;

pub use lookup::LookupParams;
pub use unicode::unicode_loose_key;

/// A value as the planner sees it: enough to compute a keyspace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VindexValue<'a> {
    Null,
    Int(i64),
    UInt(u64),
    /// Text or binary, exactly as the client sent it.
    Bytes(&'a [u8]),
}

impl fmt::Display for VindexValue<'_> {
    /// Quoted and shortened, for error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VindexValue::Null => f.write_str("NULL"),
            VindexValue::Int(i) => write!(f, "{i}"),
            VindexValue::UInt(u) => write!(f, "{u}"),
            VindexValue::Bytes(b) => {
                const SHOWN: usize = 64;
                let text = String::from_utf8_lossy(&b[..b.len().min(SHOWN)]);
                let more = if b.len() > SHOWN { "..." } else { "" };
                write!(f, "'{}{more}'", text.escape_debug())
            }
        }
    }
}

/// The bytes a row's shard is chosen by: shards own half-open ranges of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyspaceId(pub Vec<u8>);

impl KeyspaceId {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for KeyspaceId {
    /// Lowercase hex, as Vitess prints keyspace ids and shard bounds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VindexError {
    #[error("unknown vindex type '{kind}'; known types: {known}")]
    UnknownType { kind: String, known: String },
    #[error("vindex '{vindex}' ({kind}): {message}")]
    InvalidParam {
        vindex: String,
        kind: String,
        message: String,
    },
    /// The value cannot be turned into a keyspace id (e.g. text that is not a
    /// number for `hash`). Vitess routes such a value to no shard; a planner
    /// may do the same for reads, but must refuse it for writes.
    #[error("vindex '{vindex}' ({kind}) cannot map {value}: {reason}")]
    InvalidValue {
        vindex: String,
        kind: String,
        value: String,
        reason: String,
    },
    /// Lookup vindexes map by querying their lookup table: the executor
    /// does that, never `map`.
    #[error("vindex '{vindex}' ({kind}) maps through a query on lookup table '{table}'")]
    NeedsLookup {
        vindex: String,
        kind: String,
        table: String,
    },
}

/// A vindex as declared in a VSchema.
pub trait Vindex: Send + Sync {
    /// The vindex's name in the VSchema.
    fn name(&self) -> &str;
    /// Its type: "hash", "xxhash", ...
    fn kind(&self) -> &'static str;
    /// True when each value maps to at most one keyspace id.
    fn is_unique(&self) -> bool;
    /// Vitess's planner cost: the cheapest vindex wins when several apply.
    fn cost(&self) -> u32;
    /// True for vindexes that need a database query to map (lookups).
    fn needs_lookup(&self) -> bool {
        false
    }
    /// Params given that the type does not know; Vitess warns about these.
    fn unknown_params(&self) -> &[String] {
        &[]
    }
    /// The lookup table settings of a lookup vindex.
    fn lookup_params(&self) -> Option<&LookupParams> {
        None
    }
    /// `Ok(None)` when the value maps to no shard (e.g. NULL for `hash`).
    fn map(&self, value: &VindexValue<'_>) -> Result<Option<KeyspaceId>, VindexError>;
    /// `map` without allocating, for vindexes whose keyspace ids are always
    /// 8 bytes (`hash`, `numeric`, `reverse_bits`): the same answer as
    /// `map`'s, its bytes inline. None for the other vindexes.
    fn map_fixed(&self, _value: &VindexValue<'_>) -> Option<Result<Option<[u8; 8]>, VindexError>> {
        None
    }
}

/// Every type `create_vindex` accepts.
pub const KNOWN_TYPES: &[&str] = &[
    "binary",
    "binary_md5",
    "consistent_lookup",
    "consistent_lookup_unique",
    "hash",
    "lookup",
    "lookup_hash",
    "lookup_hash_unique",
    "lookup_unique",
    "null",
    "numeric",
    "reverse_bits",
    "unicode_loose_md5",
    "unicode_loose_xxhash",
    "xxhash",
];

/// Builds the vindex `name` of type `kind` from its VSchema params.
pub fn create_vindex(
    name: &str,
    kind: &str,
    params: &BTreeMap<String, String>,
) -> Result<Box<dyn Vindex>, VindexError> {
    if let Some(f) = functional::Functional::new(name, kind, params) {
        return Ok(Box::new(f));
    }
    if lookup::is_lookup_type(kind) {
        return Ok(Box::new(lookup::Lookup::new(name, kind, params)?));
    }
    Err(VindexError::UnknownType {
        kind: kind.to_string(),
        known: KNOWN_TYPES.join(", "),
    })
}
