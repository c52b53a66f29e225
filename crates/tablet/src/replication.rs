//! The SQL the agent uses to steer replication: point a mysqld at a source
//! with GTIDs, make it a primary, set read_only, and read replication and
//! GTID state back.

use std::time::Duration;

use anyhow::Context;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::api::ReplicationStatus;
use crate::mysqld::{Credentials, escape_string};

/// How often the IO thread retries a lost source, in seconds. The default
/// (60 s) would leave a replica idle for a minute after a failover.
const CONNECT_RETRY_SECS: u32 = 2;
/// Heartbeats let a replica tell a quiet source from a silently dead one:
/// the replica gives up after `slave_net_timeout` without a byte. Every 2 s,
/// or more often when `slave_net_timeout` is below 4 s, so that at least
/// two heartbeats fit in it.
const MAX_HEARTBEAT_SECS: f64 = 2.0;

fn heartbeat_period(slave_net_timeout_secs: u32) -> f64 {
    (f64::from(slave_net_timeout_secs) / 2.0).clamp(0.5, MAX_HEARTBEAT_SECS)
}

/// Where a replica pulls its binlog from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAddr {
    pub host: String,
    pub port: u16,
}

/// Stops replication and points it at `source` using the repl credentials,
/// starting from `gtid_slave_pos`, then starts it. `semi_sync` says whether
/// this replica acknowledges what it receives; it is set while the IO thread
/// is stopped because the IO thread reads it only when it connects.
/// Primary-side semi-sync is switched off: a replica has nobody to wait for.
///
/// `gtid_slave_pos` is first set to `gtid_current_pos`: on a replica that
/// never wrote on its own the two are equal, and on a demoted primary the
/// binlog holds transactions it wrote itself that `gtid_slave_pos` never
/// saw, which it would otherwise fetch again and fail on.
pub async fn replicate_from(
    conn: &mut Conn,
    source: &SourceAddr,
    creds: &Credentials,
    semi_sync: bool,
) -> anyhow::Result<()> {
    conn.query_drop("STOP SLAVE").await.context("STOP SLAVE")?;
    set_semi_sync_primary(conn, false).await?;
    set_semi_sync_replica(conn, semi_sync).await?;
    conn.query_drop("SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos")
        .await
        .context("aligning gtid_slave_pos with gtid_current_pos")?;
    let net_timeout: Option<u32> = conn
        .query_first("SELECT @@GLOBAL.slave_net_timeout")
        .await
        .context("reading slave_net_timeout")?;
    let heartbeat = heartbeat_period(net_timeout.unwrap_or(10));
    let change = format!(
        "CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT={}, MASTER_USER='{}', \
         MASTER_PASSWORD='{}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY={}, \
         MASTER_HEARTBEAT_PERIOD={}",
        escape_string(&source.host),
        source.port,
        escape_string(&creds.repl_user),
        escape_string(&creds.repl_password),
        CONNECT_RETRY_SECS,
        heartbeat,
    );
    conn.query_drop(change).await.context("CHANGE MASTER TO")?;
    conn.query_drop("START SLAVE")
        .await
        .context("START SLAVE")?;
    Ok(())
}

pub async fn set_semi_sync_primary(conn: &mut Conn, enabled: bool) -> anyhow::Result<()> {
    let value = u8::from(enabled);
    conn.query_drop(format!("SET GLOBAL rpl_semi_sync_master_enabled = {value}"))
        .await
        .with_context(|| format!("SET GLOBAL rpl_semi_sync_master_enabled = {value}"))
}

pub async fn set_semi_sync_replica(conn: &mut Conn, enabled: bool) -> anyhow::Result<()> {
    let value = u8::from(enabled);
    conn.query_drop(format!("SET GLOBAL rpl_semi_sync_slave_enabled = {value}"))
        .await
        .with_context(|| format!("SET GLOBAL rpl_semi_sync_slave_enabled = {value}"))
}

