//! Writes whose outcome survives a failover (see `crate::write_marker`): which
//! statements carry a marker, how the marker travels in the same round trip
//! as the statement, and what the session does when the connection breaks
//! before the commit's answer arrived.

use std::sync::Arc;

use tessera_sql::{Flags, StatementKind};
use tessera_topo::{DurabilityPolicy, TabletType};
use tessera_wire::protocol::command::COM_QUERY;
use tessera_wire::{ResponseSummary, StatusFlags};

use super::{
    AttemptError, BufferState, End, PinnedConn, Request, Session, Slot, TX_ABORTED, drop_slot,
    relay_failure, slot_conn,
};
use crate::buffer::FailedPrimary;
use crate::counted::Counted;
use crate::pool::PooledConn;
use crate::write_marker::{Marker, Outcome};

/// How a statement carries its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marking {
    /// An autocommit write, run in a transaction of its own with the marker.
    Write {
        /// An INSERT or REPLACE: `LAST_INSERT_ID()` is reset first, so the
        /// marker records this statement's generated id or 0.
        reset_insert_id: bool,
    },
    /// The COMMIT of a transaction that wrote: the marker goes in just before.
    Commit,
}

/// A marked command on its way: the marker and the buffer its SQL is built in.
pub(super) struct MarkedSend<'a> {
    pub marking: Marking,
    pub marker: Marker,
    pub sql: &'a mut Vec<u8>,
}

/// Whether a statement gets a marker when its connection allows (see
/// `Session::marker_applies`): single INSERT/REPLACE/UPDATE/DELETE, and a
/// plain COMMIT sent as text.
pub(super) fn marking_for(
    kind: StatementKind,
    flags: Flags,
    request: &Request<'_>,
) -> Option<Marking> {
    if flags.contains(Flags::MULTI) {
        return None;
    }
    match kind {
        StatementKind::Insert | StatementKind::Replace => Some(Marking::Write {
            reset_insert_id: true,
        }),
        StatementKind::Update | StatementKind::Delete => Some(Marking::Write {
            reset_insert_id: false,
        }),
        StatementKind::Commit => {
            let text = match request {
                Request::Raw(payload) if payload.first() == Some(&COM_QUERY) => &payload[1..],
                Request::Query(sql) => sql,
                _ => return None,
            };
            is_plain_commit(text).then_some(Marking::Commit)
        }
        _ => None,
    }
}

/// `COMMIT` or `COMMIT WORK`, without `AND CHAIN` or `RELEASE` (whose effects
/// a replayed answer could not reproduce).
fn is_plain_commit(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    let mut words = text
        .trim()
        .trim_end_matches(';')
        .split_ascii_whitespace()
        .map(str::to_ascii_lowercase);
    words.next().as_deref() == Some("commit")
        && matches!(words.next().as_deref(), None | Some("work"))
        && words.next().is_none()
}

/// Statements after which an open transaction has something to lose.
pub(super) fn may_write(kind: StatementKind) -> bool {
    !matches!(
        kind,
        StatementKind::Empty
            | StatementKind::Select
            | StatementKind::Begin
            | StatementKind::Commit
            | StatementKind::Rollback
            | StatementKind::Savepoint
            | StatementKind::Set
            | StatementKind::Use
            | StatementKind::ShowDatabases
            | StatementKind::Show
            | StatementKind::Describe
            | StatementKind::Explain
    )
}

/// What goes to the backend before the client's command.
pub(super) fn write_opening(conn: &mut PooledConn, mark: Option<&mut MarkedSend<'_>>) {
    let Some(mark) = mark else { return };
    match mark.marking {
        Marking::Write { reset_insert_id } => {
            conn.backend.write_command(COM_QUERY, b"BEGIN");
            if reset_insert_id {
                conn.backend
                    .write_command(COM_QUERY, b"DO LAST_INSERT_ID(0)");
            }
        }
        Marking::Commit => {
            mark.marker.write_insert(mark.sql);
            conn.backend.write_command(COM_QUERY, mark.sql);
        }
    }
}

/// What goes to the backend after the client's command.
pub(super) fn write_closing(conn: &mut PooledConn, mark: &mut MarkedSend<'_>) {
    if let Marking::Write { .. } = mark.marking {
        mark.marker.write_insert(mark.sql);
        conn.backend.write_command(COM_QUERY, mark.sql);
        conn.backend.write_command(COM_QUERY, b"COMMIT");
    }
}

