//! Two tablet agents with real mariadbds in one shard: promotion,
//! replication, health, /execute and /schema over the HTTP API, the Tablet
//! records they keep, and the errors bad requests get.

mod common;

use std::time::Duration;

use common::wait_for;
use tessera_tablet::api::{ExecuteRequest, ReplicateFrom};
use tessera_topo::{TabletAlias, TabletType};

const KS: &str = "commerce";

fn sql(text: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: text.into(),
        db: None,
        skip_binlog: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_and_replica_over_the_api() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = common::topo_with_shard(dir.path(), KS).await;
    let cfg_a = common::tablet_config(dir.path(), KS, 100);
    let cfg_b = common::tablet_config(dir.path(), KS, 101);
    let (primary_port, alias_a) = (cfg_a.mysqld.port, cfg_a.alias.clone());
    let ((a, client_a), (b, client_b)) = tokio::join!(
        common::start_agent(cfg_a, &topo),
        common::start_agent(cfg_b, &topo)
    );

    // No primary yet: both wait read-only, not serving.
    let h = client_a.health().await.unwrap();
    assert_eq!(h.tablet_type, TabletType::Replica);
    assert!(h.mysqld_running && h.read_only && !h.serving);
    assert!(h.error.unwrap().contains("no primary"));

    // Records were registered with the agent's real address.
    let (rec_b, _) = topo.get_tablet(b.alias()).await.unwrap().unwrap();
    assert_eq!(rec_b.agent_addr, b.agent_addr().to_string());
    assert_eq!(rec_b.db_name, KS);
    assert!(topo.get_cell("zone1").await.unwrap().is_some());

    let h = client_a.promote(1).await.unwrap();
    assert_eq!(h.tablet_type, TabletType::Primary);
    assert!(h.serving && !h.read_only && h.replication.is_none());
    let h = client_b
        .replicate_from(&ReplicateFrom {
            primary_alias: alias_a.clone(),
            host: "127.0.0.1".into(),
            port: primary_port,
            tablet_type: None,
        })
        .await
        .unwrap();
    assert_eq!(h.tablet_type, TabletType::Replica);
    assert!(h.read_only);
    let repl = h.replication.expect("replication configured");
    assert_eq!(repl.source_port, primary_port);

    let (rec_a, _) = topo.get_tablet(&alias_a).await.unwrap().unwrap();
    assert_eq!(
        (rec_a.tablet_type, rec_a.primary_term),
        (TabletType::Primary, 1)
    );

    // Multi-statement DDL + DML on the primary.
    let r = client_a
        .execute(&sql(
            "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(30), note TEXT); \
             INSERT INTO items VALUES (1, 'one', NULL), (2, 'two', 'x'); \
             SELECT id, name, note FROM items ORDER BY id",
        ))
        .await
        .unwrap();
    assert_eq!(r.columns, vec!["id", "name", "note"]);
    assert_eq!(
        r.rows,
        vec![
            vec![Some("1".into()), Some("one".into()), None],
            vec![Some("2".into()), Some("two".into()), Some("x".into())],
        ]
    );
    assert_eq!(r.rows_affected, 2);

    // The gate's write markers: the table exists on every tablet, and the
    // primary's sweep deletes rows untouched for an hour, on the replica too.
    client_a
        .execute(&sql(
            "INSERT INTO _tessera.write_marker (conn, seq, row_count, insert_id, updated_at) \
             VALUES (1, 5, 1, 0, NOW(6) - INTERVAL 2 HOUR), (2, 7, 1, 0, NOW(6))",
        ))
        .await
        .unwrap();
    assert_eq!(b.sweep_write_markers().await, 0, "a replica does not sweep");
    assert_eq!(a.sweep_write_markers().await, 1);
    wait_for(
        "the sweep on the replica",
        Duration::from_secs(60),
        || async {
            let r = client_b
                .execute(&sql("SELECT GROUP_CONCAT(conn) FROM _tessera.write_marker"))
                .await
                .ok()?;
            (r.rows[0][0].as_deref() == Some("2")).then_some(())
        },
    )
    .await;

    // A write made with skip_binlog stays on the primary.
    client_a
        .execute(&ExecuteRequest {
            sql: "INSERT INTO items VALUES (99, 'local only', NULL)".into(),
            db: None,
            skip_binlog: true,
        })
        .await
        .unwrap();
    client_a
        .execute(&sql("INSERT INTO items VALUES (3, 'three', NULL)"))
        .await
        .unwrap();

    wait_for("row 3 on the replica", Duration::from_secs(60), || async {
        let r = client_b
            .execute(&sql("SELECT COUNT(*) FROM items WHERE id = 3"))
            .await
            .ok()?;
        (r.rows[0][0].as_deref() == Some("1")).then_some(())
    })
    .await;
    let r = client_b
        .execute(&sql("SELECT id FROM items ORDER BY id"))
        .await
        .unwrap();
    let ids: Vec<_> = r.rows.iter().map(|row| row[0].clone().unwrap()).collect();
    assert_eq!(
        ids,
        vec!["1", "2", "3"],
        "the skip_binlog row must not replicate"
    );

    // Health shows running threads and matching GTID positions.
    let primary_pos = client_a.health().await.unwrap().gtid_binlog_pos;
    assert!(!primary_pos.is_empty());
    let h = wait_for("replica caught up", Duration::from_secs(60), || async {
        let h = client_b.health().await.ok()?;
        (h.gtid_slave_pos == primary_pos).then_some(h)
    })
    .await;
    let repl = h.replication.clone().unwrap();
    assert!(repl.io_running && repl.sql_running, "{repl:?}");
    assert!(repl.lag_seconds.is_some_and(|l| l < 30), "{repl:?}");
    assert!(h.serving, "{h:?}");
    assert_eq!(b.health().await.gtid_slave_pos, primary_pos);

    // Schema as seen on the replica.
    client_a
        .execute(&sql("CREATE VIEW named AS SELECT id, name FROM items"))
        .await
        .unwrap();
    let schema = wait_for("view on the replica", Duration::from_secs(60), || async {
        let s = client_b.schema().await.ok()?;
        (s.tables.len() == 2).then_some(s)
    })
    .await;
    assert_eq!(schema.database, KS);
    assert_eq!(schema.tables[0].name, "items");
    assert_eq!(schema.tables[0].table_type, "BASE TABLE");
    assert!(
        schema.tables[0]
            .create_statement
            .starts_with("CREATE TABLE `items`")
    );
    assert_eq!(schema.tables[1].name, "named");
    assert_eq!(schema.tables[1].table_type, "VIEW");
    assert!(
        schema.tables[1].create_statement.contains("VIEW `named`"),
        "{}",
        schema.tables[1].create_statement
    );

    // Type changes are recorded; primaries are only changed by promote/demote.
    let h = client_b.change_type(TabletType::Rdonly).await.unwrap();
    assert_eq!(h.tablet_type, TabletType::Rdonly);
    assert!(h.serving);
    let (rec_b, _) = topo.get_tablet(b.alias()).await.unwrap().unwrap();
    assert_eq!(rec_b.tablet_type, TabletType::Rdonly);
    let err = client_a.change_type(TabletType::Replica).await.unwrap_err();
    assert!(err.to_string().contains("demote"), "{err}");
    let err = client_b.change_type(TabletType::Primary).await.unwrap_err();
    assert!(err.to_string().contains("/promote"), "{err}");

    // Planned demotion: the primary fences itself, then follows B.
    let h = client_a.set_read_only(true).await.unwrap();
    assert!(h.read_only && !h.serving);
    let h = client_b.promote(2).await.unwrap();
    assert_eq!(h.tablet_type, TabletType::Primary);
    let h = client_a
        .replicate_from(&ReplicateFrom {
            primary_alias: b.alias().clone(),
            host: "127.0.0.1".into(),
            port: b.mysql_port(),
            tablet_type: None,
        })
        .await
        .unwrap();
    assert_eq!(h.tablet_type, TabletType::Replica);
    client_b
        .execute(&sql("INSERT INTO items VALUES (4, 'four', NULL)"))
        .await
        .unwrap();
    wait_for(
        "row 4 on the demoted primary",
        Duration::from_secs(60),
        || async {
            let h = client_a.health().await.ok()?;
            let r = h.replication.as_ref()?;
            assert!(r.last_sql_error.is_empty(), "{r:?}");
            let rows = client_a
                .execute(&sql("SELECT name FROM items WHERE id = 4"))
                .await
                .ok()?;
            (rows.rows.len() == 1 && r.sql_running && r.io_running).then_some(())
        },
    )
    .await;
    let err = client_b.promote(1).await.unwrap_err();
    assert!(err.to_string().contains("stale primary term"), "{err}");

    let pid_a = a.mysqld_pid().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert!(!common::pid_alive(pid_a), "mysqld stopped with its agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = common::topo_with_shard(dir.path(), KS).await;
    let (agent, client) =
        common::start_agent(common::tablet_config(dir.path(), KS, 200), &topo).await;

    let err = client.execute(&sql("SELEC nonsense")).await.unwrap_err();
    assert!(err.to_string().contains("MariaDB error 1064"), "{err}");
    let err = client
        .execute(&sql("SELECT * FROM no_such_table"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1146"), "{err}");
    let err = client.execute(&sql("  ")).await.unwrap_err();
    assert!(err.to_string().contains("empty SQL"), "{err}");
    let err = client
        .replicate_from(&ReplicateFrom {
            primary_alias: agent.alias().clone(),
            host: "127.0.0.1".into(),
            port: 1,
            tablet_type: None,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("itself"), "{err}");
    let err = client
        .replicate_from(&ReplicateFrom {
            primary_alias: TabletAlias::new("zone1", 1),
            host: String::new(),
            port: 3306,
            tablet_type: None,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad source address"), "{err}");

    // Raw HTTP: malformed bodies and unknown paths answer ApiError JSON.
    let http = reqwest::Client::new();
    let base = format!("http://{}", agent.agent_addr());
    let resp = http
        .post(format!("{base}/promote"))
        .header("content-type", "application/json")
        .body("{\"primary_term\": \"soon\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("primary_term"),
        "{body}"
    );
    let resp = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].is_string());
    let resp = http
        .get(format!("{base}/schema?db=missing_db"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    agent.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reparent_endpoints_positions_waits_io_thread_and_kills() {
    use mysql_async::prelude::Queryable;

    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = common::topo_with_shard(dir.path(), KS).await;
    let cfg_a = common::tablet_config(dir.path(), KS, 100);
    let cfg_b = common::tablet_config(dir.path(), KS, 101);
    let (primary_port, alias_a) = (cfg_a.mysqld.port, cfg_a.alias.clone());
    let ((a, client_a), (b, client_b)) = tokio::join!(
        common::start_agent(cfg_a, &topo),
        common::start_agent(cfg_b, &topo)
    );
    client_a.promote(1).await.unwrap();
    client_b
        .replicate_from(&ReplicateFrom {
            primary_alias: alias_a,
            host: "127.0.0.1".into(),
            port: primary_port,
            tablet_type: None,
        })
        .await
        .unwrap();
    client_a
        .execute(&sql("create table t (id int primary key)"))
        .await
        .unwrap();
    client_a
        .execute(&sql("insert into t values (1)"))
        .await
        .unwrap();

    let pa = client_a.positions().await.unwrap();
    assert_eq!(pa.server_id, 100);
    assert!(!pa.read_only);
    assert!(pa.gtid_binlog_pos.starts_with("0-100-"), "{pa:?}");
    assert!(pa.gtid_binlog_state.contains(&pa.gtid_binlog_pos), "{pa:?}");
    assert!(pa.gtid_io_pos.is_empty() && !pa.io_running);

    // The replica reaches the primary's position; a future one times out.
    let w = client_b
        .wait_for_position(&pa.gtid_binlog_pos, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(w.reached, "{w:?}");
    assert!(w.positions.io_running && w.positions.sql_running);
    assert_eq!(w.positions.gtid_io_pos, pa.gtid_binlog_pos);
    let w = client_b
        .wait_for_position("0-100-999999", Duration::from_millis(300))
        .await
        .unwrap();
    assert!(!w.reached);
    let err = client_b
        .wait_for_position("0-100-1; drop table t", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("bad GTID"), "{err:#}");

    // Stopping the IO thread leaves the SQL thread applying.
    let p = client_b.stop_io_thread().await.unwrap();
    assert!(!p.io_running && p.sql_running, "{p:?}");

    // An application session on the primary is killed; the agent's own are not.
    let creds = tessera_tablet::Credentials::default();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(primary_port)
        .user(Some(creds.app_user.clone()))
        .pass(Some(creds.app_password.clone()))
        .db_name(Some(KS));
    let mut app = mysql_async::Conn::new(opts).await.unwrap();
    app.query_drop("select 1").await.unwrap();
    let k = client_a.kill_app_connections().await.unwrap();
    assert_eq!(k.killed, 1);
    assert!(app.query_drop("select 1").await.is_err());
    assert!(client_a.health().await.unwrap().serving);

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