/// Reconnects the IO thread so a changed `rpl_semi_sync_slave_enabled`
/// takes effect; the SQL thread keeps applying meanwhile.
pub async fn restart_io_thread(conn: &mut Conn) -> anyhow::Result<()> {
    stop_io_thread(conn).await?;
    conn.query_drop("START SLAVE IO_THREAD")
        .await
        .context("START SLAVE IO_THREAD")
}

/// Whether a superseded primary may hold a commit that a later switch of
/// semi-sync to off would release as a success: it still takes writes, or
/// sessions wait for an acknowledgement.
pub async fn may_hold_unacknowledged_commits(conn: &mut Conn) -> anyhow::Result<bool> {
    let read_only: Option<i64> = conn
        .query_first("SELECT @@GLOBAL.read_only")
        .await
        .context("reading read_only")?;
    let waiting: Option<(String, String)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_wait_sessions'")
        .await
        .context("reading Rpl_semi_sync_master_wait_sessions")?;
    let waiting = waiting
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(read_only != Some(1) || waiting > 0)
}

/// Semi-sync settings and counters of a mysqld.
pub async fn semi_sync_status(conn: &mut Conn) -> anyhow::Result<crate::api::SemiSyncStatus> {
    let row: Option<(i64, i64)> = conn
        .query_first(
            "SELECT @@GLOBAL.rpl_semi_sync_master_enabled, @@GLOBAL.rpl_semi_sync_slave_enabled",
        )
        .await
        .context("reading the semi-sync settings")?;
    let (primary, replica) = row.context("no answer to the semi-sync settings query")?;
    let counters: Vec<(String, String)> = conn
        .query(
            "SHOW GLOBAL STATUS WHERE Variable_name IN \
             ('Rpl_semi_sync_master_clients', 'Rpl_semi_sync_master_yes_tx', \
              'Rpl_semi_sync_master_no_tx')",
        )
        .await
        .context("reading the semi-sync counters")?;
    let counter = |name: &str| -> u64 {
        counters
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(crate::api::SemiSyncStatus {
        primary_enabled: primary != 0,
        clients: counter("Rpl_semi_sync_master_clients"),
        yes_tx: counter("Rpl_semi_sync_master_yes_tx"),
        no_tx: counter("Rpl_semi_sync_master_no_tx"),
        replica_enabled: replica != 0,
    })
}

/// Whether some replica's binlog dump thread has sent everything this
/// primary logged, i.e. at least one replica is caught up.
pub async fn some_replica_caught_up(conn: &mut Conn) -> anyhow::Result<bool> {
    let n: Option<i64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE COMMAND = 'Binlog Dump' AND STATE LIKE '%has sent all binlog%'",
        )
        .await
        .context("looking for caught-up binlog dump threads")?;
    Ok(n.unwrap_or(0) > 0)
}

/// Forgets any source: replication stops and its configuration is erased.
pub async fn reset_replication(conn: &mut Conn) -> anyhow::Result<()> {
    conn.query_drop("STOP SLAVE").await.context("STOP SLAVE")?;
    conn.query_drop("RESET SLAVE ALL")
        .await
        .context("RESET SLAVE ALL")?;
    Ok(())
}

/// Starts the replication threads of an already configured replica.
pub async fn start_replication(conn: &mut Conn) -> anyhow::Result<()> {
    conn.query_drop("START SLAVE").await.context("START SLAVE")
}

pub async fn set_read_only(conn: &mut Conn, read_only: bool) -> anyhow::Result<()> {
    let value = if read_only { 1 } else { 0 };
    conn.query_drop(format!("SET GLOBAL read_only = {value}"))
        .await
        .with_context(|| format!("SET GLOBAL read_only = {value}"))
}

/// Read-only flag and GTID positions of a mysqld.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerState {
    pub read_only: bool,
    pub gtid_binlog_pos: String,
    pub gtid_slave_pos: String,
    pub gtid_current_pos: String,
}