/// Reads the answers to a marked command in the order they were sent, and
/// gives the client the answer to its own command: for a write, once the
/// commit succeeded (with the transaction the gate opened hidden from its
/// status), or the commit's refusal.
pub(super) async fn read_answers(
    conn: &mut PooledConn,
    client: &mut tessera_wire::PacketConn<Counted<tessera_wire::ClientStream>>,
    marking: Marking,
) -> Result<ResponseSummary, AttemptError> {
    let backend = &mut conn.backend;
    match marking {
        Marking::Commit => {
            let marker = tessera_wire::discard_response(backend)
                .await
                .map_err(relay_failure)?;
            warn_unrecorded(&marker);
            tessera_wire::relay_response(backend, client, false)
                .await
                .map_err(relay_failure)
        }
        Marking::Write { reset_insert_id } => {
            tessera_wire::discard_response(backend)
                .await
                .map_err(relay_failure)?;
            if reset_insert_id {
                tessera_wire::discard_response(backend)
                    .await
                    .map_err(relay_failure)?;
            }
            let write_at = client.write_buffer_len();
            let mut write = tessera_wire::hold_response(backend, client)
                .await
                .map_err(relay_failure)?;
            let marker = tessera_wire::discard_response(backend)
                .await
                .map_err(relay_failure)?;
            warn_unrecorded(&marker);
            let commit_at = client.write_buffer_len();
            let commit = tessera_wire::hold_response(backend, client)
                .await
                .map_err(relay_failure)?;
            let caps = backend.capabilities;
            let buffer = client.write_buffer_mut();
            let answer = if commit.error.is_some() && write.error.is_none() {
                // Nothing was written: the client gets the refusal.
                let refusal = buffer.split_off(commit_at);
                buffer.truncate(write_at);
                buffer.unsplit(refusal);
                commit
            } else {
                buffer.truncate(commit_at);
                if let Some(at) = write.held_final_at {
                    tessera_wire::clear_final_status(
                        &mut buffer[at..],
                        caps,
                        StatusFlags::SERVER_STATUS_IN_TRANS,
                    );
                }
                write.status -= StatusFlags::SERVER_STATUS_IN_TRANS;
                write
            };
            if let Err(e) = client.flush().await {
                client.clear_write_buffer();
                return Err(AttemptError::Client(e));
            }
            Ok(answer)
        }
    }
}

fn warn_unrecorded(marker: &ResponseSummary) {
    if let Some(err) = &marker.error {
        tracing::warn!(
            "write marker not recorded ({} {}): a failover during this write would end it with an error",
            err.code,
            err.message
        );
    }
}

impl Session {
    /// Whether the connection a marked statement is about to use takes the
    /// marker: a primary of a keyspace with loss-less durability, and for a
    /// write a connection of the pool (inside a transaction or with session
    /// state the write is not alone), for a COMMIT a transaction that wrote.
    pub(super) fn marker_applies(&self, marking: Marking, slot: &Slot) -> bool {
        if !self.shared.write_markers {
            return false;
        }
        let (keyspace, tablet_type) = match (marking, slot) {
            (
                Marking::Write { .. },
                Slot::Lent {
                    keyspace,
                    tablet_type,
                    ..
                },
            ) => (keyspace, *tablet_type),
            (Marking::Commit, Slot::Pinned(i)) => {
                let p: &PinnedConn = &self.pinned[*i];
                if !(p.in_tx && p.wrote) {
                    return false;
                }
                (&p.keyspace, p.tablet_type)
            }
            _ => return false,
        };
        tablet_type == TabletType::Primary
            && self
                .shared
                .routing
                .load()
                .keyspaces
                .get(&**keyspace)
                .is_some_and(|k| k.keyspace.durability_policy == DurabilityPolicy::SemiSync)
    }

