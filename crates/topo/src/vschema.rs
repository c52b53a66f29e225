//! Vitess's VSchema as typed, validated data: one keyspace's document (what
//! `ApplyVSchema` takes), routing rules, and the cluster-wide view that
//! checks references between keyspaces. ctld validates with it before storing
//! and the gate routes with it, so both agree on what a VSchema means.
//!
//! Field names are Vitess's (snake_case, with the lowerCamel spellings its
//! protobuf JSON also accepts). Unknown fields are ignored, as Vitess does,
//! but [`Keyspace::check_json`] reports each one so a typo is not silently
//! dropped. The stored document stays the user's own text; this model is the
//! reading of it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// What is known about one Vitess vindex type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VindexTypeInfo {
    pub name: &'static str,
    /// Maps a value to at most one keyspace id, so it can be a primary vindex.
    pub unique: bool,
    /// Backed by a lookup table; only such a vindex can have an owner.
    pub lookup: bool,
    /// Params Vitess refuses to create the vindex without.
    pub required_params: &'static [&'static str],
    /// Tessera computes (or, for lookups, will consult) this type; the others
    /// are accepted so existing VSchemas load, but cannot route yet.
    pub tessera_implements: bool,
}

const LOOKUP_PARAMS: &[&str] = &["table", "from", "to"];

const fn functional(name: &'static str, tessera_implements: bool) -> VindexTypeInfo {
    VindexTypeInfo {
        name,
        unique: true,
        lookup: false,
        required_params: &[],
        tessera_implements,
    }
}

const fn lookup(name: &'static str, unique: bool, tessera_implements: bool) -> VindexTypeInfo {
    VindexTypeInfo {
        name,
        unique,
        lookup: true,
        required_params: LOOKUP_PARAMS,
        tessera_implements,
    }
}

/// Every vindex type Vitess registers, sorted by name.
pub const VINDEX_TYPES: &[VindexTypeInfo] = &[
    functional("binary", true),
    functional("binary_md5", true),
    functional("cfc", false),
    lookup("consistent_lookup", false, true),
    lookup("consistent_lookup_unique", true, true),
    functional("hash", true),
    lookup("lookup", false, true),
    lookup("lookup_hash", false, false),
    lookup("lookup_hash_unique", true, false),
    lookup("lookup_unicodeloosemd5_hash", false, false),
    lookup("lookup_unicodeloosemd5_hash_unique", true, false),
    lookup("lookup_unique", true, true),
    VindexTypeInfo {
        required_params: &["column_count"],
        ..functional("multicol", false)
    },
    functional("null", true),
    functional("numeric", true),
    functional("numeric_static_map", false),
    VindexTypeInfo {
        required_params: &[
            "placement_map",
            "placement_prefix_bytes",
            "placement_sub_vindex_type",
        ],
        ..functional("placement", false)
    },
    VindexTypeInfo {
        required_params: &["region_bytes"],
        ..functional("region_experimental", false)
    },
    VindexTypeInfo {
        required_params: &["region_map", "region_bytes"],
        ..functional("region_json", false)
    },
    functional("reverse_bits", true),
    functional("unicode_loose_md5", true),
    functional("unicode_loose_xxhash", false),
    functional("xxhash", true),
];

/// The facts about vindex type `name`, if Vitess has such a type.
pub fn vindex_type(name: &str) -> Option<&'static VindexTypeInfo> {
    VINDEX_TYPES.iter().find(|t| t.name == name)
}