pub async fn server_state(conn: &mut Conn) -> anyhow::Result<ServerState> {
    let row: Option<(i64, String, String, String)> = conn
        .query_first(
            "SELECT @@GLOBAL.read_only, @@GLOBAL.gtid_binlog_pos, \
             @@GLOBAL.gtid_slave_pos, @@GLOBAL.gtid_current_pos",
        )
        .await
        .context("reading read_only and GTID positions")?;
    let (ro, binlog, slave, current) = row.context("no answer to the GTID position query")?;
    Ok(ServerState {
        read_only: ro != 0,
        gtid_binlog_pos: binlog,
        gtid_slave_pos: slave,
        gtid_current_pos: current,
    })
}

/// `SHOW SLAVE STATUS` of the default connection, or None when no source is
/// configured.
pub async fn replication_status(conn: &mut Conn) -> anyhow::Result<Option<ReplicationStatus>> {
    let row: Option<mysql_async::Row> = conn
        .query_first("SHOW SLAVE STATUS")
        .await
        .context("SHOW SLAVE STATUS")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let text = |name: &str| -> String {
        row.get_opt::<Option<String>, _>(name)
            .and_then(|r| r.ok())
            .flatten()
            .unwrap_or_default()
    };
    let source_host = text("Master_Host");
    if source_host.is_empty() {
        return Ok(None);
    }
    Ok(Some(ReplicationStatus {
        source_port: text("Master_Port").parse().unwrap_or(0),
        source_host,
        io_running: text("Slave_IO_Running").eq_ignore_ascii_case("yes"),
        sql_running: text("Slave_SQL_Running").eq_ignore_ascii_case("yes"),
        lag_seconds: text("Seconds_Behind_Master").parse().ok(),
        last_io_error: text("Last_IO_Error"),
        last_sql_error: text("Last_SQL_Error"),
    }))
}

/// Waits until the replica has applied everything up to `gtid_pos` (as
/// `MASTER_GTID_WAIT`); false on timeout.
pub async fn wait_for_gtid(
    conn: &mut Conn,
    gtid_pos: &str,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let answer: Option<i64> = conn
        .exec_first(
            "SELECT MASTER_GTID_WAIT(?, ?)",
            (gtid_pos, timeout.as_secs_f64()),
        )
        .await
        .context("MASTER_GTID_WAIT")?;
    Ok(answer == Some(0))
}

