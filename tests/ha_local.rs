//! High availability end to end through `tessera local up`: a writer through
//! the gate logs every acknowledged id while `tessera ctl` moves the primary
//! twenty times in a row, and while the primary's mysqld is killed with -9.
//! No acknowledged write may be lost; a watcher reading every mysqld's
//! read_only never sees two writable servers at once; every old primary
//! ends up replicating from the last one; and, thanks to the gate's
//! buffering and write markers, no client sees an error, not even the one
//! whose write was in flight when mysqld died. The keyspace is semi_sync
//! (loss-less), with a primary and two replicas.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{LocalCluster, Ports, tessera_bin};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};

#[derive(Default)]
struct WriterLog {
    acked: Vec<u64>,
    /// (when, error text)
    errors: Vec<(Duration, String)>,
    /// Longest gap between two consecutive acknowledgements.
    max_gap: Duration,
}

impl WriterLog {
    /// Fails the test when any write failed, naming `during` and the first.
    fn assert_no_errors(&self, during: &str) {
        assert!(
            self.errors.is_empty(),
            "{} client errors {during}, first: {:?}",
            self.errors.len(),
            self.errors.iter().take(5).collect::<Vec<_>>()
        );
    }
}

async fn writer(
    port: u16,
    db: &'static str,
    stop: Arc<AtomicBool>,
    started: Instant,
    first_id: u64,
) -> WriterLog {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("user"))
        .db_name(Some(db))
        .prefer_socket(false);
    let mut log = WriterLog::default();
    let mut conn: Option<Conn> = None;
    let mut last_ack = Instant::now();
    let mut id = first_id;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        if conn.is_none() {
            match Conn::new(opts.clone()).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    log.errors
                        .push((started.elapsed(), format!("connect: {e}")));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().unwrap();
        match c
            .exec_drop("INSERT INTO ha_log (id) VALUES (?)", (id,))
            .await
        {
            Ok(()) => {
                let now = Instant::now();
                log.max_gap = log.max_gap.max(now - last_ack);
                last_ack = now;
                log.acked.push(id);
            }
            Err(e) => {
                log.errors.push((started.elapsed(), e.to_string()));
                conn = None;
            }
        }
    }
    log
}

/// The servers a watcher saw writable at the same moment during reparents.
#[derive(Default, Debug)]
struct WritableLog {
    samples: u64,
    /// Each time more than one mysqld was writable throughout a sample:
    /// (when, uids).
    overlaps: Vec<(Duration, Vec<u16>)>,
}

/// Connects to one tablet's mysqld directly as the replication user, which
/// may read replication state but holds no write privileges of its own.
async fn monitor_conn(c: &LocalCluster, uid: u16) -> Conn {
    Conn::new(
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(c.ports.mysqld(uid))
            .user(Some("tessera_repl"))
            .pass(Some("tessera_repl_pw"))
            .prefer_socket(false),
    )
    .await
    .unwrap_or_else(|e| panic!("monitor connects to mysqld of {uid}: {e}"))
}

