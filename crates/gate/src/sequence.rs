//! Vitess-style sequences: ids handed out from a sequence table in an
//! unsharded keyspace, reserved in cached blocks.
//!
//! A sequence table has one row, `id = 0`, holding `next_id` (the first id
//! nobody has reserved) and `cache` (how many ids one reservation takes). A
//! gate reserves a block with a locking transaction on the keyspace's
//! primary and hands the ids out from memory; gates sharing a sequence each
//! reserve their own blocks, so ids never repeat. As in Vitess:
//! - a request for `n` ids is always answered with `n` consecutive ids; when
//!   the cached block cannot hold them, the reservation takes as many
//!   `cache`-sized steps as needed (a block may then be larger than `cache`);
//! - the cached block is extended in place only if nobody else reserved
//!   since (the table's `next_id` still equals the block's end); otherwise
//!   the rest of the block is dropped and numbering continues from the
//!   table's `next_id`;
//! - `cache` below 1 and a request for fewer than 1 id are errors;
//! - ids are never handed out twice by one gate, even if the table's
//!   `next_id` goes back below what this gate reserved (a lost write on a
//!   failed-over primary): numbering continues from the higher value and the
//!   table is moved up again. [`Sequences::reset`] forgets that memory.
//!
//! Unused ids of a block reserved on a primary that has since been replaced
//! are skipped, never handed out: the new primary's table is the truth.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use tessera_wire::BackendError;

use crate::pool::{Lease, PoolError, TabletPool};
use crate::schema::internal_flavour;

/// The most ids `next_ids` lists in one call; `next_range` has no limit.
pub const MAX_IDS_PER_CALL: u64 = 1 << 20;

/// The column name Vitess gives the answer to `SELECT NEXT ... VALUES`.
pub const NEXTVAL_COLUMN: &str = "nextval";

#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    #[error("invalid increment for sequence {table}: {count}")]
    InvalidCount { table: String, count: u64 },
    #[error("too many ids at once from sequence {table}: {count} (at most {MAX_IDS_PER_CALL})")]
    TooMany { table: String, count: u64 },
    #[error("invalid cache value for sequence {table}: {cache}")]
    InvalidCache { table: String, cache: String },
    #[error(
        "sequence {table} has no row with id 0 (found {rows} rows); is it a sequence table initialised with INSERT INTO {table} VALUES (0, <next_id>, <cache>)?"
    )]
    MissingRow { table: String, rows: usize },
    #[error("sequence {table} has a next_id that is not a number: {value}")]
    BadNextId { table: String, value: String },
    #[error("sequence {table} is exhausted: {detail}")]
    Exhausted { table: String, detail: String },
    /// The server refused a statement (e.g. the table does not exist):
    /// its own code and message reach the client.
    #[error("{message}")]
    Server {
        table: String,
        code: u16,
        sqlstate: String,
        message: String,
    },
    #[error("sequence {table}: lost the connection to tablet {tablet}: {reason}")]
    Connection {
        table: String,
        tablet: String,
        reason: String,
    },
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl SequenceError {
    /// MySQL error code, SQLSTATE and message for the client.
    pub fn to_mysql(&self) -> (u16, String, String) {
        match self {
            SequenceError::Server {
                code,
                sqlstate,
                message,
                ..
            } => (*code, sqlstate.clone(), message.clone()),
            other => (1105, "HY000".to_string(), other.to_string()),
        }
    }
}

/// One sequence's cached block: ids `next..end` are reserved for this gate.
#[derive(Default)]
struct Block {
    /// The tablet (alias, address, database) the block was reserved on.
    source: Option<String>,
    /// The next id to hand out; None when nothing usable is cached.
    next: Option<i64>,
    /// End (exclusive) of the last block this gate reserved: what it last
    /// wrote to `next_id`, and the floor under every later id.
    end: i64,
}

/// A sequence's block behind the lock that serialises its reservations.
type SharedBlock = Arc<tokio::sync::Mutex<Block>>;

/// The sequences one gate hands ids out of, by (keyspace, table).
#[derive(Default)]
pub struct Sequences {
    blocks: Mutex<HashMap<(String, String), SharedBlock>>,
}

impl Sequences {
    pub fn new() -> Self {
        Self::default()
    }

    fn block(&self, keyspace: &str, table: &str) -> SharedBlock {
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((keyspace.to_string(), table.to_string()))
            .or_default()
            .clone()
    }