fn known_vindex_types() -> String {
    VINDEX_TYPES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Column type names Vitess's `query.Type` enum has, as a VSchema spells them.
pub const COLUMN_TYPES: &[&str] = &[
    "NULL_TYPE",
    "INT8",
    "UINT8",
    "INT16",
    "UINT16",
    "INT24",
    "UINT24",
    "INT32",
    "UINT32",
    "INT64",
    "UINT64",
    "FLOAT32",
    "FLOAT64",
    "TIMESTAMP",
    "DATE",
    "TIME",
    "DATETIME",
    "YEAR",
    "DECIMAL",
    "TEXT",
    "BLOB",
    "VARCHAR",
    "VARBINARY",
    "CHAR",
    "BINARY",
    "BIT",
    "ENUM",
    "SET",
    "TUPLE",
    "GEOMETRY",
    "JSON",
    "EXPRESSION",
    "HEXNUM",
    "HEXVAL",
    "BITNUM",
    "VECTOR",
    "RAW",
];

fn is_column_type(name: &str) -> bool {
    COLUMN_TYPES.iter().any(|t| t.eq_ignore_ascii_case(name))
}

/// Why a VSchema was refused. Each message names the vindex, table or field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VSchemaError {
    #[error("vschema is empty: expected a JSON object such as {{\"sharded\": false}}")]
    Empty,
    #[error("vschema is not valid JSON: {0}")]
    Syntax(String),
    #[error("vschema must be a JSON object, found {0}")]
    NotAnObject(String),
    /// A field has the wrong JSON shape; `path` is like `tables.t.columns[0].name`.
    #[error("vschema field {path}: {message}")]
    Shape { path: String, message: String },
    #[error("vindex \"{vindex}\" has unknown type \"{vindex_type}\"; known types: {known}")]
    UnknownVindexType {
        vindex: String,
        vindex_type: String,
        known: String,
    },
    #[error("vindex \"{vindex}\": {problem}")]
    Vindex { vindex: String, problem: String },
    #[error(
        "vindex \"{vindex}\" is owned by \"{owner}\", which is not a table of this keyspace's \"tables\""
    )]
    OwnerNotATable { vindex: String, owner: String },
    #[error("table \"{table}\" uses vindex \"{vindex}\", which is not defined in \"vindexes\"")]
    UndefinedVindex { table: String, vindex: String },
    #[error(
        "table \"{table}\" of a sharded keyspace needs \"column_vindexes\" (the first is its primary vindex), or type \"reference\", or \"pinned\""
    )]
    MissingPrimaryVindex { table: String },
    #[error(
        "table \"{table}\": primary (first) vindex \"{vindex}\" of type \"{vindex_type}\" is not unique; a row must map to exactly one keyspace id"
    )]
    PrimaryVindexNotUnique {
        table: String,
        vindex: String,
        vindex_type: String,
    },
    #[error(
        "table \"{table}\": primary (first) vindex \"{vindex}\" is owned by this table; an owned lookup is filled from the row's placement, so it cannot decide it"
    )]
    PrimaryVindexOwned { table: String, vindex: String },
    #[error(
        "sequence table \"{table}\" must be in an unsharded keyspace (or be \"pinned\" to one keyspace id)"
    )]
    SequenceInShardedKeyspace { table: String },
    #[error(
        "table \"{table}\" auto_increment sequence \"{sequence}\" is not a table name: {why} (expected \"table\" or \"keyspace.table\")"
    )]
    BadSequenceName {
        table: String,
        sequence: String,
        why: String,
    },
    #[error("table \"{table}\": {problem}")]
    Table { table: String, problem: String },
    #[error("multi_tenant_spec: {0}")]
    MultiTenant(String),
    #[error("routing rule for \"{from_table}\": {problem}")]
    RoutingRule { from_table: String, problem: String },
    #[error("keyspace \"{keyspace}\": {source}")]
    InKeyspace {
        keyspace: String,
        source: Box<VSchemaError>,
    },
}

impl VSchemaError {
    fn table(table: &str, problem: impl Into<String>) -> Self {
        Self::Table {
            table: table.to_string(),
            problem: problem.into(),
        }
    }

    fn vindex(vindex: &str, problem: impl Into<String>) -> Self {
        Self::Vindex {
            vindex: vindex.to_string(),
            problem: problem.into(),
        }
    }

    fn in_keyspace(self, keyspace: &str) -> Self {
        Self::InKeyspace {
            keyspace: keyspace.to_string(),
            source: Box::new(self),
        }
    }
}

/// One keyspace's VSchema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "a JSON object such as {\"sharded\": false}")]
pub struct Keyspace {
    #[serde(
        default,
        deserialize_with = "de_bool",
        skip_serializing_if = "is_false"
    )]
    pub sharded: bool,
    #[serde(
        default,
        deserialize_with = "de_nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub vindexes: BTreeMap<String, Vindex>,
    #[serde(
        default,
        deserialize_with = "de_nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tables: BTreeMap<String, Table>,
    /// Tables of this keyspace are reached only when named with the keyspace.
    #[serde(
        default,
        alias = "requireExplicitRouting",
        deserialize_with = "de_bool",
        skip_serializing_if = "is_false"
    )]
    pub require_explicit_routing: bool,
    #[serde(
        default,
        alias = "foreignKeyMode",
        skip_serializing_if = "Option::is_none"
    )]
    pub foreign_key_mode: Option<ForeignKeyMode>,
    #[serde(
        default,
        alias = "multiTenantSpec",
        skip_serializing_if = "Option::is_none"
    )]
    pub multi_tenant_spec: Option<MultiTenantSpec>,
}

/// A named vindex: a function (or lookup table) from column values to
/// keyspace ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "an object such as {\"type\": \"hash\"}")]
pub struct Vindex {
    #[serde(
        rename = "type",
        default,
        deserialize_with = "de_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub vindex_type: String,
    /// Vitess params are strings; JSON numbers and booleans are taken as
    /// their text so `"region_bytes": 1` means `"1"`.
    #[serde(
        default,
        deserialize_with = "de_params",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub params: BTreeMap<String, String>,
    /// The table whose writes maintain this lookup vindex's rows.
    #[serde(
        default,
        deserialize_with = "de_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub owner: String,
}