/// Everything a reparent needs to compare tablets: what each has applied,
/// received and written, and whether it is replicating.
pub async fn positions(conn: &mut Conn) -> anyhow::Result<crate::api::Positions> {
    let row: Option<(i64, u32, String, String, String, String)> = conn
        .query_first(
            "SELECT @@GLOBAL.read_only, @@GLOBAL.server_id, @@GLOBAL.gtid_binlog_pos, \
             @@GLOBAL.gtid_slave_pos, @@GLOBAL.gtid_current_pos, @@GLOBAL.gtid_binlog_state",
        )
        .await
        .context("reading GTID positions")?;
    let (ro, server_id, binlog, slave, current, state) =
        row.context("no answer to the GTID position query")?;
    // MariaDB has no global for the received set: it is SHOW SLAVE STATUS's
    // Gtid_IO_Pos.
    let status: Option<mysql_async::Row> = conn
        .query_first("SHOW SLAVE STATUS")
        .await
        .context("SHOW SLAVE STATUS")?;
    let text = |name: &str| -> String {
        status
            .as_ref()
            .and_then(|row| row.get_opt::<Option<String>, _>(name))
            .and_then(|r| r.ok())
            .flatten()
            .unwrap_or_default()
    };
    let first_binlog: Option<String> = conn
        .query_first("SHOW BINARY LOGS")
        .await
        .context("SHOW BINARY LOGS")?
        .and_then(|row: mysql_async::Row| row.get_opt::<String, _>(0).and_then(|r| r.ok()));
    let gtid_binlog_start = match first_binlog {
        Some(file) => conn
            .exec_first::<Option<String>, _, _>("SELECT BINLOG_GTID_POS(?, 4)", (file,))
            .await
            .context("BINLOG_GTID_POS of the oldest binlog")?
            .flatten()
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(crate::api::Positions {
        gtid_binlog_start,
        server_id,
        read_only: ro != 0,
        gtid_binlog_pos: binlog,
        gtid_slave_pos: slave,
        gtid_current_pos: current,
        gtid_io_pos: text("Gtid_IO_Pos"),
        gtid_binlog_state: state,
        io_running: text("Slave_IO_Running").eq_ignore_ascii_case("yes"),
        sql_running: text("Slave_SQL_Running").eq_ignore_ascii_case("yes"),
    })
}

/// Stops only the receiving thread, so the SQL thread can still apply what
/// was already received while nothing new arrives from the old source.
pub async fn stop_io_thread(conn: &mut Conn) -> anyhow::Result<()> {
    conn.query_drop("STOP SLAVE IO_THREAD")
        .await
        .context("STOP SLAVE IO_THREAD")
}

/// Kills every client connection except the agent's own users and the
/// server's threads, so no open session of the application keeps writing
/// (or holds locks) across a change of primary. Returns how many it killed.
pub async fn kill_app_connections(conn: &mut Conn, creds: &Credentials) -> anyhow::Result<u64> {
    let ids: Vec<u64> = conn
        .exec(
            "SELECT ID FROM information_schema.PROCESSLIST \
             WHERE ID <> CONNECTION_ID() AND USER NOT IN (?, ?, 'system user', 'event_scheduler') \
             AND COMMAND NOT IN ('Binlog Dump', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker')",
            (&creds.dba_user, &creds.repl_user),
        )
        .await
        .context("listing client connections")?;
    let mut killed = 0;
    for id in ids {
        // The connection may have ended on its own since it was listed.
        if conn
            .query_drop(format!("KILL CONNECTION {id}"))
            .await
            .is_ok()
        {
            killed += 1;
        }
    }
    Ok(killed)
}

fn parse_gtids(text: &str) -> Result<Vec<(u32, u32, u64)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let bad = || format!("bad GTID {part:?}: expected domain-server-sequence");
            let mut fields = part.split('-');
            let (Some(d), Some(s), Some(q), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad());
            };
            Ok((
                d.parse().map_err(|_| bad())?,
                s.parse().map_err(|_| bad())?,
                q.parse().map_err(|_| bad())?,
            ))
        })
        .collect()
}

/// The GTIDs of `pos` (one per domain, as in `gtid_binlog_pos`) that a
/// server with binlog state `state` (last GTID per domain and server id,
/// `gtid_binlog_state`) never logged. Sequence numbers of one server in one
/// domain only grow, so a GTID is known when that server's last one in that
/// domain is at or after it.
pub fn missing_gtids(pos: &str, state: &str) -> Result<Vec<String>, String> {
    let state = parse_gtids(state)?;
    Ok(parse_gtids(pos)?
        .into_iter()
        .filter(|&(d, s, q)| {
            !state
                .iter()
                .any(|&(sd, ss, sq)| sd == d && ss == s && sq >= q)
        })
        .map(|(d, s, q)| format!("{d}-{s}-{q}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_fit_twice_in_the_net_timeout() {
        assert_eq!(heartbeat_period(10), 2.0);
        assert_eq!(heartbeat_period(3), 1.5);
        assert_eq!(heartbeat_period(2), 1.0);
        assert_eq!(heartbeat_period(0), 0.5);
    }

    #[test]
    fn finds_gtids_a_server_never_logged() {
        let state = "0-100-10,0-101-15,1-100-3";
        assert!(missing_gtids("0-101-15,1-100-2", state).unwrap().is_empty());
        assert!(missing_gtids("", state).unwrap().is_empty());
        assert_eq!(
            missing_gtids("0-100-11,1-100-3", state).unwrap(),
            vec!["0-100-11".to_string()]
        );
        assert_eq!(
            missing_gtids("2-5-1", "").unwrap(),
            vec!["2-5-1".to_string()]
        );
        assert!(missing_gtids("0-1", state).is_err());
    }
}