    /// `count` unique ascending ids of sequence `table` whose keyspace's
    /// primary pool is `pool`.
    pub async fn next_ids(
        &self,
        keyspace: &str,
        table: &str,
        count: u64,
        pool: &Arc<TabletPool>,
    ) -> Result<Vec<i64>, SequenceError> {
        if count > MAX_IDS_PER_CALL {
            return Err(SequenceError::TooMany {
                table: table.to_string(),
                count,
            });
        }
        Ok(self
            .next_range(keyspace, table, count, pool)
            .await?
            .collect())
    }

    /// `count` consecutive ids of sequence `table` as a range (what
    /// `SELECT NEXT n VALUES` answers with: its first id).
    pub async fn next_range(
        &self,
        keyspace: &str,
        table: &str,
        count: u64,
        pool: &Arc<TabletPool>,
    ) -> Result<Range<i64>, SequenceError> {
        let count = i64::try_from(count)
            .ok()
            .filter(|c| *c >= 1)
            .ok_or_else(|| SequenceError::InvalidCount {
                table: table.to_string(),
                count,
            })?;
        let block = self.block(keyspace, table);
        let mut block = block.lock().await;
        let source = format!("{}@{}/{}", pool.alias(), pool.addr(), pool.db_name());
        if block.source.as_deref() != Some(source.as_str()) {
            block.next = None;
        }
        let fits = block
            .next
            .and_then(|next| next.checked_add(count))
            .is_some_and(|after| after <= block.end);
        if !fits {
            reserve(&mut block, table, count, pool).await?;
            block.source = Some(source);
        }
        let start = block.next.expect("a block is cached after reserving");
        let after = start + count;
        block.next = Some(after);
        Ok(start..after)
    }

    /// Forgets what is cached of a sequence (e.g. its table was recreated
    /// with a lower next_id): the next call reads the table afresh.
    pub fn reset(&self, keyspace: &str, table: &str) {
        self.blocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(keyspace.to_string(), table.to_string()));
    }
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Reserves a block holding at least `count` ids in one transaction and
/// records it in `block`. `block` is changed only once the commit succeeded.
async fn reserve(
    block: &mut Block,
    table: &str,
    count: i64,
    pool: &Arc<TabletPool>,
) -> Result<(), SequenceError> {
    let mut lease = pool.get(internal_flavour()).await?;
    let qualified = format!("{}.{}", quote_ident(pool.db_name()), quote_ident(table));
    let result = reserve_on(&mut lease, block, table, &qualified, count).await;
    match &result {
        Ok(()) => lease.release(),
        Err(SequenceError::Server { .. }) | Err(SequenceError::InvalidCache { .. }) => {
            // The server answered: the connection is fine once the
            // transaction is gone.
            match lease.conn().backend.query("ROLLBACK").await {
                Ok(_) => lease.release(),
                Err(_) => lease.discard(),
            }
        }
        Err(_) => {
            let _ = lease.conn().backend.query("ROLLBACK").await;
            lease.discard();
        }
    }
    result
}

async fn reserve_on(
    lease: &mut Lease,
    block: &mut Block,
    table: &str,
    qualified: &str,
    count: i64,
) -> Result<(), SequenceError> {
    let tablet = lease.pool().label().to_string();
    let backend = &mut lease.conn().backend;
    let fail = |e: BackendError| match e {
        BackendError::Server(info) => SequenceError::Server {
            table: table.to_string(),
            code: info.code,
            sqlstate: info.sqlstate,
            message: info.message,
        },
        other => SequenceError::Connection {
            table: table.to_string(),
            tablet: tablet.clone(),
            reason: other.to_string(),
        },
    };
    backend.query("BEGIN").await.map_err(fail)?;
    let found = backend
        .query(&format!(
            "SELECT next_id, cache FROM {qualified} WHERE id = 0 FOR UPDATE"
        ))
        .await
        .map_err(fail)?;
    if found.rows.len() != 1 {
        return Err(SequenceError::MissingRow {
            table: table.to_string(),
            rows: found.rows.len(),
        });
    }
    let next_id_text = found.text(0, 0).unwrap_or_else(|| "NULL".to_string());
    let next_id: i64 = next_id_text.parse().map_err(|_| SequenceError::BadNextId {
        table: table.to_string(),
        value: next_id_text.clone(),
    })?;
    let cache_text = found.text(0, 1).unwrap_or_else(|| "NULL".to_string());
    let cache = cache_text
        .parse::<i64>()
        .ok()
        .filter(|c| *c >= 1)
        .ok_or_else(|| SequenceError::InvalidCache {
            table: table.to_string(),
            cache: cache_text.clone(),
        })?;
    let plan = plan_block(block.next, block.end, next_id, cache, count).ok_or_else(|| {
        SequenceError::Exhausted {
            table: table.to_string(),
            detail: format!(
                "{count} more ids from next_id {next_id} with cache {cache} would pass {}",
                i64::MAX
            ),
        }
    })?;
    backend
        .query(&format!(
            "UPDATE {qualified} SET next_id = {} WHERE id = 0",
            plan.end
        ))
        .await
        .map_err(fail)?;
    backend.query("COMMIT").await.map_err(fail)?;
    block.next = Some(plan.start);
    block.end = plan.end;
    Ok(())
}