/// How a table is placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TableType {
    /// Sharded by its column vindexes (or, unsharded, simply there).
    #[default]
    Normal,
    /// A one-row table handing out auto-increment values.
    Sequence,
    /// Copied whole to every shard.
    Reference,
}

impl TableType {
    pub fn as_str(self) -> &'static str {
        match self {
            TableType::Normal => "",
            TableType::Sequence => "sequence",
            TableType::Reference => "reference",
        }
    }

    pub fn is_normal(&self) -> bool {
        *self == TableType::Normal
    }
}

impl Serialize for TableType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TableType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(TableType::Normal),
            Value::String(s) => match s.as_str() {
                "" => Ok(TableType::Normal),
                "sequence" => Ok(TableType::Sequence),
                "reference" => Ok(TableType::Reference),
                other => Err(D::Error::custom(format!(
                    "unknown table type \"{other}\" (expected \"sequence\", \"reference\" or none)"
                ))),
            },
            other => Err(D::Error::custom(format!(
                "must be a string, found {}",
                describe(&other)
            ))),
        }
    }
}

/// One table's placement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "an object (use {} for a plain table)")]
pub struct Table {
    #[serde(rename = "type", default, skip_serializing_if = "TableType::is_normal")]
    pub table_type: TableType,
    /// The first is the primary vindex, which places each row.
    #[serde(
        default,
        alias = "columnVindexes",
        deserialize_with = "de_nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub column_vindexes: Vec<ColumnVindex>,
    #[serde(
        default,
        alias = "autoIncrement",
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_increment: Option<AutoIncrement>,
    #[serde(
        default,
        deserialize_with = "de_nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub columns: Vec<Column>,
    /// Hex keyspace id that places the whole table in one shard.
    #[serde(
        default,
        deserialize_with = "de_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub pinned: String,
    /// `columns` lists every column, so `SELECT *` can be expanded.
    #[serde(
        default,
        alias = "columnListAuthoritative",
        deserialize_with = "de_bool",
        skip_serializing_if = "is_false"
    )]
    pub column_list_authoritative: bool,
    /// For a reference table: the `keyspace.table` it is copied from.
    #[serde(
        default,
        deserialize_with = "de_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub source: String,
}

/// A vindex applied to one or more columns of a table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "an object such as {\"column\": \"id\", \"name\": \"hash\"}")]
pub struct ColumnVindex {
    #[serde(
        default,
        deserialize_with = "de_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub column: String,
    #[serde(
        default,
        deserialize_with = "de_nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub columns: Vec<String>,
    /// The vindex's name in the keyspace's `vindexes`.
    #[serde(default, deserialize_with = "de_string")]
    pub name: String,
}

impl ColumnVindex {
    /// The columns the vindex reads, whichever way they were written.
    pub fn column_names(&self) -> Vec<&str> {
        if self.column.is_empty() {
            self.columns.iter().map(String::as_str).collect()
        } else {
            vec![self.column.as_str()]
        }
    }
}

/// A column filled from a sequence when an insert leaves it out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "an object such as {\"column\": \"id\", \"sequence\": \"id_seq\"}")]
pub struct AutoIncrement {
    #[serde(default, deserialize_with = "de_string")]
    pub column: String,
    /// `table` or `keyspace.table` of a sequence table.
    #[serde(default, deserialize_with = "de_string")]
    pub sequence: String,
}

/// A column the gate should know without asking a tablet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "an object such as {\"name\": \"id\", \"type\": \"INT64\"}")]
pub struct Column {
    #[serde(default, deserialize_with = "de_string")]
    pub name: String,
    /// A Vitess `query.Type` name such as `VARCHAR` or `INT64`.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "de_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub column_type: String,
    #[serde(
        default,
        deserialize_with = "de_bool",
        skip_serializing_if = "is_false"
    )]
    pub invisible: bool,
    #[serde(
        default,
        deserialize_with = "de_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub default: String,
    #[serde(
        default,
        alias = "collationName",
        deserialize_with = "de_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub collation_name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scale: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nullable: Option<bool>,
    /// The members of an ENUM or SET column.
    #[serde(
        default,
        deserialize_with = "de_nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
}

/// Who enforces foreign keys between the keyspace's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForeignKeyMode {
    Unspecified,
    Disallow,
    Unmanaged,
    Managed,
}

impl ForeignKeyMode {
    const ALL: [ForeignKeyMode; 4] = [
        ForeignKeyMode::Unspecified,
        ForeignKeyMode::Disallow,
        ForeignKeyMode::Unmanaged,
        ForeignKeyMode::Managed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ForeignKeyMode::Unspecified => "unspecified",
            ForeignKeyMode::Disallow => "disallow",
            ForeignKeyMode::Unmanaged => "unmanaged",
            ForeignKeyMode::Managed => "managed",
        }
    }
}

