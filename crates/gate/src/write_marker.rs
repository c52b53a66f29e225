//! Write markers: how the gate learns the outcome of a write whose answer was
//! lost in a failover, so that it can answer the client instead of failing.
//!
//! On a keyspace with loss-less durability, the gate runs an autocommit write
//! as `BEGIN; <write>; <marker>; COMMIT` in one pipelined round trip, and puts
//! the marker before an explicit transaction's `COMMIT`. The marker row,
//! keyed by the backend connection, records a per-connection sequence number
//! with the write's `ROW_COUNT()` and `LAST_INSERT_ID()`; it commits or
//! vanishes with the write. When the connection breaks before the commit's
//! answer arrives, the gate reads the row on the shard's writable primary
//! (after waiting for a new one): the sequence number there means the write
//! committed (the client gets the OK it would have got), anything else means
//! it is on no surviving server and runs again, or, for a transaction, that
//! it was rolled back. With AFTER_SYNC semi-sync the new primary holds every
//! transaction that any client saw acknowledged, and the old one is fenced,
//! so the row's absence there is final.
//!
//! The table lives in the `_tessera` database that every tablet creates at
//! its first boot (crates/tablet/src/init.sql); a row per backend connection
//! ever used for a marked write, rewritten in place.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The marker table, as tablets create it.
pub const TABLE: &str = "_tessera.write_marker";

/// Ids of backend connections: random high half per gate process, so that
/// several gates never share a row, and a counter below it.
static NEXT_CONNECTION: LazyLock<AtomicU64> = LazyLock::new(|| {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    AtomicU64::new(random & 0xFFFF_FFFF_0000_0000)
});

/// The marker identity of one backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnMarker {
    pub conn: u64,
    seq: u64,
}

impl Default for ConnMarker {
    fn default() -> Self {
        Self {
            conn: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
            seq: 0,
        }
    }
}

/// One marked write: the row that proves it committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub conn: u64,
    pub seq: u64,
}

impl ConnMarker {
    /// The marker for the next write on this connection.
    pub fn next(&mut self) -> Marker {
        self.seq += 1;
        Marker {
            conn: self.conn,
            seq: self.seq,
        }
    }
}

impl Marker {
    /// The statement that records the marker, right after the write it
    /// vouches for (so `ROW_COUNT()` is that write's), into `out`.
    pub fn write_insert(&self, out: &mut Vec<u8>) {
        out.clear();
        let _ = write!(
            out,
            "INSERT INTO {TABLE} (conn, seq, row_count, insert_id) VALUES ({}, {}, ROW_COUNT(), LAST_INSERT_ID()) \
             ON DUPLICATE KEY UPDATE seq = VALUES(seq), row_count = VALUES(row_count), insert_id = VALUES(insert_id)",
            self.conn, self.seq
        );
    }

    /// The query that reads the marker back, with whether the server is
    /// writable (only a writable primary's answer is final).
    pub fn lookup_sql(&self) -> String {
        format!(
            "SELECT @@global.read_only, (SELECT CONCAT(seq, ' ', row_count, ' ', insert_id) FROM {TABLE} WHERE conn = {})",
            self.conn
        )
    }

    /// Reads the lookup's answer: `Err` when the server is read-only (not
    /// final), `Ok(None)` when the write did not commit.
    pub fn parse_lookup(
        &self,
        read_only: Option<&str>,
        row: Option<&str>,
    ) -> Result<Option<Outcome>, ReadOnly> {
        if read_only != Some("0") {
            return Err(ReadOnly);
        }
        let Some(row) = row else {
            return Ok(None);
        };
        let mut parts = row.split(' ');
        let seq = parts.next().and_then(|s| s.parse::<u64>().ok());
        let row_count = parts.next().and_then(|s| s.parse::<i64>().ok());
        let insert_id = parts.next().and_then(|s| s.parse::<u64>().ok());
        match (seq, row_count, insert_id) {
            (Some(seq), Some(row_count), Some(insert_id)) if seq == self.seq => Ok(Some(Outcome {
                row_count,
                insert_id,
            })),
            _ => Ok(None),
        }
    }
}

/// The server that answered a lookup is read-only: not the primary yet.
#[derive(Debug)]
pub struct ReadOnly;

/// A marked write that committed, as its row recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// `ROW_COUNT()` after the write: affected rows, or -1 when it failed.
    pub row_count: i64,
    pub insert_id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_differ_and_sequence_numbers_grow() {
        let mut a = ConnMarker::default();
        let b = ConnMarker::default();
        assert_ne!(a.conn, b.conn);
        let first = a.next();
        let second = a.next();
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(first.conn, second.conn);
    }

    #[test]
    fn only_the_same_sequence_number_on_a_writable_server_proves_a_commit() {
        let m = Marker { conn: 7, seq: 3 };
        let mut sql = Vec::new();
        m.write_insert(&mut sql);
        let sql = String::from_utf8(sql).unwrap();
        assert!(
            sql.contains("VALUES (7, 3, ROW_COUNT(), LAST_INSERT_ID())"),
            "{sql}"
        );
        assert!(m.lookup_sql().ends_with("WHERE conn = 7)"));
        assert_eq!(
            m.parse_lookup(Some("0"), Some("3 1 42")).unwrap(),
            Some(Outcome {
                row_count: 1,
                insert_id: 42
            })
        );
        assert_eq!(m.parse_lookup(Some("0"), Some("2 1 0")).unwrap(), None);
        assert_eq!(m.parse_lookup(Some("0"), None).unwrap(), None);
        assert_eq!(
            m.parse_lookup(Some("0"), Some("3 -1 0")).unwrap(),
            Some(Outcome {
                row_count: -1,
                insert_id: 0
            })
        );
        assert!(m.parse_lookup(Some("1"), Some("3 1 0")).is_err());
        assert!(m.parse_lookup(None, None).is_err());
    }
}