    /// After the connection of a marked statement broke before its commit
    /// was answered: reads the marker on the shard's writable primary,
    /// waiting for a new one when the old is gone or read-only. Answers the
    /// client when the outcome is known (the OK the statement would have had,
    /// or for a transaction that did not commit, a retryable error) and
    /// returns None; returns a connection to the primary to run a write that
    /// did not commit again.
    pub(super) async fn settle_marked_outcome(
        &mut self,
        slot: Slot,
        marking: Marking,
        marker: Marker,
        reason: &str,
        buffering: &mut BufferState,
    ) -> Result<Option<Slot>, End> {
        let (keyspace, shard, alias) = match &slot {
            Slot::Pinned(i) => {
                let p = &self.pinned[*i];
                (
                    p.keyspace.clone(),
                    p.shard.clone(),
                    p.lease.pool().alias().clone(),
                )
            }
            Slot::Lent {
                lease,
                keyspace,
                shard,
                ..
            } => (
                keyspace.clone(),
                shard.clone(),
                lease.pool().alias().clone(),
            ),
        };
        drop_slot(&mut self.pinned, slot);
        let mut why = format!("lost the connection to the primary during a write: {reason}");
        let mut wait = false;
        loop {
            if wait {
                let failed = FailedPrimary {
                    alias: Some(alias.clone()),
                    term: self.primary_term(&keyspace, &shard),
                    why: why.clone(),
                };
                if !self
                    .buffer_wait(&keyspace, &shard, Some(failed), buffering)
                    .await
                {
                    return Ok(None);
                }
            }
            let Ok(mut slot) = self.checkout(buffering).await else {
                return Ok(None);
            };
            let fresh = matches!(&slot, Slot::Lent { lease, .. } if lease.fresh);
            let answer = slot_conn(&mut self.pinned, &mut slot)
                .backend
                .query(&marker.lookup_sql())
                .await;
            let result = match answer {
                Ok(result) => result,
                Err(e) => {
                    // A pooled connection may simply be stale; a fresh one
                    // failing means the primary is unreachable.
                    why = format!("reading the write marker failed: {e}");
                    wait = fresh;
                    drop_slot(&mut self.pinned, slot);
                    continue;
                }
            };
            let read_only = result.text(0, 0);
            let row = result.text(0, 1);
            match marker.parse_lookup(read_only.as_deref(), row.as_deref()) {
                Err(_) => {
                    self.settle(slot, false, None);
                    why = "the primary is read-only".to_string();
                    wait = true;
                }
                Ok(Some(outcome)) => {
                    self.settle(slot, false, None);
                    self.shared.metrics.marked_writes_resolved.inc();
                    return self
                        .answer_committed(&keyspace, &shard, marking, outcome)
                        .await
                        .map(|()| None);
                }
                Ok(None) => {
                    self.shared.metrics.marked_writes_resolved.inc();
                    return match marking {
                        Marking::Write { .. } => Ok(Some(slot)),
                        Marking::Commit => {
                            self.settle(slot, false, None);
                            let message = format!("{TX_ABORTED} (shard {keyspace}/{shard})");
                            self.send_gate_error(1105, "HY000", &message)
                                .await
                                .map(|()| None)
                        }
                    };
                }
            }
        }
    }

    /// The answer a marked statement that committed would have had.
    async fn answer_committed(
        &mut self,
        keyspace: &Arc<str>,
        shard: &Arc<str>,
        marking: Marking,
        outcome: Outcome,
    ) -> Result<(), End> {
        let (affected_rows, insert_id) = match marking {
            Marking::Commit => (0, 0),
            Marking::Write { .. } if outcome.row_count < 0 => {
                // Committed, but as a failed statement: only the marker's
                // transaction held anything.
                let message = format!(
                    "the statement failed on the old primary of {keyspace}/{shard}, which then failed before its error could be relayed; nothing was written"
                );
                return self.send_gate_error(1105, "HY000", &message).await;
            }
            Marking::Write { reset_insert_id } => (
                outcome.row_count as u64,
                if reset_insert_id {
                    outcome.insert_id
                } else {
                    0
                },
            ),
        };
        if insert_id != 0 {
            self.last_insert_id = insert_id;
        }
        let packet = tessera_wire::ok_packet(
            self.caps,
            affected_rows,
            insert_id,
            self.client_status(),
            0,
            "",
        );
        let mut seq = 1;
        self.client.write_packet(&mut seq, &packet);
        self.flush_client().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_commits_and_single_writes_are_marked() {
        let query = |sql: &'static str| Request::Query(sql.as_bytes());
        let none = Flags::default();
        for sql in ["COMMIT", " commit work ;", "Commit;"] {
            assert_eq!(
                marking_for(StatementKind::Commit, none, &query(sql)),
                Some(Marking::Commit),
                "{sql}"
            );
        }
        for sql in [
            "COMMIT AND CHAIN",
            "commit release",
            "COMMIT WORK AND NO CHAIN",
        ] {
            assert_eq!(
                marking_for(StatementKind::Commit, none, &query(sql)),
                None,
                "{sql}"
            );
        }
        assert_eq!(
            marking_for(
                StatementKind::Insert,
                none,
                &query("INSERT INTO t VALUES (1)")
            ),
            Some(Marking::Write {
                reset_insert_id: true
            })
        );
        assert_eq!(
            marking_for(StatementKind::Delete, none, &query("DELETE FROM t")),
            Some(Marking::Write {
                reset_insert_id: false
            })
        );
        assert_eq!(
            marking_for(
                StatementKind::Insert,
                Flags::MULTI,
                &query("INSERT 1; INSERT 2")
            ),
            None
        );
        assert_eq!(
            marking_for(StatementKind::Select, none, &query("SELECT 1")),
            None
        );
        assert!(may_write(StatementKind::Insert) && may_write(StatementKind::Ddl));
        assert!(!may_write(StatementKind::Select) && !may_write(StatementKind::Begin));
    }
}
