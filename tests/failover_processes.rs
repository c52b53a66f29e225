//! Unplanned failover with every component a separate process on etcd: a
//! semi_sync keyspace (a primary and two replicas), orc and a gate; a writer
//! logs every acknowledged id while the primary's agent and its mariadbd are
//! killed together with -9. orc must elect a replica, the gate must buffer,
//! and no acknowledged write may be lost.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    Process, eventually, free_port, mariadbd_pids_under, strings, tablet_args, tessera_bin,
};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use tessera_topo::testutil::EtcdServer;
use tessera_topo::{DurabilityPolicy, Keyspace, Topo};

fn ctl(server: &str, args: &[&str]) -> String {
    let out = Command::new(tessera_bin())
        .args(["ctl", "--server", server])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orc_replaces_a_killed_primary_without_losing_acknowledged_writes() {
    let etcd = EtcdServer::start_async().await.expect("etcd starts");
    let topo_spec = format!("etcd:{}", etcd.endpoint());
    // The keyspace is created before any tablet so that it is semi_sync.
    let topo = Topo::new(tessera_topo::open_store(&topo_spec).await.unwrap());
    topo.create_keyspace(&Keyspace {
        name: "commerce".into(),
        durability_policy: DurabilityPolicy::SemiSync,
        ..Default::default()
    })
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let uids = [100u32, 101, 102];
    let mysql_ports: Vec<u16> = uids.iter().map(|_| free_port()).collect();
    let agent_ports: Vec<u16> = uids.iter().map(|_| free_port()).collect();
    let (ctld_port, gate_port, gate_http) = (free_port(), free_port(), free_port());
    let ctld_addr = format!("127.0.0.1:{ctld_port}");
    let mut tablets: Vec<Process> = uids
        .iter()
        .enumerate()
        .map(|(i, uid)| {
            Process::spawn(
                "tablet",
                &tablet_args(&topo_spec, *uid, dir.path(), mysql_ports[i], agent_ports[i]),
            )
        })
        .collect();
    // One orc per topology: the standalone one started below, not ctld's.
    let _ctld = Process::spawn(
        "ctld",
        &strings(&[
            "ctld", "--topo", &topo_spec, "--listen", &ctld_addr, "--no-orc",
        ]),
    );
    tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(90), "three registered tablets", || {
            let out = Command::new(tessera_bin())
                .args(["ctl", "--server", &ctld_addr, "list-tablets"])
                .output()
                .unwrap();
            (out.status.success() && String::from_utf8_lossy(&out.stdout).lines().count() == 3)
                .then_some(())
        });
        ctl(
            &ctld_addr,
            &["init-shard-primary", "commerce/0", "zone1-100"],
        );
        ctl(
            &ctld_addr,
            &[
                "apply-schema",
                "--sql",
                "CREATE TABLE ha_log (id BIGINT PRIMARY KEY)",
                "commerce",
            ],
        );
    });
    let _orc = Process::spawn(
        "orc",
        &strings(&["orc", "--topo", &topo_spec, "--interval", "0.5"]),
    );
    let _gate = Process::spawn(
        "gate",
        &strings(&[
            "gate",
            "--topo",
            &topo_spec,
            "--mysql-listen",
            &format!("127.0.0.1:{gate_port}"),
            "--http-listen",
            &format!("127.0.0.1:{gate_http}"),
        ]),
    );

    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(gate_port)
        .user(Some("user"))
        .db_name(Some("commerce"))
        .prefer_socket(false);
    // Wait until semi-sync is armed on the primary: writes acknowledged from
    // then on are in a replica's relay log before the client hears of them.
    let mut probe = loop {
        if let Ok(c) = Conn::new(opts.clone()).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let on: Option<(String, String)> = probe
            .query_first("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'")
            .await
            .unwrap();
        if on.is_some_and(|(_, v)| v == "ON") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "semi-sync never armed on the primary"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    probe.disconnect().await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let stop = stop.clone();
        let opts = opts.clone();
        async move {
            let mut acked = Vec::new();
            let mut errors = Vec::new();
            let mut last = Instant::now();
            let mut max_gap = Duration::ZERO;
            let mut conn: Option<Conn> = None;
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                if conn.is_none() {
                    match Conn::new(opts.clone()).await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            errors.push(format!("connect: {e}"));
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                match conn
                    .as_mut()
                    .unwrap()
                    .exec_drop("INSERT INTO ha_log VALUES (?)", (id,))
                    .await
                {
                    Ok(()) => {
                        max_gap = max_gap.max(last.elapsed());
                        last = Instant::now();
                        acked.push(id);
                    }
                    Err(e) => {
                        errors.push(e.to_string());
                        conn = None;
                    }
                }
            }
            (acked, errors, max_gap)
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The primary's agent and its mariadbd die together.
    let primary_dir = dir.path().join("100");
    let mysqld_pids = mariadbd_pids_under(&primary_dir);
    assert_eq!(mysqld_pids.len(), 1);
    let killed = Instant::now();
    tablets[0].kill9();
    for pid in mysqld_pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let new_primary = tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(30), "orc to promote a replica", || {
            let listing = ctl(&ctld_addr, &["list-tablets"]);
            listing
                .lines()
                .find(|l| l.contains(" primary ") && !l.starts_with("zone1-0000000100"))
                .map(|l| l[..16].to_string())
        })
    });
    let failover = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, errors, max_gap) = writer.await.unwrap();
    let events = tokio::task::block_in_place(|| ctl(&ctld_addr, &["events"]));
    println!(
        "kill -9 agent+mysqld of the primary: {new_primary} promoted after {failover:?}; {} writes acknowledged, longest pause {max_gap:?}, client errors {:?}\n{events}",
        acked.len(),
        errors.iter().take(5).collect::<Vec<_>>()
    );

    let mut conn = Conn::new(opts).await.unwrap();
    let stored: Vec<u64> = conn.query("SELECT id FROM ha_log").await.unwrap();
    let stored: std::collections::HashSet<u64> = stored.into_iter().collect();
    let lost: Vec<u64> = acked
        .iter()
        .filter(|id| !stored.contains(id))
        .copied()
        .collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // The write in flight at the kill is settled by its write marker on the
    // new primary: the client sees no error at all.
    assert!(
        errors.is_empty(),
        "client errors: {:?}",
        errors.iter().take(5).collect::<Vec<_>>()
    );
    assert!(events.to_lowercase().contains("emergency"), "{events}");
    let port: Option<u16> = conn.query_first("SELECT @@port").await.unwrap();
    assert_ne!(port, Some(mysql_ports[0]), "writes go to the new primary");
    conn.disconnect().await.unwrap();
}