/// Where handing out continues after a reservation, and the new end written
/// to the table.
#[derive(Debug, PartialEq, Eq)]
struct PlannedBlock {
    start: i64,
    end: i64,
}

/// The reservation for `count` ids given what is cached (`next`, `end`) and
/// what the locked row says (`next_id`, `cache` ≥ 1); None on overflow.
fn plan_block(
    next: Option<i64>,
    end: i64,
    next_id: i64,
    cache: i64,
    count: i64,
) -> Option<PlannedBlock> {
    let (start, base) = match next {
        // Nobody reserved since our block: extend it, keeping its rest.
        Some(next) if next_id == end => (next, end),
        // Fresh, or someone else reserved meanwhile (drop our rest), or
        // the table went back below what we handed out (never reuse).
        _ => {
            let base = next_id.max(end);
            (base, base)
        }
    };
    let needed = start.checked_add(count)?;
    let mut new_end = base.checked_add(cache)?;
    if new_end < needed {
        let steps = (needed - base - 1) / cache + 1;
        new_end = base.checked_add(steps.checked_mul(cache)?)?;
    }
    Some(PlannedBlock {
        start,
        end: new_end,
    })
}

/// What `SELECT NEXT n VALUES FROM t` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectNext {
    /// The qualifier of `ks.t`, if any.
    pub keyspace: Option<String>,
    pub table: String,
    /// How many ids; 0 parses (as in Vitess) and is refused when run.
    pub count: u64,
}

/// Recognises Vitess's `SELECT NEXT n VALUES FROM seq` and
/// `SELECT NEXT VALUE FROM seq` (`FOR` also accepted for `FROM`),
/// case-insensitively, with `n` a literal. A qualified name comes back as
/// `ks.seq`; use [`parse_select_next_parts`] to tell a qualifier from a
/// quoted name containing a dot.
pub fn parse_select_next(sql: &str) -> Option<(String, u64)> {
    let parsed = parse_select_next_parts(sql)?;
    let table = match parsed.keyspace {
        Some(ks) => format!("{ks}.{}", parsed.table),
        None => parsed.table,
    };
    Some((table, parsed.count))
}

/// [`parse_select_next`] with the qualifier apart.
pub fn parse_select_next_parts(sql: &str) -> Option<SelectNext> {
    let mut lexer = Lexer { rest: sql };
    if !lexer.keyword("select") || !lexer.keyword("next") {
        return None;
    }
    let count = if lexer.keyword("value") {
        1
    } else {
        let n = lexer.integer()?;
        if !lexer.keyword("values") {
            return None;
        }
        n
    };
    if !lexer.keyword("from") && !lexer.keyword("for") {
        return None;
    }
    let first = lexer.identifier()?;
    let (keyspace, table) = if lexer.punct('.') {
        (Some(first), lexer.identifier()?)
    } else {
        (None, first)
    };
    lexer.punct(';');
    lexer.skip_space();
    if !lexer.rest.is_empty() {
        return None;
    }
    Some(SelectNext {
        keyspace,
        table,
        count,
    })
}

struct Lexer<'a> {
    rest: &'a str,
}

