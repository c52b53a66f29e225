//! ctld's HTTP API and CLI over a real redb topology, without mysqld: error
//! codes and messages, vschema round trips, read-only mode, and a tablet
//! whose agent is down.

mod common;

use common::{call, free_port, start_ctld, topo_with_commerce};
use reqwest::Method;
use tessera_ctld::cli::{CtlCommand, run_ctl_output};
use tessera_topo::{FORMAT_VERSION, Tablet, TabletAlias, TabletType};

const VSCHEMA: &str = r#"{
  "sharded": true,
  "vindexes": {"hash": {"type": "hash"}},
  "tables": {"customer": {"column_vindexes": [{"column": "customer_id", "name": "hash"}]}}
}"#;

/// A tablet record whose agent nobody runs: what ctld sees of a dead host.
fn dead_tablet(uid: u32, keyspace: &str, shard: &str) -> Tablet {
    Tablet {
        format: FORMAT_VERSION,
        alias: TabletAlias::new("zone1", uid),
        hostname: "localhost".into(),
        keyspace: keyspace.into(),
        shard: shard.into(),
        tablet_type: TabletType::Replica,
        mysql_host: "127.0.0.1".into(),
        mysql_port: free_port(),
        agent_addr: format!("127.0.0.1:{}", free_port()),
        db_name: keyspace.into(),
        primary_term: 0,
        needs_reseed: false,
    }
}

