//! Topology records. Serialised as JSON objects with unknown fields ignored
//! and missing fields defaulted, so older and newer binaries read each other's
//! records; `FORMAT_VERSION` is bumped only for incompatible changes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Version of the record encoding, stored in every record as `format`.
pub const FORMAT_VERSION: u32 = 1;

fn format_version() -> u32 {
    FORMAT_VERSION
}

/// `cell-uid`, printed with the uid zero-padded to ten digits as Vitess does
/// (`zone1-0000000100`); parsed with or without the padding (`zone1-100`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TabletAlias {
    pub cell: String,
    pub uid: u32,
}

impl TabletAlias {
    pub fn new(cell: impl Into<String>, uid: u32) -> Self {
        Self {
            cell: cell.into(),
            uid,
        }
    }

    /// The short form, `zone1-100`.
    pub fn short(&self) -> String {
        format!("{}-{}", self.cell, self.uid)
    }
}

impl fmt::Display for TabletAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:010}", self.cell, self.uid)
    }
}

impl FromStr for TabletAlias {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (cell, uid) = s
            .rsplit_once('-')
            .ok_or_else(|| format!("bad tablet alias {s:?}: expected cell-uid"))?;
        if cell.is_empty() {
            return Err(format!("bad tablet alias {s:?}: empty cell"));
        }
        let uid = uid
            .parse::<u32>()
            .map_err(|_| format!("bad tablet alias {s:?}: uid is not a number"))?;
        Ok(Self::new(cell, uid))
    }
}

impl Serialize for TabletAlias {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TabletAlias {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum TabletType {
    Primary,
    Replica,
    Rdonly,
    Spare,
    Drained,
}

impl TabletType {
    pub fn as_str(self) -> &'static str {
        match self {
            TabletType::Primary => "primary",
            TabletType::Replica => "replica",
            TabletType::Rdonly => "rdonly",
            TabletType::Spare => "spare",
            TabletType::Drained => "drained",
        }
    }
}

impl fmt::Display for TabletType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TabletType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "primary" | "master" => Ok(TabletType::Primary),
            "replica" => Ok(TabletType::Replica),
            "rdonly" | "batch" => Ok(TabletType::Rdonly),
            "spare" => Ok(TabletType::Spare),
            "drained" => Ok(TabletType::Drained),
            _ => Err(format!(
                "unknown tablet type {s:?} (primary, replica, rdonly, spare, drained)"
            )),
        }
    }
}

/// A cell: a failure domain (zone, data centre) with its own topology root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CellInfo {
    #[serde(default = "format_version")]
    pub format: u32,
    pub name: String,
    /// Where the cell's topology lives (etcd endpoints); empty for `local`.
    pub server_address: String,
    pub root: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityPolicy {
    #[default]
    None,
    SemiSync,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Keyspace {
    #[serde(default = "format_version")]
    pub format: u32,
    pub name: String,
    pub sharded: bool,
    pub durability_policy: DurabilityPolicy,
}

/// A half-open range of 64-bit keyspace ids, stored as the big-endian prefix
/// bytes Vitess uses in shard names: `-80` is `[, 0x80)`, `80-` is
/// `[0x80, )`; empty start or end means unbounded. Unsharded keyspaces have
/// one shard named `0` (or `-`) covering everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct KeyRange {
    #[serde(with = "hex_bytes")]
    pub start: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub end: Vec<u8>,
}

