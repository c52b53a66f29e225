//! The SQL a lookup vindex runs against its lookup table, and the decoding
//! of its answers: map values to keyspace ids, verify, and keep owned
//! entries in step with inserts, updates and deletes of the owner table.
//! Pure functions; the executor runs the statements.
//!
//! Behaviour follows Vitess's:
//! - `write_only` (a lookup being backfilled): mapping answers "every shard"
//!   without a query and verification always passes; writes still maintain
//!   the table.
//! - `ignore_nulls`: rows whose `from` values hold a NULL are not inserted
//!   (without it they are an error); mapping a single NULL of a non-unique
//!   lookup answers "every shard".
//! - `autocommit` (lookup, lookup_unique): inserts commit on their own, so
//!   deleting entries is never safe and is skipped; a non-unique lookup then
//!   upserts (`ON DUPLICATE KEY UPDATE`) so a retried insert does not fail.
//! - `lookup_hash[_unique]`: the `to` column holds the 64-bit number whose
//!   `hash` is the keyspace id, rather than the keyspace id itself.
//! - Rows of a multi-row insert are sorted by value before they are
//!   written, so two transactions lock lookup rows in the same order.
//!
//! Consistent lookups (consistent_lookup[_unique]) order their writes so
//! that a lookup row exists for every owner row at every moment (it may
//! point at a row that no longer exists, never miss one):
//! 1. lookup inserts and updates run in a separate "pre" transaction that
//!    commits before the owner's transaction;
//! 2. the owner's DML runs and commits in the normal transaction;
//! 3. lookup deletes run in a "post" transaction that commits after it.
//!
//! An insert that hits a duplicate lookup row is resolved by
//! [`resolve_consistent_duplicate`]: lock the lookup row
//! ([`ConsistentStatements::lock_lookup`]); if absent, insert it; if it
//! points at an owner row that still exists
//! ([`ConsistentStatements::lock_owner`], run on the shard of that keyspace
//! id), the duplicate is real; else the stale row is taken over
//! ([`ConsistentStatements::update_lookup`]) unless it already points at the
//! new row's keyspace id. An update that does not change the `from` values
//! does not touch the lookup table.

use std::fmt::Write as _;

use des::Des;
use des::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};

use super::{KeyspaceId, LookupParams, VindexValue, create_vindex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupSqlError {
    #[error("lookup table '{table}': input has a NULL value in row {row}, column {column}")]
    NullValue {
        table: String,
        row: usize,
        column: usize,
    },
    #[error(
        "lookup table '{table}': {given} values given for the {expected} 'from' columns ({columns})"
    )]
    ColumnCount {
        table: String,
        given: usize,
        expected: usize,
        columns: String,
    },
    #[error("lookup table '{table}': unexpected multiple results for {value}")]
    MultipleResults { table: String, value: String },
    #[error("lookup table '{table}': malformed answer: {reason}")]
    BadAnswer { table: String, reason: String },
    #[error("lookup table '{table}': keyspace id {ksid} is not 8 bytes, as lookup_hash needs")]
    NotHashable { table: String, ksid: KeyspaceId },
}

/// Which lookup type the statements are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupKind {
    pub unique: bool,
    /// lookup_hash types: `to` holds a number hashed into the keyspace id.
    pub hashed: bool,
    pub consistent: bool,
}

impl LookupKind {
    /// The kind of a vindex type name; None for non-lookup types.
    pub fn of(vindex_type: &str) -> Option<LookupKind> {
        let (consistent, hashed, unique) = match vindex_type {
            "lookup" => (false, false, false),
            "lookup_unique" => (false, false, true),
            "lookup_hash" => (false, true, false),
            "lookup_hash_unique" => (false, true, true),
            "consistent_lookup" => (true, false, false),
            "consistent_lookup_unique" => (true, false, true),
            _ => return None,
        };
        Some(LookupKind {
            unique,
            hashed,
            consistent,
        })
    }
}

/// Row locks a lookup read inside a DML transaction takes (`read_lock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLock {
    Exclusive,
    Shared,
    None,
}

impl ReadLock {
    /// The lock of `params.read_lock` (default exclusive, as in Vitess).
    pub fn of(params: &LookupParams) -> ReadLock {
        match params.read_lock.as_deref() {
            Some("shared") => ReadLock::Shared,
            Some("none") => ReadLock::None,
            _ => ReadLock::Exclusive,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            ReadLock::Exclusive => " FOR UPDATE",
            ReadLock::Shared => " LOCK IN SHARE MODE",
            ReadLock::None => "",
        }
    }
}

