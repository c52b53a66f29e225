//! Differential tests of the sharded planner: the same SQL through the gate
//! against a keyspace of 2 shards (`s2`) and of 4 (`s4`), and directly against
//! one MariaDB holding the same rows (`ref`'s mysqld) must give equal results.
//! The unsharded `ref` through the gate is a target too (the relay path).
//!
//! Hand-written cases live in `tests/sharded/corpus/*.sql` (see
//! `sharded/corpus.rs` for the format; files named `dml*` change rows and run
//! last, in order); random SELECTs come from `sharded/generator.rs`.
//!
//! Environment: `TESSERA_DIFF_SEED` (random queries' seed; default: the
//! clock, printed), `TESSERA_DIFF_QUERIES` (random queries per run, default
//! 2000), `TESSERA_DIFF_TARGETS` (gate keyspaces compared, default
//! `ref,s2,s4`).
//!
//! Run: `cargo test --test sharded_diff -- --nocapture` (about 40 s: 7
//! mariadbd, ~220 hand cases, 2000 random queries on three keyspaces). Every
//! difference is printed with the case's file:line (or the random query's
//! number and seed), both results and what differs; the test fails at the
//! end with the count.

mod common;
#[path = "sharded/corpus.rs"]
mod corpus;
#[path = "sharded/generator.rs"]
mod generator;
#[path = "sharded/outcome.rs"]
mod outcome;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{APP_PASSWORD, APP_USER, LocalCluster, Ports, ctl_ok};
use corpus::Case;
use mysql_async::OptsBuilder;
use outcome::{Cell, Client, Outcome, difference};
use tessera_gate::vindex::{Vindex, VindexValue, create_vindex};

const CONFIG: &str = r#"
cell = "zone1"

[[keyspace]]
name = "ref"
[[keyspace.shard]]
name = "0"
tablets = [{ uid = 100, type = "primary" }]

[[keyspace]]
name = "s2"
sharded = true
[[keyspace.shard]]
name = "-80"
tablets = [{ uid = 101, type = "primary" }]
[[keyspace.shard]]
name = "80-"
tablets = [{ uid = 102, type = "primary" }]

[[keyspace]]
name = "s4"
sharded = true
[[keyspace.shard]]
name = "-40"
tablets = [{ uid = 103, type = "primary" }]
[[keyspace.shard]]
name = "40-80"
tablets = [{ uid = 104, type = "primary" }]
[[keyspace.shard]]
name = "80-c0"
tablets = [{ uid = 105, type = "primary" }]
[[keyspace.shard]]
name = "c0-"
tablets = [{ uid = 106, type = "primary" }]
"#;

const TABLETS: u16 = 7;
const REFERENCE_UID: u16 = 100;

/// Keyspaces of CONFIG: name and shards (none: unsharded).
const KEYSPACES: &[(&str, &[&str])] = &[
    ("ref", &[]),
    ("s2", &["-80", "80-"]),
    ("s4", &["-40", "40-80", "80-c0", "c0-"]),
];

/// Sharded tables: name, primary vindex column, vindex type (as in
/// vschema_sharded.json). Each has an `id` primary key.
const SHARDED_TABLES: &[(&str, &str, &str)] = &[
    ("customer", "id", "hash"),
    ("orders", "customer_id", "hash"),
    ("event", "id", "xxhash"),
];
const REFERENCE_TABLES: &[&str] = &["product"];

/// Rows of each side shown in a failure report.
const SHOWN_ROWS: usize = 20;

fn sharded_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sharded")
}

fn shards_of(keyspace: &str) -> &'static [&'static str] {
    KEYSPACES
        .iter()
        .find(|(name, _)| *name == keyspace)
        .map(|(_, shards)| *shards)
        .unwrap_or(&[])
}

fn opts(port: u16, user: &str, password: &str, db: &str) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some(db))
        .prefer_socket(false)
        .max_allowed_packet(Some(16 * 1024 * 1024))
        .wait_timeout(Some(28800))
}

