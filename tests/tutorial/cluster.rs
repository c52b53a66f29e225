//! The Vitess tutorial's cluster after resharding (unsharded `commerce`,
//! `customer` in `-80` and `80-`, one primary each) and the client-side tools
//! the tutorial and sharded client tests share: the `mariadb` CLI fed on
//! stdin, waiting for the gate to see a VSchema, and which shard a value's
//! vindex picks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tessera_gate::vindex::{KeyspaceId, VindexValue, create_vindex};

use crate::common::{LocalCluster, Ports, ctl_ok};

pub const CONFIG: &str = r#"
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
tablets = [{ uid = 101, type = "primary" }]
[[keyspace.shard]]
name = "80-"
tablets = [{ uid = 102, type = "primary" }]
"#;

pub const TABLETS: u16 = 3;
pub const CUSTOMER_SHARDS: [&str; 2] = ["-80", "80-"];

/// Starts CONFIG's cluster under `dir` (orc off: nothing here fails over).
pub fn start(dir: &Path) -> LocalCluster {
    start_with(dir, &[])
}

/// [`start`] with more arguments for `local up`.
pub fn start_with(dir: &Path, extra: &[&str]) -> LocalCluster {
    let config = dir.join("cluster.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut args = vec!["--config", config.to_str().unwrap(), "--no-orc"];
    args.extend_from_slice(extra);
    let cluster = LocalCluster::start_with(&dir.join("data"), Ports::pick_for(TABLETS), &args);
    assert_eq!(cluster.mariadbd_pids().len(), TABLETS as usize);
    cluster
}

/// Runs the `mariadb` CLI against the gate with `input` on stdin, as
/// `mysql < file.sql` does. `db` empty: no database selected.
pub fn mariadb_stdin(cluster: &LocalCluster, db: &str, args: &[&str], input: &str) -> Output {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", "127.0.0.1", "-P", &cluster.ports.gate.to_string()])
        .args(["-u", "user", "--connect-timeout=10"])
        .args(args);
    if !db.is_empty() {
        cmd.arg(db);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mariadb client runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    // Written from another thread so a large output cannot block the writer.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("mariadb client finishes");
    writer.join().unwrap();
    out
}

/// Like [`mariadb_stdin`], panicking with the client's stderr when it fails
/// or printed any error.
pub fn mariadb_stdin_ok(cluster: &LocalCluster, db: &str, args: &[&str], input: &str) -> String {
    let out = mariadb_stdin(cluster, db, args, input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "mariadb (database {db:?}) failed on:\n{input}\nstderr: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Rows of a `--batch --skip-column-names` query, tab-split.
pub fn batch_rows(cluster: &LocalCluster, db: &str, sql: &str) -> Vec<Vec<String>> {
    cluster
        .mariadb_ok(db, sql)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// `tessera ctl apply-schema --sql-file FILE KEYSPACE`.
pub fn apply_schema_file(cluster: &LocalCluster, file: &Path, keyspace: &str) {
    ctl_ok(
        cluster.ports.ctld,
        &[
            "apply-schema",
            "--sql-file",
            file.to_str().unwrap(),
            keyspace,
        ],
    );
}

/// `tessera ctl apply-schema --sql SQL KEYSPACE`.
pub fn apply_schema_sql(cluster: &LocalCluster, sql: &str, keyspace: &str) {
    ctl_ok(
        cluster.ports.ctld,
        &["apply-schema", "--sql", sql, keyspace],
    );
}

/// `tessera ctl apply-vschema --vschema-file FILE KEYSPACE`.
pub fn apply_vschema_file(cluster: &LocalCluster, file: &Path, keyspace: &str) {
    ctl_ok(
        cluster.ports.ctld,
        &[
            "apply-vschema",
            "--vschema-file",
            file.to_str().unwrap(),
            keyspace,
        ],
    );
}

/// `tessera ctl apply-vschema --vschema JSON KEYSPACE`.
pub fn apply_vschema_text(cluster: &LocalCluster, json: &str, keyspace: &str) {
    ctl_ok(
        cluster.ports.ctld,
        &["apply-vschema", "--vschema", json, keyspace],
    );
}

/// Waits until `SHOW VSCHEMA <what>` through the gate, in database `db`
/// (empty: none, i.e. the unsharded default keyspace), prints `expected`:
/// gates pick VSchemas up from the topology on their next refresh.
pub fn wait_for_vschema(cluster: &LocalCluster, db: &str, what: &str, expected: &str) {
    let sql = format!("SHOW VSCHEMA {what}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cluster.mariadb(db, &sql);
        let answer = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if answer == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the gate never showed `{sql}` in {db:?} as\n{expected}\nlast answer:\n{answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The keyspace id vindex type `kind` gives integer `id`.
pub fn keyspace_id(kind: &str, id: i64) -> KeyspaceId {
    let vindex = create_vindex(kind, kind, &BTreeMap::new()).expect("known vindex type");
    vindex
        .map(&VindexValue::Int(id))
        .expect("integer maps")
        .expect("integer maps to a keyspace id")
}

/// Lower and upper bound of a Vitess shard name such as `40-80`; empty
/// means unbounded.
pub fn key_range(shard: &str) -> (Vec<u8>, Vec<u8>) {
    let (start, end) = shard.split_once('-').expect("shard name has a dash");
    let hex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex shard bound"))
            .collect::<Vec<u8>>()
    };
    (hex(start), hex(end))
}

/// The shard of `shards` whose key range holds `ksid`.
pub fn shard_for<'a>(shards: &[&'a str], ksid: &KeyspaceId) -> &'a str {
    let ksid = ksid.as_bytes();
    shards
        .iter()
        .find(|shard| {
            let (start, end) = key_range(shard);
            ksid >= start.as_slice() && (end.is_empty() || ksid < end.as_slice())
        })
        .unwrap_or_else(|| panic!("no shard of {shards:?} covers {ksid:02x?}"))
}

/// The customer shard vindex type `kind` puts integer `id` in.
pub fn customer_shard(kind: &str, id: i64) -> &'static str {
    shard_for(&CUSTOMER_SHARDS, &keyspace_id(kind, id))
}