impl Lexer<'_> {
    /// Skips whitespace and comments (`/* */`, `-- `, `#`).
    fn skip_space(&mut self) {
        loop {
            let trimmed = self.rest.trim_start();
            if let Some(after) = trimmed.strip_prefix("/*") {
                self.rest = after.find("*/").map_or("", |end| &after[end + 2..]);
            } else if trimmed.starts_with('#')
                || trimmed.starts_with("-- ")
                || trimmed.starts_with("--\t")
                || trimmed == "--"
            {
                self.rest = trimmed.find('\n').map_or("", |end| &trimmed[end + 1..]);
            } else {
                self.rest = trimmed;
                return;
            }
        }
    }

    fn word(&mut self) -> &str {
        self.skip_space();
        let len = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(self.rest.len());
        &self.rest[..len]
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        let word = self.word();
        if word.eq_ignore_ascii_case(keyword) {
            let len = word.len();
            self.rest = &self.rest[len..];
            true
        } else {
            false
        }
    }

    fn integer(&mut self) -> Option<u64> {
        let word = self.word();
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = word.parse().ok()?;
        let len = word.len();
        self.rest = &self.rest[len..];
        Some(n)
    }

    fn punct(&mut self, c: char) -> bool {
        self.skip_space();
        match self.rest.strip_prefix(c) {
            Some(after) => {
                self.rest = after;
                true
            }
            None => false,
        }
    }

    /// A bare name (not all digits) or a backquoted one (`` doubles).
    fn identifier(&mut self) -> Option<String> {
        self.skip_space();
        if let Some(mut quoted) = self.rest.strip_prefix('`') {
            let mut name = String::new();
            loop {
                let end = quoted.find('`')?;
                name.push_str(&quoted[..end]);
                quoted = &quoted[end + 1..];
                match quoted.strip_prefix('`') {
                    Some(after) => {
                        name.push('`');
                        quoted = after;
                    }
                    None => break,
                }
            }
            self.rest = quoted;
            return (!name.is_empty()).then_some(name);
        }
        let word = self.word();
        if word.is_empty() || word.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let name = word.to_string();
        self.rest = &self.rest[name.len()..];
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_next_forms() {
        assert_eq!(
            parse_select_next("select next value from customer_seq"),
            Some(("customer_seq".into(), 1))
        );
        assert_eq!(
            parse_select_next("  SELECT NEXT 5 VALUES FROM `order seq` ;  "),
            Some(("order seq".into(), 5))
        );
        assert_eq!(
            parse_select_next("/* c */ Select Next 10 Values For commerce.customer_seq"),
            Some(("commerce.customer_seq".into(), 10))
        );
        assert_eq!(
            parse_select_next_parts("select next 2 values from `ks`.`a``b` -- note"),
            Some(SelectNext {
                keyspace: Some("ks".into()),
                table: "a`b".into(),
                count: 2
            })
        );
        assert_eq!(
            parse_select_next("select next 0 values from s"),
            Some(("s".into(), 0))
        );
    }

    #[test]
    fn not_select_next() {
        for sql in [
            "select next from s",
            "select next 5 value from s",
            "select next values from s",
            "select next value from s where id = 1",
            "select next -1 values from s",
            "select next 1.5 values from s",
            "select next :n values from s",
            "select next 99999999999999999999999 values from s",
            "select next value from",
            "select next value from 123",
            "select next value from ``",
            "select next value from `unterminated",
            "select nextval from s",
            "select * from s",
            "",
        ] {
            assert_eq!(parse_select_next(sql), None, "{sql}");
        }
    }

    #[test]
    fn blocks_as_vitess_plans_them() {
        // Fresh: a block of `cache` from next_id.
        assert_eq!(
            plan_block(None, 0, 1000, 100, 1),
            Some(PlannedBlock {
                start: 1000,
                end: 1100
            })
        );
        // A request larger than the cache takes whole cache steps.
        assert_eq!(
            plan_block(None, 0, 1000, 100, 250),
            Some(PlannedBlock {
                start: 1000,
                end: 1300
            })
        );
        assert_eq!(plan_block(None, 0, 1000, 100, 300).unwrap().end, 1300);
        // Nobody else reserved: the rest of our block is kept and extended.
        assert_eq!(
            plan_block(Some(1090), 1100, 1100, 100, 20),
            Some(PlannedBlock {
                start: 1090,
                end: 1200
            })
        );
        // Another gate reserved meanwhile: our rest is dropped.
        assert_eq!(
            plan_block(Some(1090), 1100, 1200, 100, 20),
            Some(PlannedBlock {
                start: 1200,
                end: 1300
            })
        );
        // The table went backwards: never below what we handed out.
        assert_eq!(
            plan_block(None, 1100, 500, 100, 1),
            Some(PlannedBlock {
                start: 1100,
                end: 1200
            })
        );
        assert_eq!(plan_block(None, 0, i64::MAX - 10, 100, 1), None);
    }

    #[test]
    fn errors_map_to_mysql() {
        let e = SequenceError::Server {
            table: "s".into(),
            code: 1146,
            sqlstate: "42S02".into(),
            message: "Table 'ks.s' doesn't exist".into(),
        };
        assert_eq!(e.to_mysql().0, 1146);
        assert_eq!(e.to_mysql().1, "42S02");
        let e = SequenceError::InvalidCache {
            table: "s".into(),
            cache: "0".into(),
        };
        assert_eq!(
            e.to_mysql(),
            (
                1105,
                "HY000".into(),
                "invalid cache value for sequence s: 0".into()
            )
        );
    }
}