/// Statements of a data file: comment and blank lines dropped, each
/// statement ends with `;` at the end of a line.
fn data_statements(text: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("--") || line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            statements.push(current.trim().trim_end_matches(';').to_string());
            current.clear();
        }
    }
    assert!(current.trim().is_empty(), "data file ends mid-statement");
    statements
}

/// Lower and upper bound of a Vitess shard name such as `40-80`; empty means
/// unbounded.
fn key_range(shard: &str) -> (Vec<u8>, Vec<u8>) {
    let (start, end) = shard.split_once('-').expect("shard name has a dash");
    let hex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex shard bound"))
            .collect::<Vec<u8>>()
    };
    (hex(start), hex(end))
}

fn in_range(ksid: &[u8], (start, end): &(Vec<u8>, Vec<u8>)) -> bool {
    ksid >= start.as_slice() && (end.is_empty() || ksid < end.as_slice())
}

fn cell_text(cell: &Cell) -> String {
    cell.as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_else(|| "NULL".into())
}

struct Target {
    keyspace: String,
    sharded: bool,
    client: Client,
    /// After a DML statement went differently here, rows no longer match the
    /// reference: later cases are not compared on this keyspace.
    diverged: bool,
}

#[derive(Default)]
struct Report {
    failures: Vec<String>,
    compared: usize,
    equal: usize,
    /// Per keyspace: random queries the gate refused with 1235.
    unsupported: BTreeMap<String, usize>,
    unsupported_examples: BTreeMap<String, Vec<String>>,
}

impl Report {
    fn fail(&mut self, text: String) {
        println!("{text}");
        self.failures.push(text);
    }

    #[allow(clippy::too_many_arguments)]
    fn mismatch(
        &mut self,
        location: &str,
        keyspace: &str,
        sql: &str,
        why: &str,
        expected: Option<&Outcome>,
        got: &Outcome,
        ordered: bool,
    ) {
        let expected = match expected {
            Some(outcome) => outcome.render(SHOWN_ROWS),
            None => "  (not consulted)\n".to_string(),
        };
        self.fail(format!(
            "MISMATCH [{keyspace}] {location}{}: {why}\n  query: {sql}\nreference:\n{expected}gate ({keyspace}):\n{}",
            if ordered { " (ordered)" } else { "" },
            got.render(SHOWN_ROWS)
        ));
    }
}

async fn apply_statements(client: &mut Client, statements: &[String]) -> Result<(), String> {
    for sql in statements {
        client.exec(sql).await?;
    }
    Ok(())
}

async fn shard_client(ports: &Ports, keyspace: &str, shard: &str) -> Result<Client, String> {
    let target = format!("{keyspace}:{shard}");
    Client::connect(&target, opts(ports.gate, "user", "", &target)).await
}

fn vindexes() -> BTreeMap<&'static str, Box<dyn Vindex>> {
    let mut map = BTreeMap::new();
    for (_, _, kind) in SHARDED_TABLES {
        map.entry(*kind).or_insert_with(|| {
            create_vindex(kind, kind, &BTreeMap::new()).expect("known vindex type")
        });
    }
    map
}

fn keyspace_id(
    vindexes: &BTreeMap<&str, Box<dyn Vindex>>,
    kind: &str,
    value: &Cell,
) -> Result<Vec<u8>, String> {
    let text = cell_text(value);
    let number: i64 = text
        .parse()
        .map_err(|_| format!("vindex column value {text} is not an integer"))?;
    match vindexes[kind].map(&VindexValue::Int(number)) {
        Ok(Some(ksid)) => Ok(ksid.0),
        Ok(None) => Err(format!("{kind} maps {number} to no keyspace id")),
        Err(e) => Err(e.to_string()),
    }
}

