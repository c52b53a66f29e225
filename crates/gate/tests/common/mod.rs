//! Test cluster for the gate's integration tests: real mariadbd processes
//! (via `tessera_tablet::mysqld`), a file-backed topology, and a gate on free
//! loopback ports. Everything is stopped when the cluster is dropped.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tessera_gate::{Gate, GateConfig};
use tessera_tablet::mysqld::{Mysqld, MysqldConfig};
use tessera_topo::{Keyspace, LocalStore, Shard, Tablet, TabletAlias, TabletType, Topo};

pub const CELL: &str = "zone1";

/// A loopback port nothing listens on right now.
#[allow(unused_imports)] // not every test binary starts servers itself
pub use tessera_topo::testutil::free_port;

/// Starts one mariadbd in `dir` with `databases` created (the first one by
/// the tablet's init SQL).
pub async fn start_mysqld(dir: PathBuf, server_id: u32, databases: &[&str]) -> Mysqld {
    let cfg = MysqldConfig::new(dir, free_port(), server_id, databases[0]);
    let mut mysqld = Mysqld::new(cfg);
    mysqld
        .init_if_needed()
        .await
        .expect("initialising and starting mariadbd");
    let mut conn = mysqld.dba_conn().await.expect("dba connection");
    for db in &databases[1..] {
        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{db}`"))
            .await
            .expect("creating database");
    }
    // Tablets boot read-only (their agent decides); these play primaries.
    conn.query_drop("SET GLOBAL read_only = 0")
        .await
        .expect("making mysqld writable");
    conn.disconnect().await.ok();
    mysqld
}

pub fn tablet(
    uid: u32,
    keyspace: &str,
    tablet_type: TabletType,
    mysql_port: u16,
    db_name: &str,
) -> Tablet {
    Tablet {
        format: 1,
        alias: TabletAlias::new(CELL, uid),
        hostname: "localhost".into(),
        keyspace: keyspace.into(),
        shard: "0".into(),
        tablet_type,
        mysql_host: "127.0.0.1".into(),
        mysql_port,
        // Nothing listens there: health is Unknown, which still routes.
        agent_addr: format!("127.0.0.1:{}", free_port()),
        db_name: db_name.into(),
        primary_term: 0,
        needs_reseed: false,
    }
}

pub async fn add_keyspace(topo: &Topo, name: &str, primary: &Tablet, others: &[Tablet]) {
    topo.create_keyspace(&Keyspace {
        name: name.into(),
        ..Default::default()
    })
    .await
    .expect("create keyspace");
    topo.create_shard(&Shard {
        keyspace: name.into(),
        name: "0".into(),
        primary_alias: Some(primary.alias.clone()),
        primary_term: 1,
        is_primary_serving: true,
        ..Default::default()
    })
    .await
    .expect("create shard");
    topo.put_tablet(primary).await.expect("put primary tablet");
    for t in others {
        topo.put_tablet(t).await.expect("put tablet");
    }
}

pub struct Cluster {
    pub gate: Option<Gate>,
    pub topo: Topo,
    pub primary: Mysqld,
    pub replica: Mysqld,
    pub dead_port: u16,
    pub dir: tempfile::TempDir,
}

pub const USERS_JSON: &str = r#"{
  "user1": [{"Password": "pw1", "UserData": "user1"}],
  "user2": [{"MysqlNativePassword": "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9", "UserData": "x"}],
  "user": [{"Password": ""}]
}"#;

impl Cluster {
    /// Two mariadbds: the primary of keyspaces `commerce` and `lookup`, and a
    /// second one registered as `commerce`'s replica; plus keyspace `dead`
    /// whose primary's mysqld port is closed. A gate with `pool_size`.
    pub async fn start(pool_size: usize) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("gt")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let primary = start_mysqld(dir.path().join("p"), 1, &["commerce", "lookup"]).await;
        let replica = start_mysqld(dir.path().join("r"), 2, &["commerce"]).await;
        let store = LocalStore::open(&dir.path().join("topo.redb")).expect("open local store");
        let topo = Topo::new(Arc::new(store));

        let p = tablet(
            100,
            "commerce",
            TabletType::Primary,
            primary.port(),
            "commerce",
        );
        let r = tablet(
            101,
            "commerce",
            TabletType::Replica,
            replica.port(),
            "commerce",
        );
        add_keyspace(&topo, "commerce", &p, &[r]).await;
        let l = tablet(200, "lookup", TabletType::Primary, primary.port(), "lookup");
        add_keyspace(&topo, "lookup", &l, &[]).await;
        let dead_port = free_port();
        let d = tablet(300, "dead", TabletType::Primary, dead_port, "dead");
        add_keyspace(&topo, "dead", &d, &[]).await;

        let users = dir.path().join("users.json");
        std::fs::write(&users, USERS_JSON).expect("write users.json");
        let cfg = GateConfig {
            cell: CELL.into(),
            mysql_listen: "127.0.0.1:0".parse().unwrap(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            users_file: Some(users),
            backend_user: "tessera_app".into(),
            backend_password: "tessera_app_pw".into(),
            tls_cert: None,
            tls_key: None,
            health_interval: Duration::from_millis(500),
            pool_size,
            // A dead primary is waited for this long before its error shows.
            buffer_window: Duration::from_secs(2),
            ..Default::default()
        };
        let gate = Gate::start(cfg, topo.clone()).await.expect("gate starts");
        assert!(
            gate.wait_ready(Duration::from_secs(30)).await,
            "gate never saw a routable primary for every keyspace"
        );
        Cluster {
            gate: Some(gate),
            topo,
            primary,
            replica,
            dead_port,
            dir,
        }
    }

    pub fn gate(&self) -> &Gate {
        self.gate.as_ref().expect("gate running")
    }

    pub fn port(&self) -> u16 {
        self.gate().mysql_addr().port()
    }

    pub fn opts(&self, user: &str, pass: &str, db: Option<&str>) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port())
            .user(Some(user))
            .pass(Some(pass))
            .db_name(db)
            .prefer_socket(false)
    }

    /// A connection as user1 to `db`.
    pub async fn conn(&self, db: Option<&str>) -> mysql_async::Conn {
        mysql_async::Conn::new(self.opts("user1", "pw1", db))
            .await
            .expect("connecting through the gate")
    }

    pub async fn shutdown(mut self) {
        if let Some(gate) = self.gate.take() {
            gate.shutdown().await;
        }
        let _ = self.primary.stop().await;
        let _ = self.replica.stop().await;
    }
}

/// The MySQL error code of a failed mysql_async call.
pub fn server_code<T: std::fmt::Debug>(r: Result<T, mysql_async::Error>) -> (u16, String, String) {
    match r {
        Err(mysql_async::Error::Server(e)) => (e.code, e.state, e.message),
        other => panic!("expected a server error, got {other:?}"),
    }
}
