//! `local up --config` with a sharded keyspace: Vitess-named key-range shards,
//! each with its own primary, reachable by shard targeting (`USE ks:-80`).

mod common;

use std::time::Duration;

use common::{LocalCluster, Ports, eventually};

const CONFIG: &str = r#"
cell = "zone1"

[[keyspace]]
name = "commerce"
[[keyspace.shard]]
name = "0"
tablets = [{ uid = 100, type = "primary" }]

[[keyspace]]
name = "customer"
sharded = true
[[keyspace.shard]]
name = "-80"
tablets = [{ uid = 101, type = "primary" }, { uid = 102, type = "replica" }]
[[keyspace.shard]]
name = "80-"
tablets = [{ uid = 103, type = "primary" }]
"#;

#[test]
fn sharded_keyspace_with_shard_targeting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let ports = Ports::pick_for(4);
    let cluster = LocalCluster::start_with(
        &dir.path().join("data"),
        ports,
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(cluster.mariadbd_pids().len(), 4);

    let dbs = cluster.mariadb_ok("", "SHOW DATABASES");
    assert_eq!(dbs, "commerce\ncustomer\n");

    // Each shard target reaches its own primary mysqld.
    for (target, uid) in [
        ("customer:-80", 101u16),
        ("customer:80-", 103),
        ("commerce", 100),
    ] {
        let port = cluster.mariadb_ok(target, "SELECT @@port");
        assert_eq!(port.trim(), ports.mysqld(uid).to_string(), "{target}");
    }

    // DDL and rows per shard stay in their shard.
    for shard in ["-80", "80-"] {
        cluster.mariadb_ok(
            &format!("customer:{shard}"),
            "CREATE TABLE customer (customer_id BIGINT PRIMARY KEY, email VARBINARY(128))",
        );
    }
    cluster.mariadb_ok(
        "customer:-80",
        "INSERT INTO customer VALUES (1, 'alice@domain.com')",
    );
    cluster.mariadb_ok(
        "customer:80-",
        "INSERT INTO customer VALUES (4, 'dan@domain.com')",
    );
    assert_eq!(
        cluster.mariadb_ok("customer:-80", "SELECT customer_id FROM customer"),
        "1\n"
    );
    assert_eq!(
        cluster.mariadb_ok("customer:80-", "SELECT customer_id FROM customer"),
        "4\n"
    );
    let replica = eventually(Duration::from_secs(20), "the -80 replica", || {
        let out = cluster.mariadb(
            "customer:-80@replica",
            "SELECT customer_id, @@port FROM customer",
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.starts_with("1\t").then_some(text)
    });
    assert_eq!(replica.trim(), format!("1\t{}", ports.mysqld(102)));

    // Unknown shards are unknown databases.
    let out = cluster.mariadb("customer:c0-", "SELECT 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ERROR 1049 (42000)"), "{err}");
}
