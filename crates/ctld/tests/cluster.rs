//! ctld driving two real tablets (agents with real mariadbd children) over a
//! real redb topology, through the `tessera ctl` functions: promotion and
//! replication, schema changes reaching the replica, listing, and a forced
//! change of primary.

mod common;

use std::time::Duration;

use common::{free_port, start_ctld, topo_with_commerce, wait_for};
use tessera_ctld::cli::{CtlCommand, run_ctl_output};
use tessera_tablet::api::{AgentClient, ExecuteRequest};
use tessera_tablet::{TabletAgent, TabletConfig};
use tessera_topo::{TabletAlias, TabletType, Topo};

const READY: Duration = Duration::from_secs(90);

async fn start_tablet(topo: &Topo, dir: &std::path::Path, uid: u32) -> TabletAgent {
    let alias = TabletAlias::new("zone1", uid);
    let cfg = TabletConfig::local(
        dir.join(format!("tablet-{uid}")),
        alias,
        "commerce",
        "0",
        free_port(),
        0,
    );
    TabletAgent::start(cfg, topo.clone())
        .await
        .unwrap_or_else(|e| panic!("tablet {uid} starts: {e:#}"))
}

fn execute(sql: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: sql.into(),
        db: None,
        skip_binlog: false,
    }
}

/// Polls the tablet until `sql` returns exactly `want` as its first column.
async fn wait_rows(agent: &AgentClient, sql: &str, want: &[&str]) {
    let want: Vec<Option<String>> = want.iter().map(|s| Some(s.to_string())).collect();
    wait_for(&format!("{sql} to return {want:?}"), READY, || async {
        let result = agent.execute(&execute(sql)).await.ok()?;
        let got: Vec<Option<String>> = result.rows.into_iter().map(|r| r[0].clone()).collect();
        (got == want).then_some(())
    })
    .await;
}

fn list_all() -> CtlCommand {
    CtlCommand::ListTablets {
        keyspace: None,
        shard: None,
        tablet_type: None,
        cell_flags: vec![],
        cells: vec![],
    }
}