impl KeyRange {
    /// Parses a shard name (`0`, `-`, `-80`, `40-80`, `80-`).
    pub fn from_shard_name(name: &str) -> Result<Self, String> {
        if name == "0" || name == "-" {
            return Ok(Self::default());
        }
        let (start, end) = name.split_once('-').ok_or_else(|| {
            format!("bad shard name {name:?}: expected a key range such as -80 or 80-")
        })?;
        let parse = |h: &str| -> Result<Vec<u8>, String> {
            if !h.len().is_multiple_of(2) || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "bad shard name {name:?}: {h:?} is not whole hex bytes"
                ));
            }
            Ok((0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("checked hex"))
                .collect())
        };
        let range = Self {
            start: parse(start)?,
            end: parse(end)?,
        };
        if !range.end.is_empty() && range.start >= range.end {
            return Err(format!("bad shard name {name:?}: start is not below end"));
        }
        Ok(range)
    }

    /// Whether `keyspace_id` (big-endian bytes) falls in the range.
    pub fn contains(&self, keyspace_id: &[u8]) -> bool {
        self.start.as_slice() <= keyspace_id
            && (self.end.is_empty() || keyspace_id < self.end.as_slice())
    }

    pub fn is_full(&self) -> bool {
        self.start.is_empty() && self.end.is_empty()
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        s.serialize_str(&hex)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if !s.len().is_multiple_of(2) {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Shard {
    #[serde(default = "format_version")]
    pub format: u32,
    pub keyspace: String,
    pub name: String,
    pub key_range: KeyRange,
    /// The tablet currently holding the primary role, if any.
    pub primary_alias: Option<TabletAlias>,
    /// Increases on every reparent; a tablet whose term is older is fenced.
    pub primary_term: u64,
    /// Unix milliseconds when the current term started.
    pub primary_term_start_ms: u64,
    /// Whether gates may route writes to the shard.
    pub is_primary_serving: bool,
}

/// One mysqld and its agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tablet {
    #[serde(default = "format_version")]
    pub format: u32,
    pub alias: TabletAlias,
    pub hostname: String,
    pub keyspace: String,
    pub shard: String,
    pub tablet_type: TabletType,
    /// mysqld's address as gates and replicas reach it.
    pub mysql_host: String,
    pub mysql_port: u16,
    /// The agent's HTTP address (`host:port`).
    pub agent_addr: String,
    /// The database on mysqld that holds the keyspace's tables.
    pub db_name: String,
    /// The primary term this tablet last saw itself promoted in (primaries only).
    #[serde(default)]
    pub primary_term: u64,
    /// Set when the tablet has transactions the shard's primary lacks and must
    /// be re-seeded; such a tablet is never promoted or routed to.
    #[serde(default)]
    pub needs_reseed: bool,
}

impl Tablet {
    pub fn mysql_addr(&self) -> String {
        format!("{}:{}", self.mysql_host, self.mysql_port)
    }
}

/// The shards of one keyspace that gates in a cell serve, per tablet type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SrvKeyspace {
    #[serde(default = "format_version")]
    pub format: u32,
    pub partitions: Vec<SrvPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrvPartition {
    pub tablet_type: TabletType,
    pub shards: Vec<ShardReference>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardReference {
    pub name: String,
    #[serde(default)]
    pub key_range: KeyRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_round_trip() {
        let a: TabletAlias = "zone1-100".parse().unwrap();
        assert_eq!(a, TabletAlias::new("zone1", 100));
        assert_eq!(a.to_string(), "zone1-0000000100");
        assert_eq!(a.short(), "zone1-100");
        assert_eq!(a.to_string().parse::<TabletAlias>().unwrap(), a);
        assert!("zone1".parse::<TabletAlias>().is_err());
        assert!("zone1-x".parse::<TabletAlias>().is_err());
    }

    #[test]
    fn key_ranges() {
        let full = KeyRange::from_shard_name("0").unwrap();
        assert!(full.is_full() && full.contains(&[0xff; 8]));
        let low = KeyRange::from_shard_name("-80").unwrap();
        assert!(low.contains(&[0x7f, 0xff]) && !low.contains(&[0x80]));
        let high = KeyRange::from_shard_name("80-").unwrap();
        assert!(high.contains(&[0x80]) && high.contains(&[0xff; 8]) && !high.contains(&[0x10]));
        let mid = KeyRange::from_shard_name("40-80").unwrap();
        assert!(mid.contains(&[0x40, 0]) && !mid.contains(&[0x80, 0]));
        assert!(KeyRange::from_shard_name("80-40").is_err());
        assert!(KeyRange::from_shard_name("8-").is_err());
        assert!(KeyRange::from_shard_name("zz").is_err());
    }

    #[test]
    fn records_ignore_unknown_fields() {
        let ks: Keyspace =
            serde_json::from_str(r#"{"name":"commerce","sharded":false,"future":1}"#).unwrap();
        assert_eq!(ks.name, "commerce");
        assert_eq!(ks.format, FORMAT_VERSION);
        assert_eq!(ks.durability_policy, DurabilityPolicy::None);
    }
}