/// Rows of the shard whose keyspace id lies outside its range (their `id`s).
async fn foreign_rows(
    client: &mut Client,
    shard: &str,
    table: &str,
    column: &str,
    kind: &str,
) -> Result<(usize, Vec<(String, String, String)>), String> {
    let vindexes = vindexes();
    let range = key_range(shard);
    let rows = client
        .rows(&format!("SELECT id, {column} FROM {table}"))
        .await?;
    let mut foreign = Vec::new();
    for row in &rows {
        let ksid = keyspace_id(&vindexes, kind, &row[1])?;
        if !in_range(&ksid, &range) {
            let hex = ksid.iter().map(|b| format!("{b:02x}")).collect();
            foreign.push((cell_text(&row[0]), cell_text(&row[1]), hex));
        }
    }
    Ok((rows.len(), foreign))
}

/// Loads the sharded tables' rows into every shard by shard targeting, then
/// deletes from each shard the rows whose keyspace id is outside its range.
/// Used only when the gate cannot route the INSERTs itself, so that the
/// SELECTs can still be compared.
async fn load_by_shard_targeting(
    ports: &Ports,
    keyspace: &str,
    statements: &[String],
) -> Result<(), String> {
    for shard in shards_of(keyspace) {
        let mut client = shard_client(ports, keyspace, shard).await?;
        for (table, _, _) in SHARDED_TABLES {
            client.exec(&format!("DELETE FROM {table}")).await?;
        }
        apply_statements(&mut client, statements).await?;
        for (table, column, kind) in SHARDED_TABLES {
            let (_, foreign) = foreign_rows(&mut client, shard, table, column, kind).await?;
            let ids: Vec<String> = foreign.into_iter().map(|(id, _, _)| id).collect();
            for chunk in ids.chunks(200) {
                client
                    .exec(&format!(
                        "DELETE FROM {table} WHERE id IN ({})",
                        chunk.join(",")
                    ))
                    .await?;
            }
        }
        client.close().await;
    }
    Ok(())
}

/// Every row of every sharded table sits in the shard its keyspace id
/// belongs to, every shard got some, and the shards together hold exactly
/// the reference's rows; every shard holds the whole reference table.
async fn check_placement(
    ports: &Ports,
    keyspace: &str,
    reference: &mut Client,
    report: &mut Report,
) -> Result<(), String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut contents: BTreeMap<&str, Vec<Vec<Cell>>> = BTreeMap::new();
    for shard in shards_of(keyspace) {
        let mut client = shard_client(ports, keyspace, shard).await?;
        for (table, column, kind) in SHARDED_TABLES {
            let rows = client.rows(&format!("SELECT * FROM {table}")).await?;
            contents.entry(table).or_default().extend(rows);
            let (count, foreign) = foreign_rows(&mut client, shard, table, column, kind).await?;
            if count == 0 {
                report.fail(format!(
                    "PLACEMENT [{keyspace}:{shard}] {table}: no rows in this shard"
                ));
            }
            for (id, value, ksid) in foreign {
                report.fail(format!(
                    "PLACEMENT [{keyspace}:{shard}] {table} id {id}: keyspace id {ksid} ({column} {value}) is not in this shard"
                ));
            }
            *counts.entry(table).or_default() += count;
        }
        for table in REFERENCE_TABLES {
            let sql = format!("SELECT * FROM {table} ORDER BY 1");
            let want = reference.rows(&sql).await?;
            let got = client.rows(&sql).await?;
            if want != got {
                report.fail(format!(
                    "PLACEMENT [{keyspace}:{shard}] reference table {table}: {} rows, not the reference's {}",
                    got.len(),
                    want.len()
                ));
            }
        }
        client.close().await;
    }
    for (table, _, _) in SHARDED_TABLES {
        let want = reference
            .rows(&format!("SELECT COUNT(*) FROM {table}"))
            .await?;
        let want: usize = cell_text(&want[0][0]).parse().unwrap_or(0);
        let got = counts.get(table).copied().unwrap_or(0);
        if want != got {
            report.fail(format!(
                "PLACEMENT [{keyspace}] {table}: the shards hold {got} rows together, the reference {want}"
            ));
        }
        // The rows themselves, as stored: a rewrite of the INSERT that
        // changed a value shows here first.
        let want = reference.rows(&format!("SELECT * FROM {table}")).await?;
        let got = contents.remove(table).unwrap_or_default();
        let (missing, extra) = outcome::multiset_delta(&want, &got);
        if !missing.is_empty() || !extra.is_empty() {
            report.fail(format!(
                "LOAD [{keyspace}] {table}: rows stored in the shards differ from the reference ({} rows); only in the reference:{}; only in the shards:{}",
                missing.len(),
                outcome::render_rows(&missing, 10),
                outcome::render_rows(&extra, 10)
            ));
        }
    }
    Ok(())
}