/// Reads `@@read_only` of every mysqld in turn, twice per sample. A server
/// counts as writable throughout the sample only when both of its readings
/// say so; with the servers read in the same order both times, two such
/// servers were writable together (at least between the first reading of
/// the later one and the second reading of the earlier one).
async fn watch_writable(
    mut conns: Vec<(u16, Conn)>,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> WritableLog {
    let mut log = WritableLog::default();
    while !stop.load(Ordering::Relaxed) {
        let mut passes = [Vec::new(), Vec::new()];
        for pass in &mut passes {
            for (uid, conn) in &mut conns {
                let read_only: Option<u8> =
                    conn.query_first("SELECT @@read_only").await.ok().flatten();
                if read_only == Some(0) {
                    pass.push(*uid);
                }
            }
        }
        let both: Vec<u16> = passes[0]
            .iter()
            .filter(|u| passes[1].contains(u))
            .copied()
            .collect();
        if both.len() > 1 {
            log.overlaps.push((started.elapsed(), both));
        }
        log.samples += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    log
}

fn ctl(c: &LocalCluster, args: &[&str]) -> String {
    let out = Command::new(tessera_bin())
        .args(["ctl", "--server", &format!("127.0.0.1:{}", c.ports.ctld)])
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

/// A `local up` config of one semi_sync keyspace whose shards each have a
/// primary and two replicas (uids 100, 101, 102 for the first shard, 103…
/// for the next).
fn semi_sync_config(dir: &std::path::Path, keyspace: &str, shards: &[&str]) -> std::path::PathBuf {
    let mut toml = format!(
        "cell = \"zone1\"\n[[keyspace]]\nname = \"{keyspace}\"\nsharded = {}\ndurability = \"semi_sync\"\n",
        shards.len() > 1
    );
    for (i, shard) in shards.iter().enumerate() {
        let uid = 100 + 3 * i;
        toml.push_str(&format!(
            "[[keyspace.shard]]\nname = \"{shard}\"\ntablets = [\n  {{ uid = {uid}, type = \"primary\" }},\n  {{ uid = {}, type = \"replica\" }},\n  {{ uid = {}, type = \"replica\" }},\n]\n",
            uid + 1,
            uid + 2
        ));
    }
    let path = dir.join(format!("{keyspace}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

/// kill -9 of the mariadbd of tablet `zone1-<uid>` (uid zero-padded to 10).
fn kill9_mysqld(c: &LocalCluster, uid: &str) {
    let tablet_dir = c.data_dir.join("tablets").join(format!("zone1-{uid}"));
    let pid = common::mariadbd_pids_under(&tablet_dir)[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// A counter from the gate's /metrics.
async fn gate_counter(c: &LocalCluster, name: &str) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", c.ports.gate_http))
        .await
        .expect("gate metrics")
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn primary_uid(c: &LocalCluster) -> u16 {
    let listing = ctl(c, &["list-tablets"]);
    let line = listing
        .lines()
        .find(|l| l.contains(" primary "))
        .unwrap_or_else(|| panic!("no primary in {listing}"));
    line[6..16].parse().unwrap()
}

async fn check_all_acked_present(c: &LocalCluster, db: &str, log: &WriterLog) {
    let mut conn = Conn::new(
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(c.ports.gate)
            .user(Some("user"))
            .db_name(Some(db))
            .prefer_socket(false),
    )
    .await
    .unwrap();
    let stored: Vec<u64> = conn
        .query("SELECT id FROM ha_log ORDER BY id")
        .await
        .unwrap();
    let stored: std::collections::HashSet<u64> = stored.into_iter().collect();
    let missing: Vec<u64> = log
        .acked
        .iter()
        .filter(|id| !stored.contains(id))
        .copied()
        .collect();
    assert!(missing.is_empty(), "acknowledged ids lost: {missing:?}");
    conn.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reparents_and_primary_crash_under_write_load() {
    let dir = tempfile::tempdir().unwrap();
    let config = semi_sync_config(dir.path(), "commerce", &["0"]);
    let cluster = tokio::task::spawn_blocking({
        let data = dir.path().join("data");
        move || {
            LocalCluster::start_with(
                &data,
                Ports::pick(),
                &["--config", config.to_str().unwrap()],
            )
        }
    })
    .await
    .unwrap();
    let c = &cluster;
    tokio::task::block_in_place(|| {
        c.mariadb_ok("commerce", "CREATE TABLE ha_log (id BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))")
    });

    // Twenty planned reparents in a row, back and forth, under load.
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut monitors = Vec::new();
    for uid in [100u16, 101, 102] {
        monitors.push((uid, monitor_conn(c, uid).await));
    }
    let watching = tokio::spawn(watch_writable(monitors, stop.clone(), started));
    let writing = tokio::spawn(writer(c.ports.gate, "commerce", stop.clone(), started, 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reparents = 20;
    let mut durations = Vec::new();
    let mut old_primaries = std::collections::BTreeSet::new();
    for _ in 0..reparents {
        let before = primary_uid(c);
        old_primaries.insert(before);
        let t = Instant::now();
        tokio::task::block_in_place(|| ctl(c, &["PlannedReparentShard", "commerce/0"]));
        durations.push(t.elapsed());
        let after = primary_uid(c);
        assert_ne!(before, after, "the primary moved");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let log = writing.await.unwrap();
    let writable = watching.await.unwrap();
    let planned_secs = started.elapsed().as_secs_f64();
    durations.sort();
    println!(
        "planned: {reparents} reparents in {planned_secs:.1} s, {} writes acknowledged, longest write pause {:?}, \
         ctl durations min {:?} median {:?} max {:?}, client errors {}, read_only samples {} with overlaps {:?}",
        log.acked.len(),
        log.max_gap,
        durations[0],
        durations[durations.len() / 2],
        durations[durations.len() - 1],
        log.errors.len(),
        writable.samples,
        writable.overlaps
    );
    assert!(
        writable.overlaps.is_empty(),
        "two writable mysqlds at once: {:?}",
        writable.overlaps
    );
    assert!(writable.samples > 100, "the watcher kept sampling");
    assert!(
        log.max_gap <= Duration::from_millis(1500),
        "write pause {:?} during planned reparents",
        log.max_gap
    );
    log.assert_no_errors("during planned reparents");
    assert!(log.acked.len() > 100, "the writer kept writing");
    check_all_acked_present(c, "commerce", &log).await;
    // Every old primary replicates from the last primary now.
    let primary = primary_uid(c);
    assert!(
        old_primaries.len() >= 2,
        "the replicas took turns: {old_primaries:?}"
    );
    for uid in [100u16, 101, 102].into_iter().filter(|u| *u != primary) {
        let mut conn = monitor_conn(c, uid).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status: Option<mysql_async::Row> =
                conn.query_first("SHOW SLAVE STATUS").await.unwrap();
            let (read_only,): (u8,) = conn
                .query_first("SELECT @@read_only")
                .await
                .unwrap()
                .unwrap();
            let following = status.is_some_and(|r| {
                let text = |name: &str| {
                    r.get::<Option<String>, _>(name)
                        .flatten()
                        .unwrap_or_default()
                };
                text("Master_Port") == c.ports.mysqld(primary).to_string()
                    && text("Slave_IO_Running") == "Yes"
                    && text("Slave_SQL_Running") == "Yes"
            });
            if following && read_only == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "tablet {uid} does not replicate read-only from the primary {primary}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        conn.disconnect().await.unwrap();
    }

    // kill -9 of the primary's mysqld: its agent restarts it; the gate buffers.
    let primary = primary_uid(c);
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writing = tokio::spawn(writer(
        c.ports.gate,
        "commerce",
        stop.clone(),
        started,
        1_000_000_000,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill9_mysqld(c, &format!("{primary:010}"));
    let killed_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    let log = writing.await.unwrap();
    println!(
        "kill -9 primary mysqld at {killed_at:?}: {} writes acknowledged, longest write pause {:?}, client errors {:?}",
        log.acked.len(),
        log.max_gap,
        log.errors.iter().take(5).collect::<Vec<_>>()
    );
    let resolved = gate_counter(c, "marked_writes_resolved").await;
    println!("writes in flight settled by their marker: {resolved}");
    check_all_acked_present(c, "commerce", &log).await;
    // The write in flight when mysqld died was settled from its marker on
    // the restarted primary (OK if it committed, run again if not): a
    // replay of a committed insert would show as a duplicate-key error.
    log.assert_no_errors("across the crash");
    assert!(
        log.max_gap < Duration::from_secs(10),
        "writes resumed within the buffer window"
    );
}

/// Counts rows over every shard until stopped: (reads, errors).
async fn scatter_reader(port: u16, stop: Arc<AtomicBool>) -> (u64, Vec<String>) {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("user"))
        .db_name(Some("customer"))
        .prefer_socket(false);
    let mut conn = Conn::new(opts).await.expect("reader connects");
    let (mut reads, mut errors) = (0u64, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        match conn
            .query_first::<u64, _>("SELECT COUNT(*) FROM ha_log")
            .await
        {
            Ok(_) => reads += 1,
            Err(e) => errors.push(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (reads, errors)
}

/// Planned reparents and then a crash on one shard of a sharded semi_sync
/// keyspace: inserts
/// routed by the `hash` vindex to both shards keep flowing, those for the
/// crashed shard wait for it, and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_primary_crash_under_write_load() {
    let dir = tempfile::tempdir().unwrap();
    let config = semi_sync_config(dir.path(), "customer", &["-80", "80-"]);
    let vschema = dir.path().join("vschema.json");
    std::fs::write(
        &vschema,
        r#"{"sharded": true, "vindexes": {"hash": {"type": "hash"}},
            "tables": {"ha_log": {"column_vindexes": [{"column": "id", "name": "hash"}]}}}"#,
    )
    .unwrap();
    let cluster = tokio::task::spawn_blocking({
        let data = dir.path().join("data");
        move || {
            LocalCluster::start_with(
                &data,
                Ports::pick_for(6),
                &["--config", config.to_str().unwrap()],
            )
        }
    })
    .await
    .unwrap();
    let c = &cluster;
    tokio::task::block_in_place(|| {
        ctl(
            c,
            &[
                "apply-vschema",
                "--vschema-file",
                vschema.to_str().unwrap(),
                "customer",
            ],
        );
        c.mariadb_ok(
            "customer",
            "CREATE TABLE ha_log (id BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
        )
    });

    // Planned reparents of shard -80 under inserts to both shards and
    // scatter reads over both.
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writing = tokio::spawn(writer(c.ports.gate, "customer", stop.clone(), started, 0));
    let reading = tokio::spawn(scatter_reader(c.ports.gate, stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        tokio::task::block_in_place(|| ctl(c, &["PlannedReparentShard", "customer/-80"]));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let log = writing.await.unwrap();
    let (reads, read_errors) = reading.await.unwrap();
    println!(
        "5 planned reparents of customer/-80: {} writes acknowledged, longest write pause {:?}, write errors {:?}; \
         {reads} scatter reads, errors {:?}",
        log.acked.len(),
        log.max_gap,
        log.errors.iter().take(5).collect::<Vec<_>>(),
        read_errors.iter().take(5).collect::<Vec<_>>()
    );
    check_all_acked_present(c, "customer", &log).await;
    assert!(log.errors.is_empty(), "write errors: {:?}", log.errors);
    assert!(
        read_errors.is_empty(),
        "scatter read errors: {read_errors:?}"
    );
    assert!(reads > 10, "the reader kept reading: {reads}");

    // kill -9 of the primary mysqld of shard -80, wherever it is now.
    let listing = tokio::task::block_in_place(|| ctl(c, &["list-tablets"]));
    let primary = listing
        .lines()
        .find(|l| l.contains("customer -80 ") && l.contains(" primary "))
        .unwrap_or_else(|| panic!("no primary of customer/-80 in {listing}"))[6..16]
        .to_string();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writing = tokio::spawn(writer(
        c.ports.gate,
        "customer",
        stop.clone(),
        started,
        1_000_000_000,
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    kill9_mysqld(c, &primary);
    let killed_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    let log = writing.await.unwrap();
    let resolved = gate_counter(c, "marked_writes_resolved").await;
    println!(
        "kill -9 of shard -80's primary mysqld at {killed_at:?}: {} writes acknowledged, longest write pause {:?}, \
         client errors {:?}, writes settled by their marker {resolved}",
        log.acked.len(),
        log.max_gap,
        log.errors.iter().take(5).collect::<Vec<_>>()
    );
    check_all_acked_present(c, "customer", &log).await;
    log.assert_no_errors("across the crash");
    assert!(
        log.acked.len() > 100,
        "the writer kept writing: {}",
        log.acked.len()
    );
}
