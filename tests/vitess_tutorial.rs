//! The Vitess tutorial (101 → 201-205 → 301-305) through the gate, with the
//! files of `../shared/vitess-examples` used unchanged: the unsharded
//! `commerce` keyspace, its tables "moved" to `customer` sharded in two, the
//! per-shard select files, and the data file run again against the sharded
//! layout so sequences and vindexes place the new rows. Run once with the
//! files' `xxhash` vindex and once with its older `hash` variant; the shards
//! every row lands in come from `EXPECTED_OUTPUTS.md`.
//!
//! SQL goes through the gate with the `mariadb` CLI fed the files on stdin,
//! as the tutorial's `mysql < file.sql`; schemas and VSchemas go through
//! `tessera ctl apply-schema` / `apply-vschema`, as its `vtctldclient` steps.

mod common;
#[path = "tutorial/cluster.rs"]
mod tutorial_cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::LocalCluster;
use tutorial_cluster::{
    CUSTOMER_SHARDS, apply_schema_file, apply_vschema_file, apply_vschema_text, batch_rows,
    customer_shard, keyspace_id, mariadb_stdin_ok, wait_for_vschema,
};

/// The tutorial files: the copy kept in the repository
/// (`tests/vitess-examples`, so a clean clone has them), checked byte for
/// byte against `../shared/vitess-examples` when that is next to the
/// repository — the files are used unchanged.
fn examples_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/vitess-examples");
    assert!(
        dir.join("EXPECTED_OUTPUTS.md").is_file(),
        "the Vitess tutorial files are missing from {}",
        dir.display()
    );
    let shared = root.join("../shared/vitess-examples");
    if shared.is_dir() {
        for entry in std::fs::read_dir(&shared).expect("reading the shared tutorial files") {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().expect("a file name");
            let ours = std::fs::read(dir.join(name))
                .unwrap_or_else(|e| panic!("tests/vitess-examples lacks {name:?}: {e}"));
            assert_eq!(
                ours,
                std::fs::read(&path).expect("reading a shared tutorial file"),
                "tests/vitess-examples/{name:?} differs from {}",
                path.display()
            );
        }
    }
    dir
}

fn example(name: &str) -> String {
    let path = examples_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading tutorial file {}: {e}", path.display()))
}

/// One ASCII table of `mariadb --table` output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// What a select file printed after one of its `\! echo` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    label: String,
    tables: Vec<Table>,
}

/// Splits `mariadb --table` output into the sections its echo lines start.
/// A table is three `+---+` borders (top, under the header, bottom) with the
/// header and rows between them.
fn parse_table_output(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut borders = 0;
    for line in text.lines() {
        if line.starts_with('+') {
            if borders % 3 == 0 {
                let section = sections
                    .last_mut()
                    .unwrap_or_else(|| panic!("a table before any echo line:\n{text}"));
                section.tables.push(Table {
                    header: Vec::new(),
                    rows: Vec::new(),
                });
            }
            borders += 1;
        } else if line.starts_with('|') {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            let table = sections
                .last_mut()
                .and_then(|s| s.tables.last_mut())
                .unwrap_or_else(|| panic!("a table row outside a table:\n{text}"));
            if borders % 3 == 1 {
                table.header = cells;
            } else {
                table.rows.push(cells);
            }
        } else {
            assert_eq!(borders % 3, 0, "an echo line inside a table:\n{text}");
            sections.push(Section {
                label: line.to_string(),
                tables: Vec::new(),
            });
        }
    }
    assert_eq!(borders % 3, 0, "output ends inside a table:\n{text}");
    sections
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> Table {
    Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        rows,
    }
}

/// A section printing one table, or none when the select found no rows
/// (the CLI prints nothing for an empty result in batch mode).
fn section(label: &str, table: Option<Table>) -> Section {
    Section {
        label: label.to_string(),
        tables: table.into_iter().filter(|t| !t.rows.is_empty()).collect(),
    }
}

