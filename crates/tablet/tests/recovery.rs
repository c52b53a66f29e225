//! Recovery without a control plane: the agent restarts a kill -9'd mysqld
//! and puts it back in its role, and a whole shard restarted from its
//! topology records resumes primary and replication by itself.

mod common;

use std::time::Duration;

use common::wait_for;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tessera_tablet::api::{ExecuteRequest, ReplicateFrom};
use tessera_tablet::{AgentClient, TabletAgent};
use tessera_topo::TabletType;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mysqld_is_restarted_and_shard_resumes_after_restart() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let topo = common::topo_with_shard(dir.path(), KS).await;
    let cfg_a = common::tablet_config(dir.path(), KS, 300);
    let mut cfg_b = common::tablet_config(dir.path(), KS, 301);
    cfg_b.initial_type = TabletType::Rdonly;
    let ((a, client_a), (b, client_b)) = tokio::join!(
        common::start_agent(cfg_a.clone(), &topo),
        common::start_agent(cfg_b.clone(), &topo)
    );

    client_a.promote(1).await.unwrap();
    // What ctld records after a reparent; the restart below relies on it.
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

    // kill -9 the replica's mariadbd and write while it is down.
    let old_pid = b.mysqld_pid().await.expect("replica mysqld pid");
    kill(Pid::from_raw(old_pid as i32), Signal::SIGKILL).unwrap();
    client_a
        .execute(&sql("INSERT INTO t VALUES (2)"))
        .await
        .unwrap();
    wait_for("old mysqld gone", Duration::from_secs(30), || async {
        (!common::pid_alive(old_pid)).then_some(())
    })
    .await;
    let h = wait_for(
        "replica restarted and serving",
        Duration::from_secs(120),
        || async {
            let h = client_b.health().await.ok()?;
            (h.serving && h.mysqld_running).then_some(h)
        },
    )
    .await;
    assert_eq!(h.tablet_type, TabletType::Rdonly);
    assert!(h.read_only, "a restarted replica stays read-only");
    let new_pid = b.mysqld_pid().await.expect("restarted pid");
    assert_ne!(new_pid, old_pid);
    wait_for(
        "row written during the outage",
        Duration::from_secs(60),
        || async { (count_rows(&client_b).await == Some(2)).then_some(()) },
    )
    .await;

    // Stop the whole shard, then start it again from the records alone.
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert!(!common::pid_alive(new_pid));
    let (a, b) = tokio::join!(
        TabletAgent::start(cfg_a, topo.clone()),
        TabletAgent::start(cfg_b, topo.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let client_a = AgentClient::new(&a.agent_addr().to_string());
    let client_b = AgentClient::new(&b.agent_addr().to_string());
    let h = client_a.health().await.unwrap();
    assert_eq!(h.tablet_type, TabletType::Primary);
    assert!(h.serving && !h.read_only);
    client_a
        .execute(&sql("INSERT INTO t VALUES (3)"))
        .await
        .unwrap();
    wait_for(
        "replication resumed after restart",
        Duration::from_secs(60),
        || async { (count_rows(&client_b).await == Some(3)).then_some(()) },
    )
    .await;
    let h = client_b.health().await.unwrap();
    assert_eq!(
        h.tablet_type,
        TabletType::Rdonly,
        "kept its non-primary type"
    );
    let repl = h.replication.unwrap();
    assert_eq!(repl.source_port, a.mysql_port());
    assert!(repl.io_running && repl.sql_running);
    let (rec, _) = topo.get_tablet(a.alias()).await.unwrap().unwrap();
    assert_eq!(
        (rec.tablet_type, rec.primary_term),
        (TabletType::Primary, 1)
    );

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
