//! A primary that missed an emergency reparent (cut off while another
//! tablet was promoted) fences itself once it sees the newer primary in the
//! Shard record: read-only at once, then a replica of the new primary, or
//! out of serving when it holds transactions the new primary lacks.

mod common;

use std::time::Duration;

use common::wait_for;
use mysql_async::prelude::Queryable;
use tessera_tablet::api::{ExecuteRequest, ReplicateFrom};
use tessera_tablet::{AgentClient, TabletAgent};
use tessera_topo::{TabletType, Topo};

const KS: &str = "orders";

fn sql(text: &str) -> ExecuteRequest {
    ExecuteRequest {
        sql: text.into(),
        db: None,
        skip_binlog: false,
    }
}

async fn count_rows(client: &AgentClient) -> Option<i64> {
    let r = client.execute(&sql("SELECT COUNT(*) FROM t")).await.ok()?;
    r.rows.first()?.first()?.as_deref()?.parse().ok()
}

/// Primary A in term 1 with replica B replicating one row.
async fn shard_of_two(
    dir: &std::path::Path,
    uid_a: u32,
) -> (Topo, (TabletAgent, AgentClient), (TabletAgent, AgentClient)) {
    let topo = common::topo_with_shard(dir, KS).await;
    let cfg_a = common::tablet_config(dir, KS, uid_a);
    let cfg_b = common::tablet_config(dir, KS, uid_a + 1);
    let ((a, client_a), (b, client_b)) = tokio::join!(
        common::start_agent(cfg_a, &topo),
        common::start_agent(cfg_b, &topo)
    );
    client_a.promote(1).await.unwrap();
    topo.update_shard(KS, "0", |s| {
        s.primary_alias = Some(a.alias().clone());
        s.primary_term = 1;
        Ok(())
    })
    .await
    .unwrap();
    client_b
        .replicate_from(&ReplicateFrom {
            primary_alias: a.alias().clone(),
            host: "127.0.0.1".into(),
            port: a.mysql_port(),
            tablet_type: None,
        })
        .await
        .unwrap();
    client_a
        .execute(&sql(
            "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)",
        ))
        .await
        .unwrap();
    wait_for("first row replicated", Duration::from_secs(60), || async {
        (count_rows(&client_b).await == Some(1)).then_some(())
    })
    .await;
    (topo, (a, client_a), (b, client_b))
}

/// What an emergency reparent does while A is cut off: B is promoted in
/// term 2 and the Shard record names it, and nobody tells A.
async fn reparent_behind_a_back(topo: &Topo, b: &TabletAgent, client_b: &AgentClient) {
    client_b.promote(2).await.unwrap();
    topo.update_shard(KS, "0", |s| {
        s.primary_alias = Some(b.alias().clone());
        s.primary_term = 2;
        Ok(())
    })
    .await
    .unwrap();
}

async fn assert_app_write_refused(port: u16) {
    let creds = tessera_tablet::Credentials::default();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(creds.app_user.clone()))
        .pass(Some(creds.app_password.clone()))
        .db_name(Some(KS));
    let mut app = mysql_async::Conn::new(opts).await.unwrap();
    let err = app
        .query_drop("INSERT INTO t VALUES (1000)")
        .await
        .expect_err("an application write on a fenced primary must fail");
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1290, "{e:?}"),
        other => panic!("expected read-only error 1290, got {other:?}"),
    }
    let _ = app.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_primary_fences_and_rejoins_new_primary() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, (a, client_a), (b, client_b)) = shard_of_two(dir.path(), 500).await;
    reparent_behind_a_back(&topo, &b, &client_b).await;

    wait_for("old primary read-only", Duration::from_secs(20), || async {
        client_a.health().await.ok()?.read_only.then_some(())
    })
    .await;
    assert_app_write_refused(a.mysql_port()).await;

    let h = wait_for(
        "old primary replicating from the new one",
        Duration::from_secs(60),
        || async {
            let h = client_a.health().await.ok()?;
            let r = h.replication.as_ref()?;
            (r.source_port == b.mysql_port() && r.io_running && r.sql_running).then_some(h)
        },
    )
    .await;
    assert_eq!(h.tablet_type, TabletType::Replica);
    assert!(h.read_only && h.serving, "{h:?}");

    client_b
        .execute(&sql("INSERT INTO t VALUES (2)"))
        .await
        .unwrap();
    wait_for(
        "new primary's write reaches the old one",
        Duration::from_secs(60),
        || async { (count_rows(&client_a).await == Some(2)).then_some(()) },
    )
    .await;
    let (rec, _) = topo.get_tablet(a.alias()).await.unwrap().unwrap();
    assert_eq!(rec.tablet_type, TabletType::Replica);
    assert!(!rec.needs_reseed);

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_primary_with_errant_write_needs_reseed() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (topo, (a, client_a), (b, client_b)) = shard_of_two(dir.path(), 510).await;
    // The partition: B stops receiving, and A takes a write nobody gets.
    client_b.stop_io_thread().await.unwrap();
    client_a
        .execute(&sql("INSERT INTO t VALUES (99)"))
        .await
        .unwrap();
    reparent_behind_a_back(&topo, &b, &client_b).await;

    wait_for(
        "old primary marked for re-seed",
        Duration::from_secs(60),
        || async {
            let (rec, _) = topo.get_tablet(a.alias()).await.ok()??;
            rec.needs_reseed.then_some(rec)
        },
    )
    .await;
    let rec = topo.get_tablet(a.alias()).await.unwrap().unwrap().0;
    assert_eq!(rec.tablet_type, TabletType::Replica);
    let h = client_a.health().await.unwrap();
    assert!(h.read_only, "{h:?}");
    assert!(!h.serving, "a tablet needing re-seed must not serve: {h:?}");
    assert!(h.replication.is_none(), "must not replicate: {h:?}");
    assert_app_write_refused(a.mysql_port()).await;
    // The errant row stays only on A; B never saw it.
    assert_eq!(count_rows(&client_b).await, Some(1));

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