/// The oracle: rows the tutorial shows after 101, and the keyspace ids and
/// shards of customers 1-5 under `hash` and `xxhash`.
struct Expected {
    customers: Vec<Vec<String>>,
    products: Vec<Vec<String>>,
    orders: Vec<Vec<String>>,
    /// customer id → vindex type → (keyspace id in hex, shard).
    placement: BTreeMap<i64, BTreeMap<&'static str, (String, String)>>,
}

impl Expected {
    fn read() -> Expected {
        let text = example("EXPECTED_OUTPUTS.md");
        let tuples = |prefix: &str| -> Vec<Vec<String>> {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("EXPECTED_OUTPUTS.md has no {prefix:?} line"));
            line.split('(')
                .skip(1)
                .map(|t| {
                    let inner = t.split(')').next().unwrap();
                    inner.split(',').map(|v| v.trim().to_string()).collect()
                })
                .collect()
        };
        let mut placement = BTreeMap::new();
        for line in text.lines() {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if !line.starts_with('|') || cells.len() != 5 {
                continue;
            }
            let Ok(id) = cells[0].parse::<i64>() else {
                continue;
            };
            placement.insert(
                id,
                BTreeMap::from([
                    ("hash", (cells[1].to_string(), cells[2].to_string())),
                    ("xxhash", (cells[3].to_string(), cells[4].to_string())),
                ]),
            );
        }
        let expected = Expected {
            customers: tuples("Customer:"),
            products: tuples("Product:"),
            orders: tuples("COrder:"),
            placement,
        };
        assert_eq!(
            expected.customers.len(),
            5,
            "customers in EXPECTED_OUTPUTS.md"
        );
        assert_eq!(
            expected.products.len(),
            2,
            "products in EXPECTED_OUTPUTS.md"
        );
        assert_eq!(expected.orders.len(), 5, "orders in EXPECTED_OUTPUTS.md");
        assert_eq!(
            expected.placement.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5],
            "placement table of EXPECTED_OUTPUTS.md"
        );
        expected
    }

    fn shard_of(&self, kind: &str, customer_id: &str) -> &str {
        let id: i64 = customer_id.parse().unwrap();
        &self.placement[&id][kind].1
    }
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort_by_key(|r| r.first().and_then(|v| v.parse::<i64>().ok()));
    rows
}

/// `'text'` with the quote and backslash escaped, for building INSERTs.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn int(value: &str) -> i64 {
    value
        .parse()
        .unwrap_or_else(|_| panic!("not an integer: {value:?}"))
}

/// Steps 101 to 305 and the sharded re-insert with the customer keyspace's
/// vindex of type `kind` ("xxhash" as the file says, or "hash").
fn run_tutorial(kind: &'static str) {
    let expected = Expected::read();
    let dir = tempfile::tempdir().unwrap();
    let cluster = tutorial_cluster::start(dir.path());
    let examples = examples_dir();

    // The oracle's keyspace ids are what our vindexes compute.
    for (id, by_kind) in &expected.placement {
        for (k, (ksid, shard)) in by_kind {
            assert_eq!(&keyspace_id(k, *id).to_string(), ksid, "{k} of {id}");
            assert_eq!(customer_shard(k, *id), shard, "{k} shard of {id}");
        }
    }

    step_101(&cluster, &examples, &expected);
    step_201_205(&cluster, &examples, kind);
    step_301_305(&cluster, kind, &expected);
    sharded_reinsert(&cluster, kind, &expected);

    // Last, so that a failure here hides none of the above: SHOW VSCHEMA
    // answers for the session's keyspace, the unsharded one included (the
    // gate, not mysqld, knows VSchemas).
    let commerce_tables = cluster.mariadb("commerce", "SHOW VSCHEMA TABLES");
    assert_eq!(
        String::from_utf8_lossy(&commerce_tables.stdout),
        "customer_seq\norder_seq\nproduct\n",
        "SHOW VSCHEMA TABLES with `use commerce`: {}",
        String::from_utf8_lossy(&commerce_tables.stderr)
    );
}