impl Serialize for ForeignKeyMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ForeignKeyMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        // Protobuf JSON allows an enum as its name or its number.
        let found = match &value {
            Value::String(s) => Self::ALL.into_iter().find(|m| m.as_str() == s),
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| Self::ALL.get(usize::try_from(n).ok()?).copied()),
            _ => None,
        };
        found.ok_or_else(|| {
            D::Error::custom(format!(
                "must be one of \"unspecified\", \"disallow\", \"unmanaged\", \"managed\", found {}",
                describe(&value)
            ))
        })
    }
}

/// The column that names a row's tenant in a multi-tenant keyspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiTenantSpec {
    #[serde(default, alias = "tenantIdColumnName", deserialize_with = "de_string")]
    pub tenant_id_column_name: String,
    #[serde(default, alias = "tenantIdColumnType", deserialize_with = "de_string")]
    pub tenant_id_column_type: String,
}

/// Vitess routing rules: `{"rules": [{"from_table": ..., "to_tables": [...]}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "an object such as {\"rules\": []}")]
pub struct RoutingRules {
    #[serde(default, deserialize_with = "de_nullable")]
    pub rules: Vec<RoutingRule>,
}

/// Sends queries naming `from_table` (`[keyspace.]table[@tablet_type]`) to
/// the one qualified table in `to_tables`; no target makes the name unroutable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "an object such as {\"from_table\": \"t\", \"to_tables\": [\"ks.t\"]}")]
pub struct RoutingRule {
    #[serde(default, alias = "fromTable", deserialize_with = "de_string")]
    pub from_table: String,
    #[serde(default, alias = "toTables", deserialize_with = "de_nullable")]
    pub to_tables: Vec<String>,
}

/// Every keyspace's VSchema plus the routing rules: what a gate serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VSchema {
    #[serde(default, deserialize_with = "de_nullable")]
    pub keyspaces: BTreeMap<String, Keyspace>,
    #[serde(default, deserialize_with = "de_nullable")]
    pub routing_rules: RoutingRules,
}

/// A table name as `[keyspace.]table`, either part optionally in backticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub keyspace: Option<String>,
    pub table: String,
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.keyspace {
            Some(ks) => write!(f, "{ks}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

/// Parses `table`, `keyspace.table` or their backticked forms (a backticked
/// part may hold a dot, as Vitess keyspace names may).
pub fn parse_table_name(text: &str) -> Result<TableName, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let (part, after) = if let Some(quoted) = rest.strip_prefix('`') {
            let end = quoted
                .find('`')
                .ok_or_else(|| "a backtick is not closed".to_string())?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            let part = &rest[..end];
            if let Some(bad) = part
                .chars()
                .find(|c| c.is_whitespace() || *c == '`' || c.is_control())
            {
                return Err(format!("{bad:?} is not allowed outside backticks"));
            }
            (part, &rest[end..])
        };
        if part.is_empty() {
            return Err("a name part is empty".into());
        }
        parts.push(part.to_string());
        if after.is_empty() {
            break;
        }
        rest = after
            .strip_prefix('.')
            .ok_or_else(|| format!("unexpected {after:?} after a quoted name"))?;
    }
    match <[String; 2]>::try_from(parts) {
        Ok([keyspace, table]) => Ok(TableName {
            keyspace: Some(keyspace),
            table,
        }),
        Err(parts) if parts.len() == 1 => Ok(TableName {
            keyspace: None,
            table: parts.into_iter().next().unwrap_or_default(),
        }),
        Err(_) => Err("it has more than one dot".into()),
    }
}

impl Keyspace {
    /// Parses and validates one keyspace's VSchema JSON.
    pub fn from_json(json: &str) -> Result<Keyspace, VSchemaError> {
        Ok(Self::check_json(json)?.0)
    }

    /// Like [`Keyspace::from_json`], also returning notes: accepted things
    /// that do nothing (unknown fields, vindex types Tessera cannot compute
    /// yet, ignored settings) and deserve a warning to whoever applied them.
    pub fn check_json(json: &str) -> Result<(Keyspace, Vec<String>), VSchemaError> {
        let doc = parse_object(json)?;
        let keyspace: Keyspace = typed(json)?;
        keyspace.validate()?;
        let mut notes = Vec::new();
        unknown_keyspace_fields(&doc, &mut notes);
        notes.extend(keyspace.notes());
        Ok((keyspace, notes))
    }

    /// Parses without the semantic checks of [`Keyspace::validate`].
    pub fn parse(json: &str) -> Result<Keyspace, VSchemaError> {
        parse_object(json)?;
        typed(json)
    }