/// Loads the rows into a sharded keyspace through the gate, statement by
/// statement, checking rows affected.
async fn load_through_gate(
    ports: &Ports,
    target: &mut Target,
    statements: &[String],
    report: &mut Report,
) -> Result<(), String> {
    for (index, sql) in statements.iter().enumerate() {
        let rows_in_statement = sql.matches("\n  (").count() as u64;
        let got = target.client.run(sql).await;
        match got {
            Outcome::Affected(n) if n == rows_in_statement => {}
            Outcome::Error { code: 1235, .. } if index == 0 => {
                report.fail(format!(
                    "LOAD [{}] the gate refuses INSERT into a sharded table ({}); rows placed by shard targeting instead so the SELECTs can still be compared",
                    target.keyspace,
                    got.render(1).trim()
                ));
                return load_by_shard_targeting(ports, &target.keyspace, statements).await;
            }
            other => {
                return Err(format!(
                    "data.sql statement {} through the gate: expected {rows_in_statement} rows affected\n  {sql}\n{}",
                    index + 1,
                    other.render(5)
                ));
            }
        }
    }
    Ok(())
}

/// Compares one case (not a DML without `-- error`) on every target that is
/// still comparable.
async fn compare_case(
    case: &Case,
    reference: &mut Client,
    targets: &mut [Target],
    report: &mut Report,
) {
    let location = case.location();
    if let Some(code) = case.expect_error {
        for target in targets.iter_mut().filter(|t| t.sharded && !t.diverged) {
            let got = target.client.run(&case.sql).await;
            report.compared += 1;
            if got.error_code() == Some(code) {
                report.equal += 1;
                continue;
            }
            report.mismatch(
                &location,
                &target.keyspace,
                &case.sql,
                &format!("the gate must refuse this with error {code}"),
                None,
                &got,
                false,
            );
            if case.is_dml() && !matches!(got, Outcome::Error { .. }) {
                target.diverged = true;
            }
        }
        return;
    }
    let expected = reference.run(&case.sql).await;
    if expected.error_code() == Some(0) {
        report.fail(format!(
            "REFERENCE {location}: {}\n  query: {}",
            expected.render(1).trim(),
            case.sql
        ));
        return;
    }
    for target in targets.iter_mut().filter(|t| !t.diverged) {
        let got = target.client.run(&case.sql).await;
        report.compared += 1;
        match difference(&expected, &got, case.ordered) {
            None => report.equal += 1,
            Some(why) => report.mismatch(
                &location,
                &target.keyspace,
                &case.sql,
                &why,
                Some(&expected),
                &got,
                case.ordered,
            ),
        }
    }
}