/// 101: commerce's schema and VSchema, the data inserted with no database
/// selected, and the select file's output as the tutorial shows it.
fn step_101(cluster: &LocalCluster, examples: &std::path::Path, expected: &Expected) {
    apply_schema_file(
        cluster,
        &examples.join("create_commerce_schema.sql"),
        "commerce",
    );
    apply_vschema_file(
        cluster,
        &examples.join("vschema_commerce_initial.json"),
        "commerce",
    );
    // Without a database, SHOW VSCHEMA answers for the unsharded keyspace.
    wait_for_vschema(cluster, "", "TABLES", "corder\ncustomer\nproduct\n");

    mariadb_stdin_ok(cluster, "", &[], &example("insert_commerce_data.sql"));

    // `--unbuffered` so the CLI's tables and the echo commands' lines come
    // out in the order the file runs them.
    let out = mariadb_stdin_ok(
        cluster,
        "",
        &["--table", "--unbuffered"],
        &example("select_commerce_data.sql"),
    );
    let want = vec![
        section("Using commerce", None),
        section(
            "Customer",
            Some(table(&["customer_id", "email"], expected.customers.clone())),
        ),
        section(
            "Product",
            Some(table(
                &["sku", "description", "price"],
                expected.products.clone(),
            )),
        ),
        section(
            "COrder",
            Some(table(
                &["order_id", "customer_id", "sku", "price"],
                expected.orders.clone(),
            )),
        ),
    ];
    assert_eq!(
        parse_table_output(&out),
        want,
        "select_commerce_data.sql output:\n{out}"
    );
}

