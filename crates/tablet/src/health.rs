//! What a tablet reports about itself: probe mysqld for its read-only flag,
//! GTID positions and replication threads, and judge whether the tablet may
//! be routed to.
//!
//! Serving rules, kept deliberately simple:
//! - mysqld must be running and answer queries;
//! - a primary serves while it is writable (read_only=0);
//! - a replica or rdonly serves once replication is configured and its SQL
//!   thread runs (the IO thread may be reconnecting to a restarting primary;
//!   lag is for the gate to weigh, not a reason to drop the tablet here);
//! - spare and drained tablets never serve.

use std::time::{Duration, Instant};

use mysql_async::Conn;
use tessera_topo::TabletType;
use tokio::io::AsyncReadExt;

use crate::api::{ReplicationStatus, SemiSyncStatus};
use crate::replication::{self, ServerState};

/// What one probe of mysqld saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    pub state: ServerState,
    pub replication: Option<ReplicationStatus>,
    pub semi_sync: Option<SemiSyncStatus>,
}

pub async fn probe(conn: &mut Conn) -> anyhow::Result<Probe> {
    let state = replication::server_state(conn).await?;
    let replication = replication::replication_status(conn).await?;
    // Not worth failing the probe over: serving does not depend on it.
    let semi_sync = replication::semi_sync_status(conn).await.ok();
    Ok(Probe {
        state,
        replication,
        semi_sync,
    })
}

/// Whether something that speaks MySQL answers at `host:port` within
/// `timeout`: a TCP connection that yields the first bytes of the server's
/// greeting. A listening socket alone is not enough — a hung mysqld's
/// kernel still accepts connections — and nothing is logged in, so the
/// probe needs no credentials. Ok holds how long the greeting took.
pub async fn mysqld_greets(host: &str, port: u16, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut greeting = [0u8; 4];
        s.read_exact(&mut greeting)
            .await
            .map_err(|e| format!("reading the greeting: {e}"))?;
        Ok(())
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no greeting within {} ms", timeout.as_millis())),
    }
}

/// Whether the mysqld at `host:port` answers a login as `user` within
/// `timeout`: a clean session (greeting, authentication, quit) that leaves
/// nothing in the server's error log, unlike a greeting read and a hang-up.
/// A refused login is an answer too — the server is there. Ok holds how long
/// it took.
pub async fn mysqld_answers_login(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some(user.to_string()))
        .pass(Some(password.to_string()))
        .prefer_socket(false);
    let attempt = async {
        match Conn::new(opts).await {
            Ok(conn) => {
                let _ = conn.disconnect().await;
                Ok(())
            }
            Err(mysql_async::Error::Server(_)) => Ok(()),
            Err(e) => Err(format!("{e}")),
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// Whether a tablet of `tablet_type` whose mysqld probed as `probe` serves,
/// and why not when it does not.
pub fn judge(tablet_type: TabletType, probe: &Probe) -> (bool, Option<String>) {
    match tablet_type {
        TabletType::Primary => {
            if probe.state.read_only {
                (false, Some("primary is read-only".into()))
            } else {
                (true, None)
            }
        }
        TabletType::Replica | TabletType::Rdonly => match &probe.replication {
            None => (
                false,
                Some("not replicating: no primary has been set for this tablet".into()),
            ),
            Some(r) if !r.sql_running => {
                let why = if r.last_sql_error.is_empty() {
                    "replication SQL thread is stopped".to_string()
                } else {
                    format!("replication SQL thread stopped: {}", r.last_sql_error)
                };
                (false, Some(why))
            }
            Some(_) => (true, None),
        },
        TabletType::Spare | TabletType::Drained => (
            false,
            Some(format!("tablet type {tablet_type} is not served")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicating(sql_running: bool) -> Option<ReplicationStatus> {
        Some(ReplicationStatus {
            source_host: "127.0.0.1".into(),
            source_port: 3307,
            io_running: true,
            sql_running,
            lag_seconds: Some(0),
            last_io_error: String::new(),
            last_sql_error: if sql_running {
                String::new()
            } else {
                "dup key".into()
            },
        })
    }

    #[test]
    fn serving_rules() {
        let mut p = Probe::default();
        p.state.read_only = true;
        assert!(!judge(TabletType::Primary, &p).0);
        p.state.read_only = false;
        assert_eq!(judge(TabletType::Primary, &p), (true, None));

        let mut r = Probe::default();
        r.state.read_only = true;
        let (serving, why) = judge(TabletType::Replica, &r);
        assert!(!serving && why.unwrap().contains("no primary"));
        r.replication = replicating(true);
        assert_eq!(judge(TabletType::Rdonly, &r), (true, None));
        r.replication = replicating(false);
        let (serving, why) = judge(TabletType::Replica, &r);
        assert!(!serving && why.unwrap().contains("dup key"));
        assert!(!judge(TabletType::Drained, &r).0);
    }
}
