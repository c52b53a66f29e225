//! The components as separate processes on an etcd topology — `tessera
//! tablet` ×2, `tessera ctld`, `tessera gate` — driven by `tessera ctl` and
//! the `mariadb` client, as an operator outgrowing `local up` runs them.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{
    Process, eventually, free_port, mariadb_client, mariadbd_pids_under, tablet_args, tessera_bin,
};
use tessera_topo::testutil::EtcdServer;

fn ctl(server: &str, args: &[&str]) -> Output {
    Command::new(tessera_bin())
        .args(["ctl", "--server", server])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn components_as_separate_processes_on_etcd() {
    let etcd =
        EtcdServer::start().expect("etcd starts (scripts/install-deps.sh installs etcd-server)");
    let topo = format!("etcd:{}", etcd.endpoint());
    let dir = tempfile::tempdir().unwrap();
    let (m100, m101, a100, a101) = (free_port(), free_port(), free_port(), free_port());
    let (ctld_port, gate_port, gate_http) = (free_port(), free_port(), free_port());
    let ctld_addr = format!("127.0.0.1:{ctld_port}");

    let mut t100 = Process::spawn(
        "tablet 100",
        &tablet_args(&topo, 100, dir.path(), m100, a100),
    );
    let mut t101 = Process::spawn(
        "tablet 101",
        &tablet_args(&topo, 101, dir.path(), m101, a101),
    );
    let mut ctld = Process::spawn(
        "ctld",
        &["ctld", "--topo", &topo, "--listen", &ctld_addr].map(String::from),
    );

    // Both tablets register themselves; neither is primary yet.
    let listing = eventually(Duration::from_secs(90), "two registered tablets", || {
        let out = ctl(&ctld_addr, &["list-tablets"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success() && text.lines().count() == 2).then_some(text)
    });
    assert!(
        listing.contains("zone1-0000000100 commerce 0 replica"),
        "{listing}"
    );

    let init = ctl(
        &ctld_addr,
        &["InitShardPrimary", "--force", "commerce/0", "zone1-100"],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let listing = String::from_utf8(ctl(&ctld_addr, &["list-tablets"]).stdout).unwrap();
    assert!(
        listing.contains("zone1-0000000100 commerce 0 primary"),
        "{listing}"
    );
    assert!(
        listing.contains("zone1-0000000101 commerce 0 replica"),
        "{listing}"
    );

    let applied = ctl(
        &ctld_addr,
        &[
            "apply-schema",
            "--sql",
            "CREATE TABLE customer (id BIGINT PRIMARY KEY, email VARCHAR(128))",
            "commerce",
        ],
    );
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let schema = String::from_utf8(ctl(&ctld_addr, &["get-schema", "zone1-101"]).stdout).unwrap();
    let schema_ok = eventually(
        Duration::from_secs(20),
        "DDL replicated to zone1-101",
        || {
            let text =
                String::from_utf8(ctl(&ctld_addr, &["get-schema", "zone1-101"]).stdout).unwrap();
            text.contains("CREATE TABLE `customer`").then_some(text)
        },
    );
    assert!(
        schema_ok.contains("`email` varchar(128)"),
        "{schema}\n{schema_ok}"
    );

    let mut gate = Process::spawn(
        "gate",
        &[
            "gate",
            "--topo",
            &topo,
            "--mysql-listen",
            &format!("127.0.0.1:{gate_port}"),
            "--http-listen",
            &format!("127.0.0.1:{gate_http}"),
        ]
        .map(String::from),
    );
    eventually(Duration::from_secs(60), "the gate to serve", || {
        let out = mariadb_client(
            gate_port,
            "user",
            "",
            "commerce",
            "INSERT INTO customer VALUES (1, 'alice@example.com')",
        );
        out.status.success().then_some(())
    });
    let out = mariadb_client(
        gate_port,
        "user",
        "",
        "commerce",
        "SELECT email FROM customer",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alice@example.com\n");
    let replica = eventually(Duration::from_secs(20), "the row on the replica", || {
        let out = mariadb_client(
            gate_port,
            "user",
            "",
            "commerce@replica",
            "SELECT COUNT(*), @@port FROM customer",
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.starts_with("1\t").then_some(text)
    });
    assert_eq!(replica.trim(), format!("1\t{m101}"));

    for p in [&mut gate, &mut ctld, &mut t101, &mut t100] {
        assert!(p.terminate(), "{} exits cleanly on SIGTERM", p.name);
    }
    assert!(
        mariadbd_pids_under(dir.path()).is_empty(),
        "tablets stop their mysqld"
    );
}