/// Applies one DML case: once to the reference rows (through the gate when
/// the unsharded `ref` is a target, its mysqld being the reference), then to
/// every sharded target, comparing rows affected.
async fn apply_dml_case(
    case: &Case,
    reference: &mut Client,
    targets: &mut [Target],
    report: &mut Report,
) {
    if case.expect_error.is_some() {
        return compare_case(case, reference, targets, report).await;
    }
    let location = case.location();
    let expected = match targets.iter_mut().find(|t| !t.sharded) {
        Some(unsharded) => unsharded.client.run(&case.sql).await,
        None => reference.run(&case.sql).await,
    };
    if let Outcome::Error { .. } = expected {
        report.fail(format!(
            "CORPUS {location}: the DML fails on the unsharded keyspace: {}\n  query: {}",
            expected.render(1).trim(),
            case.sql
        ));
        return;
    }
    for target in targets.iter_mut().filter(|t| t.sharded && !t.diverged) {
        let got = target.client.run(&case.sql).await;
        report.compared += 1;
        match difference(&expected, &got, false) {
            None => report.equal += 1,
            Some(why) => {
                report.mismatch(
                    &location,
                    &target.keyspace,
                    &case.sql,
                    &format!("{why}; later cases skip this keyspace"),
                    Some(&expected),
                    &got,
                    false,
                );
                target.diverged = true;
            }
        }
    }
}

/// Generated queries: the reference answers each once, every target must
/// agree; a 1235 on a sharded target counts as unsupported, not as failure.
/// The targets run their queries concurrently (each on its own connection),
/// which is what keeps thousands of queries per keyspace quick.
async fn compare_random(
    seed: u64,
    count: usize,
    reference: &mut Client,
    targets: &mut Vec<Target>,
    report: &mut Report,
) {
    let queries = generator::queries(seed, count);
    let mut expected = Vec::with_capacity(queries.len());
    for (index, query) in queries.iter().enumerate() {
        let outcome = reference.run(&query.sql).await;
        if let Outcome::Error { .. } = outcome {
            report.fail(format!(
                "GENERATOR random #{index} (TESSERA_DIFF_SEED={seed}): the reference rejects the query: {}\n  query: {}",
                outcome.render(1).trim(),
                query.sql
            ));
        }
        expected.push(outcome);
    }
    let sqls: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new(queries.iter().map(|q| q.sql.clone()).collect());
    let mut running = Vec::new();
    for mut target in std::mem::take(targets) {
        let sqls = sqls.clone();
        running.push(tokio::spawn(async move {
            let mut outcomes = Vec::with_capacity(sqls.len());
            if !target.diverged {
                for sql in sqls.iter() {
                    outcomes.push(target.client.run(sql).await);
                }
            }
            (target, outcomes)
        }));
    }
    for task in running {
        let (target, outcomes) = task.await.expect("a target's query task panicked");
        for (index, got) in outcomes.iter().enumerate() {
            let (query, want) = (&queries[index], &expected[index]);
            if let Outcome::Error { .. } = want {
                continue;
            }
            report.compared += 1;
            if target.sharded && got.error_code() == Some(1235) {
                *report
                    .unsupported
                    .entry(target.keyspace.clone())
                    .or_default() += 1;
                let examples = report
                    .unsupported_examples
                    .entry(target.keyspace.clone())
                    .or_default();
                if examples.len() < 3 {
                    examples.push(format!("{}\n    -> {}", query.sql, got.render(1).trim()));
                }
                continue;
            }
            match difference(want, got, query.ordered) {
                None => report.equal += 1,
                Some(why) => report.mismatch(
                    &format!("random #{index} (TESSERA_DIFF_SEED={seed})"),
                    &target.keyspace,
                    &query.sql,
                    &why,
                    Some(want),
                    got,
                    query.ordered,
                ),
            }
        }
        targets.push(target);
    }
}