#[tokio::test]
async fn vschema_round_trip_and_errors() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = topo_with_commerce(dir.path()).await;
    let ctld = start_ctld(&topo, false).await;
    let server = ctld.http_addr().to_string();

    // No vschema yet: an unsharded keyspace needs none.
    let out = run_ctl_output(
        &server,
        CtlCommand::GetVschema {
            keyspace: "commerce".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(out.trim(), "{}");

    let file = dir.path().join("vschema.json");
    std::fs::write(&file, VSCHEMA).unwrap();
    let applied = run_ctl_output(
        &server,
        CtlCommand::ApplyVschema {
            vschema: None,
            vschema_file: Some(file),
            keyspace: "commerce".into(),
        },
    )
    .await
    .unwrap();
    let expected: serde_json::Value = serde_json::from_str(VSCHEMA).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&applied).unwrap(),
        expected
    );
    let fetched = run_ctl_output(
        &server,
        CtlCommand::GetVschema {
            keyspace: "commerce".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&fetched).unwrap(),
        expected
    );
    assert_eq!(
        topo.get_vschema("commerce").await.unwrap().unwrap(),
        VSCHEMA.trim()
    );

    // Bad JSON: a clear message naming the problem, and the stored one kept.
    let err = run_ctl_output(
        &server,
        CtlCommand::ApplyVschema {
            vschema: Some(r#"{"sharded": true, "tables": {"#.into()),
            vschema_file: None,
            keyspace: "commerce".into(),
        },
    )
    .await
    .expect_err("truncated JSON is refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("vschema is not valid JSON") && msg.contains("line 1"),
        "{msg}"
    );
    let err = run_ctl_output(
        &server,
        CtlCommand::ApplyVschema {
            vschema: Some(r#"{"sharded": "yes"}"#.into()),
            vschema_file: None,
            keyspace: "commerce".into(),
        },
    )
    .await
    .expect_err("non-boolean sharded is refused");
    assert!(
        format!("{err:#}").contains("field sharded: must be true or false"),
        "{err:#}"
    );
    assert_eq!(
        topo.get_vschema("commerce").await.unwrap().unwrap(),
        VSCHEMA.trim()
    );

    // Over raw HTTP: status codes and the {"error"} body.
    let base = format!("http://{server}");
    let (status, body) = call(
        Method::PUT,
        format!("{base}/api/keyspaces/commerce/vschema"),
        Some("[]".into()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("must be a JSON object, found an array")
    );
    let (status, body) = call(
        Method::PUT,
        format!("{base}/api/keyspaces/nope/vschema"),
        Some("{}".into()),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("keyspace nope does not exist")
    );
    let (status, _) = call(
        Method::GET,
        format!("{base}/api/keyspaces/nope/vschema"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let err = run_ctl_output(
        &server,
        CtlCommand::GetVschema {
            keyspace: "nope".into(),
        },
    )
    .await
    .expect_err("missing keyspace");
    assert!(format!("{err:#}").contains("keyspace nope does not exist"));

    ctld.shutdown().await;
}

#[tokio::test]
async fn errors_status_and_dead_tablets() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = topo_with_commerce(dir.path()).await;
    topo.create_cell(&tessera_topo::CellInfo {
        name: "zone1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dead = dead_tablet(100, "commerce", "0");
    topo.put_tablet(&dead).await.unwrap();
    let stranger = dead_tablet(200, "customer", "-80");
    topo.put_tablet(&stranger).await.unwrap();
    let ctld = start_ctld(&topo, false).await;
    let server = ctld.http_addr().to_string();
    let base = format!("http://{server}");

    // Status.
    let out = run_ctl_output(&server, CtlCommand::Status).await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["cell"], "zone1");
    assert_eq!(status["keyspaces"], serde_json::json!(["commerce"]));
    assert_eq!(status["tablet_count"], 2);
    assert_eq!(status["read_only"], false);

    // A dead agent still lists, with its health error, in Vitess's format.
    let (code, tablets) = call(Method::GET, format!("{base}/api/tablets"), None).await;
    assert_eq!(code, 200);
    assert!(tablets[0]["health"].is_null());
    assert!(!tablets[0]["health_error"].as_str().unwrap().is_empty());
    let out = run_ctl_output(
        &server,
        CtlCommand::ListTablets {
            keyspace: None,
            shard: None,
            tablet_type: None,
            cell_flags: vec![],
            cells: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        format!(
            "zone1-0000000100 commerce 0 replica {} 127.0.0.1:{} [] <null>\n\
             zone1-0000000200 customer -80 replica {} 127.0.0.1:{} [] <null>\n",
            dead.agent_addr, dead.mysql_port, stranger.agent_addr, stranger.mysql_port
        )
    );
    let only_customer = run_ctl_output(
        &server,
        CtlCommand::ListTablets {
            keyspace: Some("customer".into()),
            shard: None,
            tablet_type: None,
            cell_flags: vec![],
            cells: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(only_customer.lines().count(), 1);
    assert!(only_customer.starts_with("zone1-0000000200 customer -80 "));

    // Keyspaces with shards.
    let (code, keyspaces) = call(Method::GET, format!("{base}/api/keyspaces"), None).await;
    assert_eq!(code, 200);
    assert_eq!(keyspaces[0]["keyspace"]["name"], "commerce");
    assert_eq!(keyspaces[0]["shards"][0]["name"], "0");
    assert!(keyspaces[0]["shards"][0]["primary_alias"].is_null());

    // init-shard-primary refusals.
    let init = |ks_shard: &str, alias: &str| CtlCommand::InitShardPrimary {
        keyspace_shard: ks_shard.into(),
        alias: alias.into(),
        force: false,
        wait_replicas_timeout: None,
    };
    let err = run_ctl_output(&server, init("commerce/0", "zone1-999"))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("tablet zone1-0000000999 does not exist"),
        "{err:#}"
    );
    let err = run_ctl_output(&server, init("commerce/0", "zone1-200"))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("belongs to customer/-80, not to commerce/0"),
        "{err:#}"
    );
    let err = run_ctl_output(&server, init("commerce/9", "zone1-100"))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("shard commerce/9 does not exist"),
        "{err:#}"
    );
    let err = run_ctl_output(&server, init("commerce/0", "zone1"))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("expected cell-uid"), "{err:#}");
    // The dead tablet cannot be promoted; the shard keeps no primary.
    let err = run_ctl_output(&server, init("commerce/0", "zone1-100"))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("could not be promoted"),
        "{err:#}"
    );
    let (shard, _) = topo.get_shard("commerce", "0").await.unwrap().unwrap();
    assert_eq!((shard.primary_alias, shard.primary_term), (None, 0));
    let (code, body) = call(
        Method::POST,
        format!("{base}/api/shards/commerce/0/init-primary"),
        Some(r#"{"tablet": "zone1-100"}"#.into()),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("expected JSON such as"),
        "{body}"
    );
    let (code, body) = call(
        Method::POST,
        format!("{base}/api/shards/commerce/0/init-primary"),
        Some(r#"{"alias": "zone1-100"}"#.into()),
    )
    .await;
    assert_eq!(code, 502, "{body}");

    // apply-schema needs a primary on every shard.
    let err = run_ctl_output(
        &server,
        CtlCommand::ApplySchema {
            sql: vec!["create table t (id int)".into()],
            sql_file: None,
            ddl_strategy: None,
            keyspace: "commerce".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("shard commerce/0 has no primary"),
        "{err:#}"
    );
    let (code, body) = call(
        Method::POST,
        format!("{base}/api/keyspaces/commerce/schema"),
        Some(r#"{"sql": " ; "}"#.into()),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(body["error"], "no SQL statement given");
    let err = run_ctl_output(
        &server,
        CtlCommand::ApplySchema {
            sql: vec!["create table t (id int)".into()],
            sql_file: None,
            ddl_strategy: Some("vitess".into()),
            keyspace: "commerce".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("only \"direct\""), "{err:#}");

    // get-schema of a tablet whose agent is down names the address.
    let (code, body) = call(
        Method::GET,
        format!("{base}/api/tablets/zone1-100/schema"),
        None,
    )
    .await;
    assert_eq!(code, 502);
    assert!(
        body["error"].as_str().unwrap().contains(&dead.agent_addr),
        "{body}"
    );
    let (code, _) = call(
        Method::GET,
        format!("{base}/api/tablets/zone1-x/schema"),
        None,
    )
    .await;
    assert_eq!(code, 400);

    // Unknown endpoints answer JSON too.
    let (code, body) = call(Method::GET, format!("{base}/api/nothing"), None).await;
    assert_eq!(code, 404);
    assert!(body["error"].as_str().unwrap().contains("openapi.json"));
    let (code, body) = call(Method::DELETE, format!("{base}/api/tablets"), None).await;
    assert_eq!(code, 405);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("method not allowed")
    );

    ctld.shutdown().await;
}

#[tokio::test]
async fn openapi_describes_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let topo = topo_with_commerce(dir.path()).await;
    let ctld = start_ctld(&topo, false).await;
    let (code, doc) = call(
        Method::GET,
        format!("http://{}/api/openapi.json", ctld.http_addr()),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/status", "get"),
        ("/api/openapi.json", "get"),
        ("/api/tablets", "get"),
        ("/api/tablets/{alias}/schema", "get"),
        ("/api/keyspaces", "get"),
        ("/api/shards/{keyspace}/{shard}/init-primary", "post"),
        ("/api/keyspaces/{keyspace}/schema", "post"),
        ("/api/keyspaces/{keyspace}/vschema", "get"),
        ("/api/keyspaces/{keyspace}/vschema", "put"),
        ("/api/shards/{keyspace}/{shard}/planned-reparent", "post"),
        ("/api/shards/{keyspace}/{shard}/emergency-reparent", "post"),
        ("/api/tablets/{alias}/externally-reparented", "post"),
        ("/api/tablets/{alias}/type", "post"),
        ("/api/tablets/{alias}/drain", "post"),
        ("/api/tablets/{alias}/undrain", "post"),
        ("/api/events", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    ctld.shutdown().await;
}

#[tokio::test]
async fn read_only_ctld_refuses_mutations() {
    let dir = tempfile::tempdir().unwrap();
    let topo = topo_with_commerce(dir.path()).await;
    let ctld = start_ctld(&topo, true).await;
    let server = ctld.http_addr().to_string();
    let base = format!("http://{server}");

    for (method, path, body) in [
        (Method::PUT, "/api/keyspaces/commerce/vschema", "{}"),
        (
            Method::POST,
            "/api/keyspaces/commerce/schema",
            r#"{"sql": "create table t (id int)"}"#,
        ),
        (
            Method::POST,
            "/api/shards/commerce/0/init-primary",
            r#"{"alias": "zone1-100"}"#,
        ),
        (
            Method::POST,
            "/api/shards/commerce/0/planned-reparent",
            "{}",
        ),
        (
            Method::POST,
            "/api/shards/commerce/0/emergency-reparent",
            "{}",
        ),
        (Method::POST, "/api/tablets/zone1-100/drain", "{}"),
        (
            Method::POST,
            "/api/tablets/zone1-100/type",
            r#"{"tablet_type": "rdonly"}"#,
        ),
    ] {
        let (code, answer) = call(method.clone(), format!("{base}{path}"), Some(body.into())).await;
        assert_eq!(code, 403, "{method} {path}");
        assert!(answer["error"].as_str().unwrap().contains("read-only"));
    }
    let err = run_ctl_output(
        &server,
        CtlCommand::ApplyVschema {
            vschema: Some(r#"{"sharded": false}"#.into()),
            vschema_file: None,
            keyspace: "commerce".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("read-only"), "{err:#}");
    assert!(
        topo.get_vschema("commerce").await.unwrap().is_none(),
        "nothing was written"
    );

    // Reads still work.
    let status: serde_json::Value =
        serde_json::from_str(&run_ctl_output(&server, CtlCommand::Status).await.unwrap()).unwrap();
    assert_eq!(status["read_only"], true);
    let (code, _) = call(
        Method::GET,
        format!("{base}/api/keyspaces/commerce/vschema"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    ctld.shutdown().await;
}