/// Where one looked-up value routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Not in the lookup table: no shard has the row.
    None,
    KeyspaceIds(Vec<KeyspaceId>),
    /// Unknown (write_only, or NULL with ignore_nulls): every shard.
    AllShards,
}

/// How to map a list of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapPlan {
    /// No query needed: one destination per value.
    Known(Vec<Destination>),
    /// Run `sql` (on the lookup table's keyspace) and pass its rows to
    /// [`decode_map`].
    Query { sql: String },
}

/// `name` as a backquoted identifier; a `ks.table` name is quoted per part.
fn quote_name(name: &str) -> String {
    name.split('.')
        .map(|part| format!("`{}`", part.trim().replace('`', "``")))
        .collect::<Vec<_>>()
        .join(".")
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// A value as an SQL literal whose meaning does not depend on the
/// connection's sql_mode or character set: text as a utf8mb4 hex literal
/// (so the column's collation compares it, as with a quoted string), other
/// bytes as a binary literal.
pub fn literal(value: &VindexValue<'_>) -> String {
    match value {
        VindexValue::Null => "NULL".to_string(),
        VindexValue::Int(i) => i.to_string(),
        VindexValue::UInt(u) => u.to_string(),
        VindexValue::Bytes([]) => "''".to_string(),
        VindexValue::Bytes(b) if std::str::from_utf8(b).is_ok() => {
            format!("_utf8mb4 X'{}'", hex(b))
        }
        VindexValue::Bytes(b) => format!("_binary X'{}'", hex(b)),
    }
}

/// What the `to` column stores for keyspace id `ksid`.
fn to_literal(
    params: &LookupParams,
    kind: LookupKind,
    ksid: &KeyspaceId,
) -> Result<String, LookupSqlError> {
    if kind.hashed {
        return unhash(ksid)
            .map(|n| n.to_string())
            .ok_or_else(|| LookupSqlError::NotHashable {
                table: params.table.clone(),
                ksid: ksid.clone(),
            });
    }
    Ok(format!("_binary X'{}'", hex(ksid.as_bytes())))
}

/// The number whose `hash` vindex value is `ksid` (DES with a zero key is
/// a bijection, so decrypting inverts it).
fn unhash(ksid: &KeyspaceId) -> Option<u64> {
    let bytes: [u8; 8] = ksid.as_bytes().try_into().ok()?;
    let cipher = Des::new(&GenericArray::from([0u8; 8]));
    let mut block = GenericArray::from(bytes);
    cipher.decrypt_block(&mut block);
    Some(u64::from_be_bytes(block.into()))
}

/// The keyspace id a `to` cell stands for.
fn decode_to(
    params: &LookupParams,
    kind: LookupKind,
    cell: &[u8],
) -> Result<KeyspaceId, LookupSqlError> {
    if !kind.hashed {
        return Ok(KeyspaceId(cell.to_vec()));
    }
    let bad = |reason: String| LookupSqlError::BadAnswer {
        table: params.table.clone(),
        reason,
    };
    let n: u64 = std::str::from_utf8(cell)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            bad(format!(
                "'to' value {:?} is not an unsigned 64-bit number",
                String::from_utf8_lossy(cell)
            ))
        })?;
    let hash = create_vindex("lookup_hash", "hash", &Default::default())
        .map_err(|e| bad(e.to_string()))?;
    hash.map(&VindexValue::UInt(n))
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad(format!("hash of {n} is empty")))
}

