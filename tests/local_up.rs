//! `tessera local up` end to end: a newcomer's first session with the
//! `mariadb` client, reads from replica and rdonly, a replica's mysqld killed
//! with -9, `local status` / `local down`, and a restart that keeps the data.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{LocalCluster, eventually, tessera_bin};

#[test]
fn local_cluster_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut cluster = LocalCluster::start(&data_dir);
    println!("first start: ready after {:?}", cluster.startup);
    assert!(
        cluster
            .ready_line
            .contains(&format!("-P {}", cluster.ports.gate))
    );
    assert_eq!(cluster.mariadbd_pids().len(), 3, "one mariadbd per tablet");

    // The tutorial's first steps through the gate.
    cluster.mariadb_ok(
        "commerce",
        "CREATE TABLE product (sku VARBINARY(128), description VARCHAR(128), price BIGINT, PRIMARY KEY(sku))",
    );
    cluster.mariadb_ok(
        "commerce",
        "INSERT INTO product VALUES ('SKU-1001', 'Monitor', 100), ('SKU-1002', 'Keyboard', 30)",
    );
    let out = cluster.mariadb_ok("commerce", "SELECT sku, price FROM product ORDER BY sku");
    assert_eq!(out, "SKU-1001\t100\nSKU-1002\t30\n");
    let dbs = cluster.mariadb_ok("", "SHOW DATABASES");
    assert_eq!(dbs.trim(), "commerce");

    // Replica and rdonly reads see the row once replicated, and really are
    // served by those tablets' mysqlds.
    for (target, uid) in [("commerce@replica", 101u16), ("commerce@rdonly", 102)] {
        let rows = eventually(Duration::from_secs(20), "replicated row", || {
            let out = cluster.mariadb(target, "SELECT COUNT(*), @@port FROM product");
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.starts_with("2\t").then_some(text)
        });
        assert_eq!(
            rows.trim(),
            format!("2\t{}", cluster.ports.mysqld(uid)),
            "{target} must be served by zone1-{uid}"
        );
    }
    let primary_port = cluster.mariadb_ok("commerce", "SELECT @@port");
    assert_eq!(primary_port.trim(), cluster.ports.mysqld(100).to_string());

    // ctl sees the three tablets with their roles.
    let tablets = Command::new(tessera_bin())
        .args([
            "ctl",
            "--server",
            &format!("127.0.0.1:{}", cluster.ports.ctld),
            "list-tablets",
        ])
        .output()
        .unwrap();
    assert!(
        tablets.status.success(),
        "{}",
        String::from_utf8_lossy(&tablets.stderr)
    );
    let listing = String::from_utf8(tablets.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert!(
        lines[0].starts_with("zone1-0000000100 commerce 0 primary "),
        "{listing}"
    );
    assert!(
        lines[1].starts_with("zone1-0000000101 commerce 0 replica "),
        "{listing}"
    );
    assert!(
        lines[2].starts_with("zone1-0000000102 commerce 0 rdonly "),
        "{listing}"
    );

    // kill -9 the replica's mysqld: its agent restarts it and it catches up.
    let replica_pid = eventually(Duration::from_secs(5), "replica mysqld pid", || {
        common::mariadbd_pids_under(&data_dir.join("tablets").join("zone1-0000000101"))
            .first()
            .copied()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(replica_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    cluster.mariadb_ok(
        "commerce",
        "INSERT INTO product VALUES ('SKU-1003', 'Mouse', 20)",
    );
    eventually(
        Duration::from_secs(60),
        "restarted replica to catch up",
        || {
            let out = cluster.mariadb("commerce@replica", "SELECT COUNT(*) FROM product");
            (String::from_utf8_lossy(&out.stdout).trim() == "3").then_some(())
        },
    );
    let new_pid = common::mariadbd_pids_under(&data_dir.join("tablets").join("zone1-0000000101"));
    assert_eq!(new_pid.len(), 1);
    assert_ne!(
        new_pid[0], replica_pid,
        "a new mysqld process serves the replica"
    );

    // `local status` and `local down` from "another terminal".
    let status = Command::new(tessera_bin())
        .args(["local", "status", "--data-dir"])
        .arg(&data_dir)
        .args(["--server", &format!("127.0.0.1:{}", cluster.ports.ctld)])
        .output()
        .unwrap();
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(status_text.contains("running"), "{status_text}");
    assert!(status_text.contains("zone1-0000000102"), "{status_text}");

    let down = Command::new(tessera_bin())
        .args(["local", "down", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let mut child = cluster.child.take().unwrap();
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "local up exits cleanly after local down: {exit:?}"
    );
    assert!(
        cluster.mariadbd_pids().is_empty(),
        "no mariadbd left running after local down"
    );

    // Up again on the same data dir: the data is there and the roles resumed.
    let mut again = LocalCluster::start_with(&data_dir, cluster.ports, &[]);
    println!("restart: ready after {:?}", again.startup);
    let out = again.mariadb_ok("commerce", "SELECT COUNT(*) FROM product");
    assert_eq!(out.trim(), "3");
    again.mariadb_ok(
        "commerce",
        "INSERT INTO product VALUES ('SKU-1004', 'Pad', 5)",
    );
    eventually(Duration::from_secs(20), "replication after restart", || {
        let out = again.mariadb("commerce@rdonly", "SELECT COUNT(*) FROM product");
        (String::from_utf8_lossy(&out.stdout).trim() == "4").then_some(())
    });
    let exit = again.stop();
    assert!(exit.success());
    assert!(
        again.mariadbd_pids().is_empty(),
        "SIGTERM stops every mariadbd"
    );
}

#[test]
fn local_up_refuses_a_bad_config_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cluster.toml");
    std::fs::write(
        &cfg,
        r#"
        [[keyspace]]
        name = "commerce"
        durability = "semi_sync"
        [[keyspace.shard]]
        name = "0"
        tablets = [{ uid = 100, type = "primary" }, { uid = 101, type = "replica" }]
        "#,
    )
    .unwrap();
    let out = Command::new(tessera_bin())
        .args(["local", "up", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least two replica"), "{err}");
}