    /// The JSON form, indented; parses back to an equal `Keyspace`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Checks the rules a VSchema must follow on its own; the first broken
    /// one is reported. References to other keyspaces are checked by
    /// [`VSchema::validate`].
    pub fn validate(&self) -> Result<(), VSchemaError> {
        for (name, vindex) in &self.vindexes {
            self.validate_vindex(name, vindex)?;
        }
        for (name, table) in &self.tables {
            self.validate_table(name, table)?;
        }
        if let Some(spec) = &self.multi_tenant_spec {
            if spec.tenant_id_column_name.is_empty() {
                return Err(VSchemaError::MultiTenant(
                    "needs \"tenant_id_column_name\"".into(),
                ));
            }
            if !is_column_type(&spec.tenant_id_column_type) {
                return Err(VSchemaError::MultiTenant(format!(
                    "\"tenant_id_column_type\" \"{}\" is not a column type; known types: {}",
                    spec.tenant_id_column_type,
                    COLUMN_TYPES.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn validate_vindex(&self, name: &str, vindex: &Vindex) -> Result<(), VSchemaError> {
        if name.is_empty() {
            return Err(VSchemaError::vindex(
                name,
                "a vindex needs a non-empty name",
            ));
        }
        if vindex.vindex_type.is_empty() {
            return Err(VSchemaError::vindex(
                name,
                format!("has no \"type\"; known types: {}", known_vindex_types()),
            ));
        }
        let Some(info) = vindex_type(&vindex.vindex_type) else {
            return Err(VSchemaError::UnknownVindexType {
                vindex: name.to_string(),
                vindex_type: vindex.vindex_type.clone(),
                known: known_vindex_types(),
            });
        };
        for param in info.required_params {
            if vindex.params.get(*param).is_none_or(|v| v.is_empty()) {
                return Err(VSchemaError::vindex(
                    name,
                    format!("type \"{}\" needs param \"{param}\"", info.name),
                ));
            }
        }
        if !vindex.owner.is_empty() && !self.tables.contains_key(&vindex.owner) {
            return Err(VSchemaError::OwnerNotATable {
                vindex: name.to_string(),
                owner: vindex.owner.clone(),
            });
        }
        Ok(())
    }

    fn validate_table(&self, name: &str, table: &Table) -> Result<(), VSchemaError> {
        if name.is_empty() {
            return Err(VSchemaError::table(name, "a table needs a non-empty name"));
        }
        let pinned = !table.pinned.is_empty();
        if pinned {
            decode_hex(&table.pinned).map_err(|why| {
                VSchemaError::table(
                    name,
                    format!(
                        "\"pinned\" \"{}\" is not a hex keyspace id: {why}",
                        table.pinned
                    ),
                )
            })?;
        }
        if table.table_type == TableType::Sequence && self.sharded && !pinned {
            return Err(VSchemaError::SequenceInShardedKeyspace {
                table: name.to_string(),
            });
        }
        if table.table_type == TableType::Reference && !table.source.is_empty() {
            let source = parse_table_name(&table.source).map_err(|why| {
                VSchemaError::table(
                    name,
                    format!("\"source\" \"{}\" is not a table name: {why}", table.source),
                )
            })?;
            if source.keyspace.is_none() {
                return Err(VSchemaError::table(
                    name,
                    format!(
                        "\"source\" \"{}\" must name its keyspace, as \"keyspace.table\"",
                        table.source
                    ),
                ));
            }
        }

        let mut seen_columns = BTreeSet::new();
        for (i, column) in table.columns.iter().enumerate() {
            if column.name.is_empty() {
                return Err(VSchemaError::table(
                    name,
                    format!("column #{} needs a \"name\"", i + 1),
                ));
            }
            if !seen_columns.insert(column.name.to_ascii_lowercase()) {
                return Err(VSchemaError::table(
                    name,
                    format!("column \"{}\" is listed twice in \"columns\"", column.name),
                ));
            }
            if !column.column_type.is_empty() && !is_column_type(&column.column_type) {
                return Err(VSchemaError::table(
                    name,
                    format!(
                        "column \"{}\" has unknown type \"{}\"; known types: {}",
                        column.name,
                        column.column_type,
                        COLUMN_TYPES.join(", ")
                    ),
                ));
            }
        }

        for (i, cv) in table.column_vindexes.iter().enumerate() {
            self.validate_column_vindex(name, i, cv)?;
        }
        if self.sharded
            && table.table_type == TableType::Normal
            && !pinned
            && table.column_vindexes.is_empty()
        {
            return Err(VSchemaError::MissingPrimaryVindex {
                table: name.to_string(),
            });
        }

        if let Some(ai) = &table.auto_increment {
            if ai.column.is_empty() {
                return Err(VSchemaError::table(
                    name,
                    "\"auto_increment\" needs a \"column\"",
                ));
            }
            if ai.sequence.is_empty() {
                return Err(VSchemaError::table(
                    name,
                    "\"auto_increment\" needs a \"sequence\" (\"table\" or \"keyspace.table\")",
                ));
            }
            parse_table_name(&ai.sequence).map_err(|why| VSchemaError::BadSequenceName {
                table: name.to_string(),
                sequence: ai.sequence.clone(),
                why,
            })?;
        }
        Ok(())
    }

    fn validate_column_vindex(
        &self,
        table: &str,
        index: usize,
        cv: &ColumnVindex,
    ) -> Result<(), VSchemaError> {
        let place = format!("column_vindexes #{}", index + 1);
        if cv.name.is_empty() {
            return Err(VSchemaError::table(
                table,
                format!("{place} needs a \"name\" naming a vindex"),
            ));
        }
        let Some(vindex) = self.vindexes.get(&cv.name) else {
            return Err(VSchemaError::UndefinedVindex {
                table: table.to_string(),
                vindex: cv.name.clone(),
            });
        };
        match (cv.column.is_empty(), cv.columns.is_empty()) {
            (false, false) => {
                return Err(VSchemaError::table(
                    table,
                    format!(
                        "{place} (vindex \"{}\") has both \"column\" and \"columns\"; use one",
                        cv.name
                    ),
                ));
            }
            (true, true) => {
                return Err(VSchemaError::table(
                    table,
                    format!(
                        "{place} (vindex \"{}\") needs \"column\" or \"columns\"",
                        cv.name
                    ),
                ));
            }
            _ => {}
        }
        if cv.columns.iter().any(String::is_empty) {
            return Err(VSchemaError::table(
                table,
                format!(
                    "{place} (vindex \"{}\") has an empty name in \"columns\"",
                    cv.name
                ),
            ));
        }
        if index == 0 {
            // validate_vindex has already refused unknown types.
            let info = vindex_type(&vindex.vindex_type);
            if info.is_some_and(|t| !t.unique) {
                return Err(VSchemaError::PrimaryVindexNotUnique {
                    table: table.to_string(),
                    vindex: cv.name.clone(),
                    vindex_type: vindex.vindex_type.clone(),
                });
            }
            if info.is_some_and(|t| t.lookup) && vindex.owner == table {
                return Err(VSchemaError::PrimaryVindexOwned {
                    table: table.to_string(),
                    vindex: cv.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Accepted settings that have no effect, and vindex types Tessera does
    /// not compute yet; each worth a warning, none an error (Vitess takes
    /// them too).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for (name, vindex) in &self.vindexes {
            let Some(info) = vindex_type(&vindex.vindex_type) else {
                continue;
            };
            if !info.tessera_implements {
                notes.push(format!(
                    "vindex \"{name}\": Tessera does not implement type \"{}\" yet; tables using it cannot be routed",
                    info.name
                ));
            }
            if !vindex.owner.is_empty() && !info.lookup {
                notes.push(format!(
                    "vindex \"{name}\": \"owner\" has no effect on a {} vindex (only lookup vindexes have owners)",
                    info.name
                ));
            }
        }
        for (name, table) in &self.tables {
            if !table.column_vindexes.is_empty() {
                if !self.sharded {
                    notes.push(format!(
                        "table \"{name}\": \"column_vindexes\" do not route anything in an unsharded keyspace"
                    ));
                } else if table.table_type != TableType::Normal {
                    notes.push(format!(
                        "table \"{name}\": \"column_vindexes\" are ignored for a {} table",
                        table.table_type.as_str()
                    ));
                }
            }
            if !table.source.is_empty() && table.table_type != TableType::Reference {
                notes.push(format!(
                    "table \"{name}\": \"source\" is only used by reference tables and is ignored"
                ));
            }
        }
        notes
    }

    /// The table's primary column vindex and its definition.
    pub fn primary_vindex(&self, table: &str) -> Option<(&ColumnVindex, &Vindex)> {
        let cv = self.tables.get(table)?.column_vindexes.first()?;
        Some((cv, self.vindexes.get(&cv.name)?))
    }
}

impl RoutingRules {
    /// Parses and checks routing rules JSON on its own.
    pub fn from_json(json: &str) -> Result<RoutingRules, VSchemaError> {
        parse_object(json)?;
        let rules: RoutingRules = typed(json)?;
        rules.validate()?;
        Ok(rules)
    }

    /// Checks each rule's names; whether targets exist is for
    /// [`VSchema::validate`].
    pub fn validate(&self) -> Result<(), VSchemaError> {
        let mut seen = BTreeSet::new();
        for rule in &self.rules {
            let bad = |problem: String| VSchemaError::RoutingRule {
                from_table: rule.from_table.clone(),
                problem,
            };
            let (table, tablet_type) = match rule.from_table.rsplit_once('@') {
                Some((table, tablet_type)) => (table, Some(tablet_type)),
                None => (rule.from_table.as_str(), None),
            };
            if tablet_type.is_some_and(|t| !matches!(t, "primary" | "replica" | "rdonly")) {
                return Err(bad(
                    "the tablet type after @ must be primary, replica or rdonly".into(),
                ));
            }
            parse_table_name(table)
                .map_err(|why| bad(format!("\"from_table\" is not a table name: {why}")))?;
            if !seen.insert(rule.from_table.as_str()) {
                return Err(bad("there is more than one rule for this table".into()));
            }
            if rule.to_tables.len() > 1 {
                return Err(bad(format!(
                    "it has {} targets; a table routes to one",
                    rule.to_tables.len()
                )));
            }
            for target in &rule.to_tables {
                let name = parse_table_name(target).map_err(|why| {
                    bad(format!("target \"{target}\" is not a table name: {why}"))
                })?;
                if name.keyspace.is_none() {
                    return Err(bad(format!(
                        "target \"{target}\" must name its keyspace, as \"keyspace.table\""
                    )));
                }
            }
        }
        Ok(())
    }
}

impl VSchema {
    /// Checks every keyspace, then what crosses keyspaces: auto-increment
    /// sequences, reference sources, routing rule targets.
    pub fn validate(&self) -> Result<(), VSchemaError> {
        for (name, keyspace) in &self.keyspaces {
            keyspace.validate().map_err(|e| e.in_keyspace(name))?;
        }
        self.routing_rules.validate()?;
        for (ks_name, keyspace) in &self.keyspaces {
            for (table_name, table) in &keyspace.tables {
                let in_table =
                    |problem: String| VSchemaError::table(table_name, problem).in_keyspace(ks_name);
                if let Some(ai) = &table.auto_increment {
                    self.find_sequence(&ai.sequence).map_err(|why| {
                        in_table(format!("auto_increment sequence \"{}\" {why}", ai.sequence))
                    })?;
                }
                if table.table_type == TableType::Reference && !table.source.is_empty() {
                    let source = parse_table_name(&table.source).map_err(&in_table)?;
                    let source_ks = source.keyspace.as_deref().unwrap_or(ks_name);
                    if source_ks == ks_name {
                        return Err(in_table(format!(
                            "reference \"source\" \"{}\" must be in another keyspace",
                            table.source
                        )));
                    }
                    let found = self
                        .keyspaces
                        .get(source_ks)
                        .and_then(|ks| ks.tables.get(&source.table));
                    match found {
                        None => {
                            return Err(in_table(format!(
                                "reference \"source\" \"{}\" is not a table of the VSchema",
                                table.source
                            )));
                        }
                        Some(t) if t.table_type == TableType::Sequence => {
                            return Err(in_table(format!(
                                "reference \"source\" \"{}\" is a sequence table",
                                table.source
                            )));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        for rule in &self.routing_rules.rules {
            for target in &rule.to_tables {
                let name = parse_table_name(target).map_err(|why| VSchemaError::RoutingRule {
                    from_table: rule.from_table.clone(),
                    problem: why,
                })?;
                let ks_name = name.keyspace.as_deref().unwrap_or_default();
                let exists = self.keyspaces.get(ks_name).map(|ks| {
                    // An unsharded keyspace serves any table it has, listed or not.
                    !ks.sharded || ks.tables.contains_key(&name.table)
                });
                let problem = match exists {
                    None => format!(
                        "target \"{target}\" is in keyspace \"{ks_name}\", which has no VSchema"
                    ),
                    Some(false) => format!(
                        "target \"{target}\" is not a table of sharded keyspace \"{ks_name}\""
                    ),
                    Some(true) => continue,
                };
                return Err(VSchemaError::RoutingRule {
                    from_table: rule.from_table.clone(),
                    problem,
                });
            }
        }
        Ok(())
    }

    /// Finds the sequence table `name` (`table` or `keyspace.table`) names:
    /// an unqualified name must be a table of exactly one keyspace that does
    /// not require explicit routing.
    pub fn find_sequence(&self, name: &str) -> Result<TableName, String> {
        let parsed = parse_table_name(name).map_err(|why| format!("is not a table name: {why}"))?;
        let found: Vec<(&String, &Table)> = match &parsed.keyspace {
            Some(ks) => {
                let keyspace = self
                    .keyspaces
                    .get(ks)
                    .ok_or_else(|| format!("names keyspace \"{ks}\", which has no VSchema"))?;
                keyspace
                    .tables
                    .get(&parsed.table)
                    .map(|t| (ks, t))
                    .into_iter()
                    .collect()
            }
            None => self
                .keyspaces
                .iter()
                .filter(|(_, ks)| !ks.require_explicit_routing)
                .filter_map(|(ks_name, ks)| ks.tables.get(&parsed.table).map(|t| (ks_name, t)))
                .collect(),
        };
        match found.as_slice() {
            [] => Err("is not a table of the VSchema".into()),
            [(ks, table)] if table.table_type == TableType::Sequence => Ok(TableName {
                keyspace: Some((*ks).clone()),
                table: parsed.table,
            }),
            [(ks, _)] => Err(format!(
                "is table \"{ks}.{}\", which is not of type \"sequence\"",
                parsed.table
            )),
            several => Err(format!(
                "is ambiguous: keyspaces {} all have it; write \"keyspace.table\"",
                several
                    .iter()
                    .map(|(ks, _)| format!("\"{ks}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

fn parse_object(json: &str) -> Result<Value, VSchemaError> {
    if json.trim().is_empty() {
        return Err(VSchemaError::Empty);
    }
    let doc: Value = serde_json::from_str(json).map_err(|e| VSchemaError::Syntax(e.to_string()))?;
    if !doc.is_object() {
        return Err(VSchemaError::NotAnObject(kind_of(&doc).to_string()));
    }
    Ok(doc)
}

/// Deserializes `json` as `T`, naming the path of a misshapen field.
fn typed<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, VSchemaError> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| VSchemaError::Shape {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

const KEYSPACE_FIELDS: &[&str] = &[
    "sharded",
    "vindexes",
    "tables",
    "require_explicit_routing",
    "requireExplicitRouting",
    "foreign_key_mode",
    "foreignKeyMode",
    "multi_tenant_spec",
    "multiTenantSpec",
];
const VINDEX_FIELDS: &[&str] = &["type", "params", "owner"];
const TABLE_FIELDS: &[&str] = &[
    "type",
    "column_vindexes",
    "columnVindexes",
    "auto_increment",
    "autoIncrement",
    "columns",
    "pinned",
    "column_list_authoritative",
    "columnListAuthoritative",
    "source",
];
const COLUMN_VINDEX_FIELDS: &[&str] = &["column", "columns", "name"];
const AUTO_INCREMENT_FIELDS: &[&str] = &["column", "sequence"];
const COLUMN_FIELDS: &[&str] = &[
    "name",
    "type",
    "invisible",
    "default",
    "collation_name",
    "collationName",
    "size",
    "scale",
    "nullable",
    "values",
];
const MULTI_TENANT_FIELDS: &[&str] = &[
    "tenant_id_column_name",
    "tenantIdColumnName",
    "tenant_id_column_type",
    "tenantIdColumnType",
];

fn unknown_fields(value: Option<&Value>, known: &[&str], path: &str, notes: &mut Vec<String>) {
    let Some(Value::Object(obj)) = value else {
        return;
    };
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" in {path}")
            };
            notes.push(format!(
                "unknown field \"{key}\"{at} is ignored (known: {})",
                known.join(", ")
            ));
        }
    }
}

fn field<'a>(value: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| value.get(*n))
}

fn unknown_keyspace_fields(doc: &Value, notes: &mut Vec<String>) {
    unknown_fields(Some(doc), KEYSPACE_FIELDS, "", notes);
    if let Some(Value::Object(vindexes)) = doc.get("vindexes") {
        for (name, vindex) in vindexes {
            unknown_fields(
                Some(vindex),
                VINDEX_FIELDS,
                &format!("vindex \"{name}\""),
                notes,
            );
        }
    }
    if let Some(Value::Object(tables)) = doc.get("tables") {
        for (name, table) in tables {
            let place = format!("table \"{name}\"");
            unknown_fields(Some(table), TABLE_FIELDS, &place, notes);
            if let Some(Value::Array(cvs)) = field(table, &["column_vindexes", "columnVindexes"]) {
                for (i, cv) in cvs.iter().enumerate() {
                    let at = format!("{place} column_vindexes #{}", i + 1);
                    unknown_fields(Some(cv), COLUMN_VINDEX_FIELDS, &at, notes);
                }
            }
            let ai = field(table, &["auto_increment", "autoIncrement"]);
            let at = format!("{place} auto_increment");
            unknown_fields(ai, AUTO_INCREMENT_FIELDS, &at, notes);
            if let Some(Value::Array(columns)) = table.get("columns") {
                for (i, column) in columns.iter().enumerate() {
                    let at = format!("{place} column #{}", i + 1);
                    unknown_fields(Some(column), COLUMN_FIELDS, &at, notes);
                }
            }
        }
    }
    let spec = field(doc, &["multi_tenant_spec", "multiTenantSpec"]);
    unknown_fields(spec, MULTI_TENANT_FIELDS, "multi_tenant_spec", notes);
}

fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("odd number of digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("{:?} is not a hex byte", &text[i..]))
        })
        .collect()
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value's kind, and the value itself when short.
fn describe(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) | Value::Null => kind_of(v).to_string(),
        scalar => format!("{} {scalar}", kind_of(scalar)),
    }
}

/// Protobuf JSON lets any field be `null`, meaning its default.
fn de_nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn de_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Null => Ok(false),
        other => Err(D::Error::custom(format!(
            "must be true or false, found {}",
            describe(&other)
        ))),
    }
}

fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        other => Err(D::Error::custom(format!(
            "must be a string, found {}",
            describe(&other)
        ))),
    }
}

fn de_params<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let params = match Value::deserialize(d)? {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(params) => params,
        other => {
            return Err(D::Error::custom(format!(
                "must be an object of name -> string, found {}",
                describe(&other)
            )));
        }
    };
    params
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(D::Error::custom(format!(
                        "param \"{key}\" must be a string, found {}",
                        describe(&other)
                    )));
                }
            };
            Ok((key, text))
        })
        .collect()
}