fn all_integers(values: &[VindexValue<'_>]) -> bool {
    values.iter().all(|v| {
        matches!(
            v,
            VindexValue::Int(_) | VindexValue::UInt(_) | VindexValue::Null
        )
    })
}

/// How to map `values` of the first `from` column through the lookup
/// table. `for_dml`: inside a DML transaction, where `read_lock` applies.
///
/// All-integer lists are asked with one `IN`; any other list is asked as one
/// `UNION ALL` of single-value selects tagged with the value's position, so
/// each answer row is attributed by the server's own comparison (a
/// case-insensitive collation may match `'ABC'` to `'abc'`).
pub fn map_plan(
    params: &LookupParams,
    kind: LookupKind,
    values: &[VindexValue<'_>],
    for_dml: bool,
) -> MapPlan {
    if params.write_only {
        return MapPlan::Known(vec![Destination::AllShards; values.len()]);
    }
    if !kind.unique && params.ignore_nulls && values == [VindexValue::Null] {
        return MapPlan::Known(vec![Destination::AllShards]);
    }
    if values.iter().all(|v| *v == VindexValue::Null) {
        return MapPlan::Known(vec![Destination::None; values.len()]);
    }
    let lock = if for_dml {
        ReadLock::of(params).suffix()
    } else {
        ""
    };
    let table = quote_name(&params.table);
    let from = quote_name(&params.from[0]);
    let to = quote_name(&params.to);
    let sql = if all_integers(values) {
        let list: Vec<String> = values
            .iter()
            .filter(|v| **v != VindexValue::Null)
            .map(literal)
            .collect();
        format!(
            "SELECT {from}, {to} FROM {table} WHERE {from} IN ({}){lock}",
            list.join(", ")
        )
    } else {
        let parts: Vec<String> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != VindexValue::Null)
            .map(|(i, v)| {
                format!(
                    "(SELECT {i}, {to} FROM {table} WHERE {from} = {}{lock})",
                    literal(v)
                )
            })
            .collect();
        parts.join(" UNION ALL ")
    };
    MapPlan::Query { sql }
}

/// One destination per value from the rows of a [`MapPlan::Query`].
pub fn decode_map(
    params: &LookupParams,
    kind: LookupKind,
    values: &[VindexValue<'_>],
    rows: &[Vec<Option<Vec<u8>>>],
) -> Result<Vec<Destination>, LookupSqlError> {
    let bad = |reason: String| LookupSqlError::BadAnswer {
        table: params.table.clone(),
        reason,
    };
    let integers = all_integers(values);
    let mut found: Vec<Vec<KeyspaceId>> = vec![Vec::new(); values.len()];
    for row in rows {
        let [key, to] = row.as_slice() else {
            return Err(bad(format!("expected 2 columns, got {}", row.len())));
        };
        let Some(to) = to else {
            // A NULL keyspace id routes nowhere.
            continue;
        };
        let key = key
            .as_deref()
            .ok_or_else(|| bad("NULL 'from' value".to_string()))?;
        let key = std::str::from_utf8(key).map_err(|_| bad("non-text key".to_string()))?;
        let positions: Vec<usize> = if integers {
            let n: i128 = key
                .trim()
                .parse()
                .map_err(|_| bad(format!("'from' value {key:?} is not an integer")))?;
            values
                .iter()
                .enumerate()
                .filter(|(_, v)| match v {
                    VindexValue::Int(i) => i128::from(*i) == n,
                    VindexValue::UInt(u) => i128::from(*u) == n,
                    _ => false,
                })
                .map(|(i, _)| i)
                .collect()
        } else {
            let i: usize = key
                .parse()
                .ok()
                .filter(|i| *i < values.len())
                .ok_or_else(|| bad(format!("unknown value position {key:?}")))?;
            vec![i]
        };
        let ksid = decode_to(params, kind, to)?;
        for i in positions {
            found[i].push(ksid.clone());
        }
    }
    found
        .into_iter()
        .zip(values)
        .map(|(mut ksids, value)| match ksids.len() {
            0 => Ok(Destination::None),
            1 => Ok(Destination::KeyspaceIds(ksids)),
            _ if kind.unique => Err(LookupSqlError::MultipleResults {
                table: params.table.clone(),
                value: value.to_string(),
            }),
            _ => {
                ksids.sort();
                ksids.dedup();
                Ok(Destination::KeyspaceIds(ksids))
            }
        })
        .collect()
}

/// The statement verifying that `value` maps to `ksid`; it returns a row
/// when it does. None when the lookup trusts its owner (write_only, or
/// no_verify on lookup/lookup_unique).
pub fn verify_sql(
    params: &LookupParams,
    kind: LookupKind,
    value: &VindexValue<'_>,
    ksid: &KeyspaceId,
) -> Result<Option<String>, LookupSqlError> {
    if params.write_only || (params.no_verify && !kind.consistent) {
        return Ok(None);
    }
    let from = quote_name(&params.from[0]);
    Ok(Some(format!(
        "SELECT {from} FROM {} WHERE {from} = {} AND {} = {}",
        quote_name(&params.table),
        literal(value),
        quote_name(&params.to),
        to_literal(params, kind, ksid)?
    )))
}

fn check_columns(params: &LookupParams, given: usize) -> Result<(), LookupSqlError> {
    if given != params.from.len() {
        return Err(LookupSqlError::ColumnCount {
            table: params.table.clone(),
            given,
            expected: params.from.len(),
            columns: params.from.join(", "),
        });
    }
    Ok(())
}

/// The insert creating the entries of owner rows: per row, the values of
/// the `from` columns and the row's keyspace id. `ignore`: the owner's
/// statement was INSERT IGNORE. None when every row was skipped for NULLs.
pub fn insert_sql(
    params: &LookupParams,
    kind: LookupKind,
    rows: &[(Vec<VindexValue<'_>>, KeyspaceId)],
    ignore: bool,
) -> Result<Option<String>, LookupSqlError> {
    let mut tuples: Vec<(Vec<String>, String)> = Vec::with_capacity(rows.len());
    for (row_index, (values, ksid)) in rows.iter().enumerate() {
        check_columns(params, values.len())?;
        if let Some(column) = values.iter().position(|v| *v == VindexValue::Null) {
            if params.ignore_nulls {
                continue;
            }
            return Err(LookupSqlError::NullValue {
                table: params.table.clone(),
                row: row_index,
                column,
            });
        }
        tuples.push((
            values.iter().map(literal).collect(),
            to_literal(params, kind, ksid)?,
        ));
    }
    if tuples.is_empty() {
        return Ok(None);
    }
    tuples.sort();
    let mut columns: Vec<String> = params.from.iter().map(|c| quote_name(c)).collect();
    columns.push(quote_name(&params.to));
    let rows: Vec<String> = tuples
        .into_iter()
        .map(|(mut values, to)| {
            values.push(to);
            format!("({})", values.join(", "))
        })
        .collect();
    let mut sql = format!(
        "INSERT{} INTO {} ({}) VALUES {}",
        if ignore { " IGNORE" } else { "" },
        quote_name(&params.table),
        columns.join(", "),
        rows.join(", ")
    );
    let upsert =
        !kind.unique && !kind.consistent && (params.autocommit || params.multi_shard_autocommit);
    if upsert {
        let updates: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = VALUES({c})"))
            .collect();
        let _ = write!(sql, " ON DUPLICATE KEY UPDATE {}", updates.join(", "));
    }
    Ok(Some(sql))
}

/// The deletes removing the entries of owner rows that all live at `ksid`
/// (one statement per row). Empty with `autocommit` (lookup types), where
/// deleting is never safe; rows with a NULL were never inserted.
pub fn delete_sql(
    params: &LookupParams,
    kind: LookupKind,
    rows: &[Vec<VindexValue<'_>>],
    ksid: &KeyspaceId,
) -> Result<Vec<String>, LookupSqlError> {
    if (params.autocommit || params.multi_shard_autocommit) && !kind.consistent {
        return Ok(Vec::new());
    }
    let to = format!(
        "{} = {}",
        quote_name(&params.to),
        to_literal(params, kind, ksid)?
    );
    let mut out = Vec::with_capacity(rows.len());
    for values in rows {
        check_columns(params, values.len())?;
        if values.contains(&VindexValue::Null) {
            continue;
        }
        let conditions: Vec<String> = params
            .from
            .iter()
            .zip(values)
            .map(|(c, v)| format!("{} = {}", quote_name(c), literal(v)))
            .collect();
        out.push(format!(
            "DELETE FROM {} WHERE {} AND {to}",
            quote_name(&params.table),
            conditions.join(" AND ")
        ));
    }
    Ok(out)
}

/// An owner row's `from` values changed from `old` to `new`: the statements
/// to run, deletes first. Empty when nothing changed (compared exactly; a
/// collation-equal change still rewrites the entry, which is harmless).
pub fn update_sql(
    params: &LookupParams,
    kind: LookupKind,
    old: &[VindexValue<'_>],
    new: &[VindexValue<'_>],
    ksid: &KeyspaceId,
) -> Result<Vec<String>, LookupSqlError> {
    check_columns(params, old.len())?;
    check_columns(params, new.len())?;
    if old == new {
        return Ok(Vec::new());
    }
    let mut out = delete_sql(params, kind, &[old.to_vec()], ksid)?;
    out.extend(insert_sql(
        params,
        kind,
        &[(new.to_vec(), ksid.clone())],
        false,
    )?);
    Ok(out)
}

/// The statements a consistent lookup uses to resolve a duplicate on
/// insert; see the module docs for the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistentStatements {
    /// Locks the lookup row and reads its keyspace id (pre transaction).
    pub lock_lookup: String,
    /// Locks the owner row the lookup row points at, in share mode (normal
    /// transaction, on that keyspace id's shard); a row back means the
    /// duplicate is real.
    pub lock_owner: String,
    /// Inserts the single entry (pre transaction).
    pub insert: String,
    /// Points the stale entry at the new keyspace id (pre transaction).
    pub update_lookup: String,
}

/// The duplicate-resolution statements for one owner row's `from` values
/// (`values`), the owner table and its vindex columns, and the new row's
/// keyspace id.
pub fn consistent_statements(
    params: &LookupParams,
    kind: LookupKind,
    owner_table: &str,
    owner_columns: &[String],
    values: &[VindexValue<'_>],
    ksid: &KeyspaceId,
) -> Result<ConsistentStatements, LookupSqlError> {
    check_columns(params, values.len())?;
    check_columns(params, owner_columns.len())?;
    if let Some(column) = values.iter().position(|v| *v == VindexValue::Null) {
        return Err(LookupSqlError::NullValue {
            table: params.table.clone(),
            row: 0,
            column,
        });
    }
    let table = quote_name(&params.table);
    let to = quote_name(&params.to);
    let where_of = |columns: &[String]| -> String {
        columns
            .iter()
            .zip(values)
            .map(|(c, v)| format!("{} = {}", quote_name(c), literal(v)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let lookup_where = where_of(&params.from);
    let ksid_literal = to_literal(params, kind, ksid)?;
    let insert = format!(
        "INSERT INTO {table} ({}, {to}) VALUES ({}, {ksid_literal})",
        params
            .from
            .iter()
            .map(|c| quote_name(c))
            .collect::<Vec<_>>()
            .join(", "),
        values.iter().map(literal).collect::<Vec<_>>().join(", ")
    );
    Ok(ConsistentStatements {
        lock_lookup: format!("SELECT {to} FROM {table} WHERE {lookup_where} FOR UPDATE"),
        lock_owner: format!(
            "SELECT {} FROM {} WHERE {} LOCK IN SHARE MODE",
            quote_name(&owner_columns[0]),
            quote_name(owner_table),
            where_of(owner_columns)
        ),
        insert,
        update_lookup: format!("UPDATE {table} SET {to} = {ksid_literal} WHERE {lookup_where}"),
    })
}

/// What to do about a duplicate-key error on a consistent lookup insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuplicateResolution {
    /// The lookup row is gone meanwhile: run `insert`.
    Insert,
    /// Lock the owner row at this keyspace id with `lock_owner`, then call
    /// [`resolve_consistent_duplicate`] again with its answer.
    CheckOwner(KeyspaceId),
    /// A live owner row has the value: report the duplicate-key error.
    Duplicate,
    /// The stale entry already points at the new row: nothing to do.
    AlreadyCurrent,
    /// The stale entry points at a row that is gone: run `update_lookup`.
    TakeOver,
}

/// The next step of duplicate resolution, given the rows `lock_lookup`
/// returned and, once asked, how many rows `lock_owner` returned.
pub fn resolve_consistent_duplicate(
    params: &LookupParams,
    kind: LookupKind,
    lookup_rows: &[Vec<Option<Vec<u8>>>],
    owner_rows: Option<usize>,
    ksid: &KeyspaceId,
) -> Result<DuplicateResolution, LookupSqlError> {
    let existing = match lookup_rows {
        [] => return Ok(DuplicateResolution::Insert),
        [row] => match row.first() {
            Some(Some(cell)) => decode_to(params, kind, cell)?,
            _ => {
                return Err(LookupSqlError::BadAnswer {
                    table: params.table.clone(),
                    reason: "lookup row without a keyspace id".into(),
                });
            }
        },
        _ => {
            return Err(LookupSqlError::BadAnswer {
                table: params.table.clone(),
                reason: format!("{} lookup rows for one value", lookup_rows.len()),
            });
        }
    };
    Ok(match owner_rows {
        None => DuplicateResolution::CheckOwner(existing),
        Some(n) if n > 0 => DuplicateResolution::Duplicate,
        Some(_) if existing == *ksid => DuplicateResolution::AlreadyCurrent,
        Some(_) => DuplicateResolution::TakeOver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(from: &[&str]) -> LookupParams {
        LookupParams {
            table: "customer.email_lookup".into(),
            from: from.iter().map(|s| s.to_string()).collect(),
            to: "keyspace_id".into(),
            autocommit: false,
            multi_shard_autocommit: false,
            write_only: false,
            ignore_nulls: false,
            batch_lookup: false,
            no_verify: false,
            read_lock: None,
        }
    }

    const LOOKUP: LookupKind = LookupKind {
        unique: false,
        hashed: false,
        consistent: false,
    };
    const UNIQUE: LookupKind = LookupKind {
        unique: true,
        hashed: false,
        consistent: false,
    };

    fn ksid(b: &[u8]) -> KeyspaceId {
        KeyspaceId(b.to_vec())
    }

    fn row(cells: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
        cells.iter().map(|c| Some(c.to_vec())).collect()
    }

    #[test]
    fn kinds_of_every_lookup_type() {
        assert_eq!(LookupKind::of("lookup"), Some(LOOKUP));
        assert_eq!(LookupKind::of("lookup_unique"), Some(UNIQUE));
        assert!(LookupKind::of("lookup_hash_unique").unwrap().hashed);
        assert!(LookupKind::of("consistent_lookup").unwrap().consistent);
        assert_eq!(LookupKind::of("hash"), None);
    }

    #[test]
    fn literals_do_not_depend_on_sql_mode() {
        assert_eq!(literal(&VindexValue::Int(-5)), "-5");
        assert_eq!(
            literal(&VindexValue::Bytes(b"a'b\\")),
            "_utf8mb4 X'6127625C'"
        );
        assert_eq!(literal(&VindexValue::Bytes(&[0xff, 0])), "_binary X'FF00'");
        assert_eq!(literal(&VindexValue::Bytes(b"")), "''");
        assert_eq!(literal(&VindexValue::Null), "NULL");
        assert_eq!(quote_name("ks.t`x"), "`ks`.`t``x`");
    }

    #[test]
    fn integer_values_map_with_one_in_list() {
        let p = params(&["id"]);
        let values = [
            VindexValue::Int(3),
            VindexValue::UInt(7),
            VindexValue::Int(9),
        ];
        let MapPlan::Query { sql } = map_plan(&p, LOOKUP, &values, false) else {
            panic!("expected a query");
        };
        assert_eq!(
            sql,
            "SELECT `id`, `keyspace_id` FROM `customer`.`email_lookup` WHERE `id` IN (3, 7, 9)"
        );
        let rows = vec![
            row(&[b"7", b"\x10"]),
            row(&[b"3", b"\x20"]),
            row(&[b"7", b"\x30"]),
        ];
        let out = decode_map(&p, LOOKUP, &values, &rows).unwrap();
        assert_eq!(
            out,
            vec![
                Destination::KeyspaceIds(vec![ksid(b"\x20")]),
                Destination::KeyspaceIds(vec![ksid(b"\x10"), ksid(b"\x30")]),
                Destination::None,
            ]
        );
        // A unique lookup refuses two keyspace ids for one value.
        let err = decode_map(&p, UNIQUE, &values, &rows).unwrap_err();
        assert!(
            matches!(err, LookupSqlError::MultipleResults { .. }),
            "{err}"
        );
    }

    #[test]
    fn text_values_map_by_position_and_lock_in_dml() {
        let mut p = params(&["email"]);
        p.read_lock = Some("shared".into());
        let values = [
            VindexValue::Bytes(b"a@x"),
            VindexValue::Null,
            VindexValue::Bytes(b"B@x"),
        ];
        let MapPlan::Query { sql } = map_plan(&p, UNIQUE, &values, true) else {
            panic!("expected a query");
        };
        assert_eq!(
            sql,
            "(SELECT 0, `keyspace_id` FROM `customer`.`email_lookup` WHERE `email` = _utf8mb4 X'614078' LOCK IN SHARE MODE) \
             UNION ALL (SELECT 2, `keyspace_id` FROM `customer`.`email_lookup` WHERE `email` = _utf8mb4 X'424078' LOCK IN SHARE MODE)"
        );
        let rows = vec![row(&[b"2", b"\x80"])];
        assert_eq!(
            decode_map(&p, UNIQUE, &values, &rows).unwrap(),
            vec![
                Destination::None,
                Destination::None,
                Destination::KeyspaceIds(vec![ksid(b"\x80")])
            ]
        );
        // Out of a DML transaction no lock is taken.
        let MapPlan::Query { sql } = map_plan(&p, UNIQUE, &values, false) else {
            panic!("expected a query");
        };
        assert!(!sql.contains("LOCK"), "{sql}");
        let err = decode_map(&p, UNIQUE, &values, &[row(&[b"9", b"\x01"])]).unwrap_err();
        assert!(matches!(err, LookupSqlError::BadAnswer { .. }));
    }

    #[test]
    fn write_only_and_nulls_need_no_query() {
        let mut p = params(&["email"]);
        p.write_only = true;
        assert_eq!(
            map_plan(&p, UNIQUE, &[VindexValue::Int(1)], false),
            MapPlan::Known(vec![Destination::AllShards])
        );
        assert_eq!(
            verify_sql(&p, UNIQUE, &VindexValue::Int(1), &ksid(b"\x01")).unwrap(),
            None
        );
        let mut p = params(&["email"]);
        p.ignore_nulls = true;
        assert_eq!(
            map_plan(&p, LOOKUP, &[VindexValue::Null], false),
            MapPlan::Known(vec![Destination::AllShards])
        );
        assert_eq!(
            map_plan(&p, UNIQUE, &[VindexValue::Null], false),
            MapPlan::Known(vec![Destination::None])
        );
        let p = params(&["email"]);
        assert_eq!(
            verify_sql(&p, UNIQUE, &VindexValue::Int(1), &ksid(b"\x01"))
                .unwrap()
                .unwrap(),
            "SELECT `email` FROM `customer`.`email_lookup` WHERE `email` = 1 AND `keyspace_id` = _binary X'01'"
        );
    }

    #[test]
    fn inserts_sorted_nulls_and_upserts() {
        let p = params(&["name", "region"]);
        let rows = vec![
            (
                vec![VindexValue::Bytes(b"bob"), VindexValue::Int(2)],
                ksid(b"\x02"),
            ),
            (
                vec![VindexValue::Bytes(b"amy"), VindexValue::Int(1)],
                ksid(b"\x01"),
            ),
        ];
        assert_eq!(
            insert_sql(&p, LOOKUP, &rows, false).unwrap().unwrap(),
            "INSERT INTO `customer`.`email_lookup` (`name`, `region`, `keyspace_id`) VALUES \
             (_utf8mb4 X'616D79', 1, _binary X'01'), (_utf8mb4 X'626F62', 2, _binary X'02')"
        );
        assert!(
            insert_sql(&p, LOOKUP, &rows, true)
                .unwrap()
                .unwrap()
                .starts_with("INSERT IGNORE INTO")
        );
        let with_null = vec![(vec![VindexValue::Null, VindexValue::Int(1)], ksid(b"\x01"))];
        assert_eq!(
            insert_sql(&p, LOOKUP, &with_null, false).unwrap_err(),
            LookupSqlError::NullValue {
                table: "customer.email_lookup".into(),
                row: 0,
                column: 0
            }
        );
        let mut skipping = p.clone();
        skipping.ignore_nulls = true;
        assert_eq!(
            insert_sql(&skipping, LOOKUP, &with_null, false).unwrap(),
            None
        );
        let short = vec![(vec![VindexValue::Int(1)], ksid(b"\x01"))];
        assert!(matches!(
            insert_sql(&p, LOOKUP, &short, false),
            Err(LookupSqlError::ColumnCount { .. })
        ));
        // autocommit: a non-unique lookup upserts, a unique one does not.
        let mut auto = p.clone();
        auto.autocommit = true;
        let sql = insert_sql(&auto, LOOKUP, &rows, false).unwrap().unwrap();
        assert!(
            sql.ends_with(
                " ON DUPLICATE KEY UPDATE `name` = VALUES(`name`), `region` = VALUES(`region`), `keyspace_id` = VALUES(`keyspace_id`)"
            ),
            "{sql}"
        );
        let sql = insert_sql(&auto, UNIQUE, &rows, false).unwrap().unwrap();
        assert!(!sql.contains("DUPLICATE"), "{sql}");
    }

    #[test]
    fn deletes_and_updates() {
        let p = params(&["email"]);
        let k = ksid(b"\xab");
        assert_eq!(
            delete_sql(&p, UNIQUE, &[vec![VindexValue::Bytes(b"a")]], &k).unwrap(),
            vec![
                "DELETE FROM `customer`.`email_lookup` WHERE `email` = _utf8mb4 X'61' AND `keyspace_id` = _binary X'AB'"
            ]
        );
        let mut auto = p.clone();
        auto.autocommit = true;
        assert!(
            delete_sql(&auto, UNIQUE, &[vec![VindexValue::Bytes(b"a")]], &k)
                .unwrap()
                .is_empty()
        );
        let same = update_sql(
            &p,
            UNIQUE,
            &[VindexValue::Int(1)],
            &[VindexValue::Int(1)],
            &k,
        )
        .unwrap();
        assert!(same.is_empty());
        let changed = update_sql(
            &p,
            UNIQUE,
            &[VindexValue::Int(1)],
            &[VindexValue::Int(2)],
            &k,
        )
        .unwrap();
        assert_eq!(changed.len(), 2);
        assert!(changed[0].starts_with("DELETE") && changed[1].starts_with("INSERT"));
    }

    #[test]
    fn lookup_hash_stores_the_unhashed_number() {
        let kind = LookupKind::of("lookup_hash_unique").unwrap();
        let p = params(&["email"]);
        let hash = create_vindex("h", "hash", &Default::default()).unwrap();
        let k = hash.map(&VindexValue::UInt(1)).unwrap().unwrap();
        // Vitess's published vector: hash(1) = 166b40b44aba4bd6.
        assert_eq!(k.to_string(), "166b40b44aba4bd6");
        let sql = insert_sql(
            &p,
            kind,
            &[(vec![VindexValue::Bytes(b"a")], k.clone())],
            false,
        )
        .unwrap()
        .unwrap();
        assert!(sql.ends_with("(_utf8mb4 X'61', 1)"), "{sql}");
        let out = decode_map(&p, kind, &[VindexValue::Bytes(b"a")], &[row(&[b"0", b"1"])]).unwrap();
        assert_eq!(out, vec![Destination::KeyspaceIds(vec![k])]);
        assert!(matches!(
            insert_sql(
                &p,
                kind,
                &[(vec![VindexValue::Int(1)], ksid(b"\x01"))],
                false
            ),
            Err(LookupSqlError::NotHashable { .. })
        ));
    }

    #[test]
    fn consistent_duplicates_are_resolved_in_order() {
        let kind = LookupKind::of("consistent_lookup_unique").unwrap();
        let p = params(&["email"]);
        let new = ksid(b"\x01");
        let old = ksid(b"\x02");
        let s = consistent_statements(
            &p,
            kind,
            "customer",
            &["email".to_string()],
            &[VindexValue::Bytes(b"a")],
            &new,
        )
        .unwrap();
        assert_eq!(
            s.lock_lookup,
            "SELECT `keyspace_id` FROM `customer`.`email_lookup` WHERE `email` = _utf8mb4 X'61' FOR UPDATE"
        );
        assert_eq!(
            s.lock_owner,
            "SELECT `email` FROM `customer` WHERE `email` = _utf8mb4 X'61' LOCK IN SHARE MODE"
        );
        assert_eq!(
            s.update_lookup,
            "UPDATE `customer`.`email_lookup` SET `keyspace_id` = _binary X'01' WHERE `email` = _utf8mb4 X'61'"
        );
        assert_eq!(
            s.insert,
            "INSERT INTO `customer`.`email_lookup` (`email`, `keyspace_id`) VALUES (_utf8mb4 X'61', _binary X'01')"
        );
        let resolve = |lookup: &[Vec<Option<Vec<u8>>>], owner| {
            resolve_consistent_duplicate(&p, kind, lookup, owner, &new).unwrap()
        };
        assert_eq!(resolve(&[], None), DuplicateResolution::Insert);
        assert_eq!(
            resolve(&[row(&[b"\x02"])], None),
            DuplicateResolution::CheckOwner(old)
        );
        assert_eq!(
            resolve(&[row(&[b"\x02"])], Some(1)),
            DuplicateResolution::Duplicate
        );
        assert_eq!(
            resolve(&[row(&[b"\x02"])], Some(0)),
            DuplicateResolution::TakeOver
        );
        assert_eq!(
            resolve(&[row(&[b"\x01"])], Some(0)),
            DuplicateResolution::AlreadyCurrent
        );
        assert!(
            resolve_consistent_duplicate(&p, kind, &[row(&[b"1"]), row(&[b"2"])], None, &new)
                .is_err()
        );
        assert!(matches!(
            consistent_statements(
                &p,
                kind,
                "customer",
                &["email".to_string()],
                &[VindexValue::Null],
                &new
            ),
            Err(LookupSqlError::NullValue { .. })
        ));
        // Deletes of a consistent lookup are never skipped for autocommit.
        let mut auto = p.clone();
        auto.autocommit = true;
        assert_eq!(
            delete_sql(&auto, kind, &[vec![VindexValue::Bytes(b"a")]], &new)
                .unwrap()
                .len(),
            1
        );
    }
}