/// 201-205 without MoveTables: customer and corder created in the sharded
/// keyspace through the gate, sequences and VSchemas applied, the rows
/// copied with their ids, and the tables dropped from commerce.
fn step_201_205(cluster: &LocalCluster, examples: &std::path::Path, kind: &str) {
    // DDL through the gate on a sharded keyspace runs on every shard.
    mariadb_stdin_ok(
        cluster,
        "customer",
        &[],
        &example("create_commerce_schema.sql"),
    );
    // The file creates product too; MoveTables would have moved only the
    // two customer tables, so the stray copy goes (DROP on every shard).
    cluster.mariadb_ok("customer", "DROP TABLE product");
    for shard in CUSTOMER_SHARDS {
        assert_eq!(
            cluster.mariadb_ok(&format!("customer/{shard}"), "SHOW TABLES"),
            "corder\ncustomer\n",
            "tables of customer/{shard} after DDL through the gate"
        );
    }

    apply_schema_file(
        cluster,
        &examples.join("create_commerce_seq.sql"),
        "commerce",
    );
    apply_vschema_file(
        cluster,
        &examples.join("vschema_commerce_seq.json"),
        "commerce",
    );
    wait_for_vschema(cluster, "", "TABLES", "customer_seq\norder_seq\nproduct\n");

    let vschema = example("vschema_customer_sharded.json");
    assert!(
        vschema.contains("\"type\": \"xxhash\""),
        "vschema_customer_sharded.json no longer uses xxhash"
    );
    let vschema = vschema.replace("\"type\": \"xxhash\"", &format!("\"type\": \"{kind}\""));
    apply_vschema_text(cluster, &vschema, "customer");
    wait_for_vschema(
        cluster,
        "customer",
        "VINDEXES",
        &format!("customer\txxhash\t{kind}\t\t\n"),
    );
    wait_for_vschema(cluster, "customer", "TABLES", "corder\ncustomer\n");

    mariadb_stdin_ok(
        cluster,
        "customer",
        &[],
        &example("create_customer_sharded.sql"),
    );
    for shard in CUSTOMER_SHARDS {
        let auto_increment = cluster.mariadb_ok(
            &format!("customer/{shard}"),
            "SELECT COUNT(*) FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND extra LIKE '%auto_increment%'",
        );
        assert_eq!(
            auto_increment, "0\n",
            "create_customer_sharded.sql left an auto_increment column on {shard}"
        );
    }

    // The copy phase: rows read from commerce, inserted with their ids.
    let customers = batch_rows(
        cluster,
        "commerce",
        "SELECT customer_id, email FROM customer ORDER BY customer_id",
    );
    let orders = batch_rows(
        cluster,
        "commerce",
        "SELECT order_id, customer_id, sku, price FROM corder ORDER BY order_id",
    );
    assert_eq!(customers.len(), 5);
    assert_eq!(orders.len(), 5);
    let values = |rows: &[Vec<String>], text_columns: &[usize]| -> String {
        rows.iter()
            .map(|r| {
                let cells: Vec<String> = r
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if text_columns.contains(&i) {
                            quoted(v)
                        } else {
                            v.clone()
                        }
                    })
                    .collect();
                format!("({})", cells.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    cluster.mariadb_ok(
        "customer",
        &format!(
            "INSERT INTO customer (customer_id, email) VALUES {}",
            values(&customers, &[1])
        ),
    );
    cluster.mariadb_ok(
        "customer",
        &format!(
            "INSERT INTO corder (order_id, customer_id, sku, price) VALUES {}",
            values(&orders, &[2])
        ),
    );

    mariadb_stdin_ok(
        cluster,
        "commerce",
        &[],
        &example("drop_commerce_tables.sql"),
    );
    // 205's check: the tables are gone from commerce.
    for table in ["customer", "corder"] {
        let out = cluster.mariadb("commerce", &format!("SELECT * FROM {table}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("ERROR 1146 (42S02)"),
            "SELECT * FROM {table} on commerce after the move: want ERROR 1146, got {stderr:?} / {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// 301-305: the per-shard select files show each customer in the shard
/// EXPECTED_OUTPUTS.md gives for the vindex, its orders with it.
fn step_301_305(cluster: &LocalCluster, kind: &str, expected: &Expected) {
    for shard in CUSTOMER_SHARDS {
        let file = format!("select_customer{shard}_data.sql");
        let out = mariadb_stdin_ok(cluster, "", &["--table", "--unbuffered"], &example(&file));
        let customers: Vec<Vec<String>> = expected
            .customers
            .iter()
            .filter(|c| expected.shard_of(kind, &c[0]) == shard)
            .cloned()
            .collect();
        let orders: Vec<Vec<String>> = expected
            .orders
            .iter()
            .filter(|o| expected.shard_of(kind, &o[1]) == shard)
            .cloned()
            .collect();
        let want = vec![
            section(&format!("Using customer/{shard}"), None),
            section(
                "Customer",
                Some(table(&["customer_id", "email"], customers)),
            ),
            section(
                "COrder",
                Some(table(&["order_id", "customer_id", "sku", "price"], orders)),
            ),
        ];
        let got = parse_table_output(&out);
        // The select files have no ORDER BY: one shard's rows in any order.
        let normalized: Vec<Section> = got
            .into_iter()
            .map(|mut s| {
                for t in &mut s.tables {
                    t.rows = sorted(std::mem::take(&mut t.rows));
                }
                s
            })
            .collect();
        assert_eq!(normalized, want, "{file} with {kind}:\n{out}");
    }
    let counts: Vec<usize> = CUSTOMER_SHARDS
        .iter()
        .map(|shard| {
            expected
                .customers
                .iter()
                .filter(|c| expected.shard_of(kind, &c[0]) == *shard)
                .count()
        })
        .collect();
    let want_counts = if kind == "xxhash" { [0, 5] } else { [4, 1] };
    assert_eq!(counts, want_counts, "customers per shard under {kind}");
}

/// insert_commerce_data.sql again, with no database selected, against the
/// sharded layout: new customers and orders take sequence ids and land in
/// the shard their vindex picks.
fn sharded_reinsert(cluster: &LocalCluster, kind: &str, expected: &Expected) {
    // Products stayed in commerce with the file's own SKUs as keys; emptied
    // so the unchanged file runs without a duplicate-key error.
    cluster.mariadb_ok("commerce", "DELETE FROM product");
    mariadb_stdin_ok(cluster, "", &[], &example("insert_commerce_data.sql"));

    let mut all_customers = Vec::new();
    let mut all_orders = Vec::new();
    for shard in CUSTOMER_SHARDS {
        let target = format!("customer/{shard}");
        let customers = batch_rows(cluster, &target, "SELECT customer_id, email FROM customer");
        for c in &customers {
            assert_eq!(
                customer_shard(kind, int(&c[0])),
                shard,
                "customer {c:?} is in {shard}, but {kind} puts it elsewhere"
            );
        }
        let orders = batch_rows(
            cluster,
            &target,
            "SELECT order_id, customer_id, sku, price FROM corder",
        );
        for o in &orders {
            assert_eq!(
                customer_shard(kind, int(&o[1])),
                shard,
                "order {o:?} is in {shard}, but its customer's {kind} puts it elsewhere"
            );
        }
        all_customers.extend(customers);
        all_orders.extend(orders);
    }

    let copied: BTreeSet<i64> = (1..=5).collect();
    let new_customers: Vec<&Vec<String>> = all_customers
        .iter()
        .filter(|c| !copied.contains(&int(&c[0])))
        .collect();
    let new_ids: BTreeSet<i64> = new_customers.iter().map(|c| int(&c[0])).collect();
    assert_eq!(
        new_customers.len(),
        5,
        "new customers after the re-insert: {all_customers:?}"
    );
    assert_eq!(
        new_ids.len(),
        5,
        "sequence ids are unique: {new_customers:?}"
    );
    assert!(
        new_ids.iter().all(|id| *id >= 1000),
        "customer_seq starts at 1000: {new_ids:?}"
    );
    let mut new_emails: Vec<String> = new_customers.iter().map(|c| c[1].clone()).collect();
    new_emails.sort();
    let mut want_emails: Vec<String> = expected.customers.iter().map(|c| c[1].clone()).collect();
    want_emails.sort();
    assert_eq!(new_emails, want_emails);

    let new_orders: Vec<&Vec<String>> = all_orders
        .iter()
        .filter(|o| !copied.contains(&int(&o[0])))
        .collect();
    let new_order_ids: BTreeSet<i64> = new_orders.iter().map(|o| int(&o[0])).collect();
    assert_eq!(new_orders.len(), 5, "new orders: {all_orders:?}");
    assert_eq!(
        new_order_ids.len(),
        5,
        "order ids are unique: {new_orders:?}"
    );
    assert!(
        new_order_ids.iter().all(|id| *id >= 1000),
        "order_seq starts at 1000: {new_order_ids:?}"
    );
    // The file's orders name customers 1-5: each went with its customer.
    let mut order_rest: Vec<Vec<String>> = new_orders.iter().map(|o| o[1..].to_vec()).collect();
    order_rest.sort();
    let mut want_rest: Vec<Vec<String>> = expected.orders.iter().map(|o| o[1..].to_vec()).collect();
    want_rest.sort();
    assert_eq!(order_rest, want_rest);

    // Scatter reads through the gate see every shard's rows, with a
    // database selected and without one (global routing).
    let all_sorted = sorted(all_customers);
    assert_eq!(all_sorted.len(), 10);
    for db in ["customer", ""] {
        let scatter = sorted(batch_rows(cluster, db, "select * from customer"));
        assert_eq!(scatter, all_sorted, "select * from customer in {db:?}");
    }
    let ordered = batch_rows(
        cluster,
        "customer",
        "select customer_id, email from customer order by customer_id",
    );
    assert_eq!(ordered, all_sorted, "ORDER BY merged across shards");
    assert_eq!(
        batch_rows(cluster, "", "select count(*) from corder"),
        vec![vec!["10".to_string()]]
    );
    let products = batch_rows(cluster, "commerce", "select * from product order by sku");
    assert_eq!(products, expected.products);
}

#[test]
fn tutorial_with_xxhash_as_shipped() {
    run_tutorial("xxhash");
}

#[test]
fn tutorial_with_hash_variant() {
    run_tutorial("hash");
}

#[test]
fn table_output_parser() {
    let text =
        "Using x\nCustomer\n+----+---+\n| id | e |\n+----+---+\n|  1 | a |\n+----+---+\nCOrder\n";
    assert_eq!(
        parse_table_output(text),
        vec![
            section("Using x", None),
            section(
                "Customer",
                Some(table(&["id", "e"], vec![vec!["1".into(), "a".into()]]))
            ),
            section("COrder", None),
        ]
    );
}
