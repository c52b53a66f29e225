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
/// Heartbeats let a replica notice a silently dead source; must stay below
/// the `slave_net_timeout` the agent's my.cnf sets.
const HEARTBEAT_SECS: u32 = 2;

/// Where a replica pulls its binlog from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAddr {
    pub host: String,
    pub port: u16,
}

/// Stops replication and points it at `source` using the repl credentials,
/// starting from `gtid_slave_pos`, then starts it.
///
/// `gtid_slave_pos` is first set to `gtid_current_pos`: on a replica that
/// never wrote on its own the two are equal, and on a demoted primary the
/// binlog holds transactions it wrote itself that `gtid_slave_pos` never
/// saw, which it would otherwise fetch again and fail on.
pub async fn replicate_from(
    conn: &mut Conn,
    source: &SourceAddr,
    creds: &Credentials,
) -> anyhow::Result<()> {
    conn.query_drop("STOP SLAVE").await.context("STOP SLAVE")?;
    conn.query_drop("SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos")
        .await
        .context("aligning gtid_slave_pos with gtid_current_pos")?;
    let change = format!(
        "CHANGE MASTER TO MASTER_HOST='{}', MASTER_PORT={}, MASTER_USER='{}', \
         MASTER_PASSWORD='{}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY={}, \
         MASTER_HEARTBEAT_PERIOD={}",
        escape_string(&source.host),
        source.port,
        escape_string(&creds.repl_user),
        escape_string(&creds.repl_password),
        CONNECT_RETRY_SECS,
        HEARTBEAT_SECS,
    );
    conn.query_drop(change).await.context("CHANGE MASTER TO")?;
    conn.query_drop("START SLAVE")
        .await
        .context("START SLAVE")?;
    Ok(())
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