fn env_targets() -> Vec<String> {
    let list = std::env::var("TESSERA_DIFF_TARGETS").unwrap_or_else(|_| "ref,s2,s4".into());
    let targets: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for t in &targets {
        assert!(
            KEYSPACES.iter().any(|(name, _)| name == t),
            "TESSERA_DIFF_TARGETS names unknown keyspace {t:?} (known: ref, s2, s4)"
        );
    }
    assert!(!targets.is_empty(), "TESSERA_DIFF_TARGETS is empty");
    targets
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

async fn run(ports: Ports, targets: &[String], seed: u64, count: usize) -> Report {
    let mut report = Report::default();
    let dir = sharded_dir();
    let data = data_statements(&std::fs::read_to_string(dir.join("data.sql")).unwrap());
    let reference_data =
        data_statements(&std::fs::read_to_string(dir.join("reference_data.sql")).unwrap());
    let files = corpus::load_dir(&dir.join("corpus")).unwrap_or_else(|e| panic!("{e}"));

    let began = Instant::now();
    let mut reference = Client::connect(
        "reference",
        opts(ports.mysqld(REFERENCE_UID), APP_USER, APP_PASSWORD, "ref"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for statements in [&data, &reference_data] {
        apply_statements(&mut reference, statements)
            .await
            .unwrap_or_else(|e| panic!("loading the reference: {e}"));
    }

    let mut gate_targets = Vec::new();
    for keyspace in targets {
        let client = Client::connect(
            &format!("gate {keyspace}"),
            opts(ports.gate, "user", "", keyspace),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        gate_targets.push(Target {
            keyspace: keyspace.clone(),
            sharded: !shards_of(keyspace).is_empty(),
            client,
            diverged: false,
        });
    }

    for target in gate_targets.iter_mut().filter(|t| t.sharded) {
        // The gate learns VSchema and tables by watching: give it a moment
        // before the first routed statement.
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let probe = target.client.run("SELECT COUNT(*) FROM customer").await;
            if let Outcome::Rows { .. } = probe {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if let Err(e) = load_through_gate(&ports, target, &data, &mut report).await {
            report.fail(format!("LOAD [{}] {e}", target.keyspace));
            target.diverged = true;
            continue;
        }
        for shard in shards_of(&target.keyspace) {
            let loaded = match shard_client(&ports, &target.keyspace, shard).await {
                Ok(mut client) => {
                    let done = apply_statements(&mut client, &reference_data).await;
                    client.close().await;
                    done
                }
                Err(e) => Err(e),
            };
            if let Err(e) = loaded {
                report.fail(format!("LOAD [{}:{shard}] product: {e}", target.keyspace));
                target.diverged = true;
            }
        }
        if let Err(e) = check_placement(&ports, &target.keyspace, &mut reference, &mut report).await
        {
            report.fail(format!("PLACEMENT [{}] {e}", target.keyspace));
        }
    }
    println!("rows loaded and placement checked in {:?}", began.elapsed());

    let began = Instant::now();
    let (dml_files, select_files): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(name, _)| name.starts_with("dml"));
    let mut hand_cases = 0;
    for case in select_files.iter().flat_map(|(_, cases)| cases) {
        hand_cases += 1;
        if case.is_dml() && case.expect_error.is_none() {
            report.fail(format!(
                "CORPUS {}: DML belongs in a dml*.sql file (those run last, in order)",
                case.location()
            ));
            continue;
        }
        compare_case(case, &mut reference, &mut gate_targets, &mut report).await;
    }
    println!("{hand_cases} hand-written cases in {:?}", began.elapsed());

    let began = Instant::now();
    compare_random(seed, count, &mut reference, &mut gate_targets, &mut report).await;
    println!(
        "{count} random queries against {} targets in {:?}",
        gate_targets.len(),
        began.elapsed()
    );

    let began = Instant::now();
    let mut dml_cases = 0;
    for case in dml_files.iter().flat_map(|(_, cases)| cases) {
        dml_cases += 1;
        if case.is_dml() {
            apply_dml_case(case, &mut reference, &mut gate_targets, &mut report).await;
        } else {
            compare_case(case, &mut reference, &mut gate_targets, &mut report).await;
        }
    }
    println!("{dml_cases} DML-file cases in {:?}", began.elapsed());
    for target in gate_targets.iter().filter(|t| t.diverged) {
        report.fail(format!(
            "DIVERGED [{}]: cases after the first DML difference were not compared here",
            target.keyspace
        ));
    }

    reference.close().await;
    for target in gate_targets {
        target.client.close().await;
    }
    report
}

/// Starts the cluster, on fresh ports up to three times: other tests on this
/// machine may take one of the picked ports before a mariadbd binds it.
fn start_cluster(dir: &Path, config: &Path) -> LocalCluster {
    for attempt in 1..=3 {
        let data = dir.join(format!("data-{attempt}"));
        let started = std::panic::catch_unwind(|| {
            LocalCluster::start_with(
                &data,
                Ports::pick_for(TABLETS),
                &["--config", config.to_str().unwrap(), "--no-orc"],
            )
        });
        match started {
            Ok(cluster) => return cluster,
            Err(_) if attempt < 3 => println!("local up failed (attempt {attempt}); again"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    unreachable!("the last attempt returns or panics")
}

#[test]
fn sharded_results_equal_a_single_mariadb() {
    let targets = env_targets();
    let seed = env_number("TESSERA_DIFF_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let count = env_number("TESSERA_DIFF_QUERIES").unwrap_or(2000) as usize;
    println!(
        "differential test: TESSERA_DIFF_SEED={seed} TESSERA_DIFF_QUERIES={count} TESSERA_DIFF_TARGETS={}",
        targets.join(",")
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let cluster = start_cluster(dir.path(), &config);
    let ports = cluster.ports;
    assert_eq!(cluster.mariadbd_pids().len(), TABLETS as usize);

    let began = Instant::now();
    let schema = sharded_dir().join("schema.sql");
    let sharded_vschema = sharded_dir().join("vschema_sharded.json");
    let unsharded_vschema = sharded_dir().join("vschema_unsharded.json");
    for (keyspace, shards) in KEYSPACES {
        ctl_ok(
            ports.ctld,
            &[
                "apply-schema",
                "--sql-file",
                schema.to_str().unwrap(),
                keyspace,
            ],
        );
        let vschema = if shards.is_empty() {
            &unsharded_vschema
        } else {
            &sharded_vschema
        };
        ctl_ok(
            ports.ctld,
            &[
                "apply-vschema",
                "--vschema-file",
                vschema.to_str().unwrap(),
                keyspace,
            ],
        );
    }
    println!(
        "cluster up in {:?}; schema and vschemas applied in {:?}",
        cluster.startup,
        began.elapsed()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run(ports, &targets, seed, count));
    drop(cluster);

    for (keyspace, n) in &report.unsupported {
        println!(
            "unsupported (1235) random queries on {keyspace}: {n} of {count}; for example\n  {}",
            report.unsupported_examples[keyspace].join("\n  ")
        );
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for failure in &report.failures {
        // "MISMATCH [s2]", "LOAD [s4]", "GENERATOR", ...
        let kind = match failure.find(']') {
            Some(end) if end < 40 && failure[..end].contains('[') => &failure[..=end],
            _ => failure.split_whitespace().next().unwrap_or_default(),
        };
        *kinds.entry(kind.to_string()).or_default() += 1;
    }
    for (kind, n) in &kinds {
        println!("  {n:5} {kind}");
    }
    println!(
        "{} comparisons, {} equal, {} failures (replay: TESSERA_DIFF_SEED={seed})",
        report.compared,
        report.equal,
        report.failures.len()
    );
    assert!(report.compared > count, "too few comparisons ran");
    assert!(
        report.failures.is_empty(),
        "{} differential failures (replay: TESSERA_DIFF_SEED={seed}); the first:\n{}",
        report.failures.len(),
        report.failures[0]
    );
}
