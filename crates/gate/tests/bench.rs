//! A manual sysbench comparison of the gate against direct mysqld access,
//! run with `cargo test -p tessera-gate --release --test bench -- --ignored
//! --nocapture`. Both are measured in the same run, as ratios are what holds.

mod common;

use std::time::Duration;

use common::Cluster;

async fn sysbench(port: u16, user: &str, password: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new("sysbench")
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            &format!("--mysql-port={port}"),
            &format!("--mysql-user={user}"),
            &format!("--mysql-password={password}"),
            "--mysql-db=commerce",
            "--tables=2",
            "--table-size=10000",
        ])
        .args(args)
        .output()
        .await
        .expect("running sysbench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sysbench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn qps(report: &str) -> f64 {
    report
        .lines()
        .find(|l| l.trim_start().starts_with("queries:"))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run by hand"]
async fn sysbench_point_select_gate_vs_direct() {
    let c = Cluster::start(64).await;
    let gate = c.port();
    let direct = c.primary.port();
    sysbench(gate, "user1", "pw1", &["oltp_point_select", "prepare"]).await;
    for (name, extra) in [
        ("prepared", "--db-ps-mode=auto"),
        ("text", "--db-ps-mode=disable"),
    ] {
        let run = [
            "oltp_point_select",
            "--threads=16",
            "--time=10",
            extra,
            "run",
        ];
        let d = qps(&sysbench(direct, "tessera_app", "tessera_app_pw", &run).await);
        let g = qps(&sysbench(gate, "user1", "pw1", &run).await);
        eprintln!(
            "oltp_point_select {name}: direct {d:.0} qps, gate {g:.0} qps, ratio {:.2}",
            g / d.max(1.0)
        );
        assert!(g > 0.0);
    }
    let run = ["oltp_read_write", "--threads=16", "--time=10", "run"];
    let d = qps(&sysbench(direct, "tessera_app", "tessera_app_pw", &run).await);
    let g = qps(&sysbench(gate, "user1", "pw1", &run).await);
    eprintln!(
        "oltp_read_write: direct {d:.0} qps, gate {g:.0} qps, ratio {:.2}",
        g / d.max(1.0)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.shutdown().await;
}