fn init(alias: &str) -> CtlCommand {
    CtlCommand::InitShardPrimary {
        keyspace_shard: "commerce/0".into(),
        alias: alias.into(),
        force: true,
        wait_replicas_timeout: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctld_runs_a_shard_of_two_real_tablets() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = topo_with_commerce(dir.path()).await;
    let (t100, t101) = tokio::join!(
        start_tablet(&topo, dir.path(), 100),
        start_tablet(&topo, dir.path(), 101)
    );
    let ctld = start_ctld(&topo, false).await;
    let server = ctld.http_addr().to_string();
    let agent100 = AgentClient::new(&t100.agent_addr().to_string());
    let agent101 = AgentClient::new(&t101.agent_addr().to_string());

    // Before any primary: two replicas, no term start.
    let out = run_ctl_output(&server, list_all()).await.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        format!(
            "zone1-0000000100 commerce 0 replica {} 127.0.0.1:{} [] <null>",
            t100.agent_addr(),
            t100.mysql_port()
        )
    );
    assert!(
        lines[1].starts_with("zone1-0000000101 commerce 0 replica "),
        "{out}"
    );

    // init-shard-primary: 100 becomes primary, 101 replicates from it.
    let out = run_ctl_output(&server, init("zone1-100")).await.unwrap();
    assert_eq!(
        out.trim(),
        "zone1-0000000100 is primary of commerce/0 (term 1)"
    );
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_alias, Some(TabletAlias::new("zone1", 100)));
    assert_eq!(shard.primary_term, 1);
    assert!(shard.is_primary_serving);
    let h100 = agent100.health().await.unwrap();
    assert_eq!(h100.tablet_type, TabletType::Primary);
    assert!(!h100.read_only);
    let h101 = agent101.health().await.unwrap();
    assert_eq!(h101.tablet_type, TabletType::Replica);
    assert!(h101.read_only);
    assert_eq!(
        h101.replication.as_ref().unwrap().source_port,
        t100.mysql_port()
    );

    // apply-schema through ctld: runs on the primary, reaches the replica.
    let sql_file = dir.path().join("schema.sql");
    std::fs::write(
        &sql_file,
        "create table customer (id bigint primary key, email varchar(128));\n\
         insert into customer values (1, 'a@example.com'), (2, 'b;@example.com');\n",
    )
    .unwrap();
    let out = run_ctl_output(
        &server,
        CtlCommand::ApplySchema {
            sql: vec![],
            sql_file: Some(sql_file),
            ddl_strategy: Some("direct".into()),
            keyspace: "commerce".into(),
        },
    )
    .await
    .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The count itself comes from the agent's /execute; only its presence
    // per shard is ctld's doing.
    assert!(answer["rows_affected_by_shard"]["0"].is_u64(), "{out}");
    assert_eq!(answer["uuid_list"], serde_json::json!([]), "{out}");
    wait_rows(
        &agent101,
        "select email from customer order by id",
        &["a@example.com", "b;@example.com"],
    )
    .await;

    // A write on the primary shows up on the replica.
    agent100
        .execute(&execute("insert into customer values (3, 'c@example.com')"))
        .await
        .unwrap();
    wait_rows(
        &agent101,
        "select email from customer where id = 3",
        &["c@example.com"],
    )
    .await;

    // get-schema on the replica shows the table and its CREATE statement.
    let out = run_ctl_output(
        &server,
        CtlCommand::GetSchema {
            tables: vec![],
            table_names_only: false,
            alias: "zone1-101".into(),
        },
    )
    .await
    .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tables = schema["tables"].as_array().unwrap();
    let customer = tables
        .iter()
        .find(|t| t["name"] == "customer")
        .expect("customer listed");
    assert!(
        customer["create_statement"]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE `customer`")
    );
    let names = run_ctl_output(
        &server,
        CtlCommand::GetSchema {
            tables: vec!["customer".into()],
            table_names_only: true,
            alias: "zone1-0000000101".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(names, "customer\n");

    // list-tablets: the primary shows its term start as RFC 3339.
    let out = run_ctl_output(&server, list_all()).await.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let primary_line = lines[0];
    let prefix = format!(
        "zone1-0000000100 commerce 0 primary {} 127.0.0.1:{} [] ",
        t100.agent_addr(),
        t100.mysql_port()
    );
    assert!(primary_line.starts_with(&prefix), "{primary_line}");
    let started = &primary_line[prefix.len()..];
    assert_eq!(
        started,
        tessera_ctld::listing::rfc3339_utc(shard.primary_term_start_ms / 1000)
    );
    assert!(started.len() == 20 && started.ends_with('Z'), "{started}");
    assert!(
        lines[1].starts_with("zone1-0000000101 commerce 0 replica ")
            && lines[1].ends_with(" [] <null>")
    );

    // Forced change of primary: 101 takes over in term 2, 100 follows it.
    let out = run_ctl_output(&server, init("zone1-0000000101"))
        .await
        .unwrap();
    assert_eq!(
        out.trim(),
        "zone1-0000000101 is primary of commerce/0 (term 2)"
    );
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_alias, Some(TabletAlias::new("zone1", 101)));
    assert_eq!(shard.primary_term, 2);
    let h100 = agent100.health().await.unwrap();
    assert_eq!(h100.tablet_type, TabletType::Replica);
    assert!(h100.read_only);
    assert_eq!(
        h100.replication.as_ref().unwrap().source_port,
        t101.mysql_port()
    );
    agent101
        .execute(&execute("insert into customer values (4, 'd@example.com')"))
        .await
        .unwrap();
    wait_rows(
        &agent100,
        "select email from customer where id = 4",
        &["d@example.com"],
    )
    .await;
    let (rec100, _) = topo
        .get_tablet(&TabletAlias::new("zone1", 100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec100.tablet_type, TabletType::Replica);
    let out = run_ctl_output(&server, list_all()).await.unwrap();
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .starts_with("zone1-0000000101 commerce 0 primary "),
        "{out}"
    );
    assert!(out.lines().next().unwrap().ends_with(" [] <null>"), "{out}");

    // A tablet whose agent is down does not stop a change of primary, but
    // the answer names it.
    let mut dead = rec100.clone();
    dead.alias = TabletAlias::new("zone1", 102);
    dead.tablet_type = TabletType::Rdonly;
    dead.agent_addr = format!("127.0.0.1:{}", free_port());
    dead.mysql_port = free_port();
    topo.put_tablet(&dead).await.unwrap();
    let err = run_ctl_output(&server, init("zone1-100"))
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("zone1-0000000100 is now primary of commerce/0 (term 3)")
            && msg.contains("zone1-0000000102"),
        "{msg}"
    );
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!(shard.primary_alias, Some(TabletAlias::new("zone1", 100)));
    assert_eq!(shard.primary_term, 3);
    agent100
        .execute(&execute("insert into customer values (5, 'e@example.com')"))
        .await
        .unwrap();
    wait_rows(&agent101, "select count(*) from customer", &["5"]).await;
    topo.delete_tablet(&dead.alias).await.unwrap();

    // A failing statement names the shard and the statement, and the
    // statements before it stay applied.
    let err = run_ctl_output(
        &server,
        CtlCommand::ApplySchema {
            sql: vec![
                "create table orders (id int primary key); create table customer (id int)".into(),
            ],
            sql_file: None,
            ddl_strategy: None,
            keyspace: "commerce".into(),
        },
    )
    .await
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("shard 0 (primary zone1-0000000100), statement 2 of 2"),
        "{msg}"
    );
    assert!(msg.contains("already exists"), "{msg}");

    let status: serde_json::Value =
        serde_json::from_str(&run_ctl_output(&server, CtlCommand::Status).await.unwrap()).unwrap();
    assert_eq!(status["tablet_count"], 2);

    ctld.shutdown().await;
    let (r100, r101) = tokio::join!(t100.shutdown(), t101.shutdown());
    r100.unwrap();
    r101.unwrap();
}
