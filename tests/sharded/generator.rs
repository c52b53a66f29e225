//! Random SELECTs over the differential tests' schema, reproducible from a
//! seed: select lists of columns, expressions and aggregates; WHERE with =,
//! <>, <, IN, BETWEEN, IS NULL, AND/OR (vindex equality included); GROUP BY
//! with HAVING; ORDER BY (by column, alias or position) and LIMIT; DISTINCT;
//! UNION and UNION ALL; co-located and reference joins; aggregates, GROUP BY
//! and DISTINCT over inner and LEFT joins the gate runs itself (not on the
//! vindex); and what the gate answers over gathered rows: functions around
//! aggregates, derived tables needing several shards, aggregates over both
//! tables of a gate join, set operations with the reference table.
//!
//! Every query is deterministic on a single MariaDB, so any difference from
//! the reference is the gate's: rows are compared in order only when ORDER BY
//! ends in a key that makes the order total, LIMIT appears only then, and
//! columns whose distinct values may compare equal under their collation
//! (`customer.city`: 'Berlin' and 'berlin') are never output where the server
//! picks one spelling of a group (GROUP BY, DISTINCT, MIN/MAX).
//!
//! The value pools below follow `gen_data.py`: keep them in step.

/// xorshift64*: small, fast and good enough to pick query shapes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // A zero state would stay zero forever.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Int,
    Dec,
    Date,
    Str,
}

#[derive(Clone, Copy, Debug)]
enum Pool {
    Ints(i64, i64),
    CustomerIds,
    OrderIds,
    EventIds,
    Cents(i64, i64),
    Dates,
    Strings(&'static [&'static str]),
}

struct Column {
    name: &'static str,
    ty: Ty,
    pool: Pool,
    /// False when distinct values may compare equal under the column's
    /// collation, so the spelling a group shows is the server's choice.
    groupable: bool,
}

struct Table {
    name: &'static str,
    alias: &'static str,
    /// Unique, so ORDER BY ending in it is total.
    pk: &'static str,
    /// The primary vindex column, for sharded tables.
    vindex: Option<&'static str>,
    columns: &'static [Column],
}

const fn col(name: &'static str, ty: Ty, pool: Pool) -> Column {
    Column {
        name,
        ty,
        pool,
        groupable: true,
    }
}

const NAMES: &[&str] = &[
    "Alice", "bob", "CAROL", "Dave", "Émile", "Zoë", "Ørjan", "Ángel", "frank", "Grace", "heidi",
    "Ivan", "Jürgen", "karl", "Łukasz", "Mia", "Nadia", "oscar", "Paul", "Quinn", "Ren", "Søren",
    "Tomás", "Uma", "Vera", "walt", "Xena", "Yuki", "zack", "alice", "EMILE", "zoe", "Nobody",
];
const CITIES: &[&str] = &[
    "Berlin",
    "berlin",
    "BERLIN",
    "Paris",
    "paris",
    "München",
    "Zürich",
    "Oslo",
    "São Paulo",
    "Łódź",
    "munchen",
    "zurich",
    "Nowhere",
];
const KINDS: &[&str] = &[
    "click", "Click", "CLICK", "view", "View", "buy", "Buy", "ärger", "Ärger", "VIEW", "arger",
    "none",
];
const SKUS: &[&str] = &[
    "apple-01",
    "Banana-02",
    "cherry-03",
    "Date-04",
    "elder-05",
    "Fig-06",
    "grape-07",
    "Honeydew-08",
    "kiwi-09",
    "Lemon-10",
    "mango-11",
    "Nectar-12",
    "olive-13",
    "Papaya-14",
    "quince-15",
    "Raisin-16",
    "sloe-17",
    "Tamarind-18",
    "ugli-19",
    "Yuzu-20",
    "APPLE-01",
    "no-such-sku",
    "zzz",
];
const TITLES: &[&str] = &[
    "Äpfel", "Banane", "Kirsche", "Dattel", "Holunder", "Feige", "kiwi", "Mango", "Yuzu", "apfel",
    "KIWI",
];
const BIG_CUSTOMER_IDS: &[&str] = &[
    "500",
    "1000",
    "4242",
    "65536",
    "99999",
    "123456",
    "1000000",
    "2147483648",
    "9007199254740993",
    "9223372036854775807",
    "31337",
    "777",
];
const BIG_ORDER_IDS: &[&str] = &[
    "1001",
    "1002",
    "5000",
    "77777",
    "888888",
    "4294967296",
    "12345678901",
    "424242",
];
const ODD_EVENT_IDS: &[&str] = &[
    "3",
    "5",
    "8",
    "11",
    "13",
    "1048576",
    "8589934592",
    "987654321",
    "42424242",
    "31337",
    "6",
];

const CUSTOMER: Table = Table {
    name: "customer",
    alias: "c",
    pk: "id",
    vindex: Some("id"),
    columns: &[
        col("id", Ty::Int, Pool::CustomerIds),
        col("name", Ty::Str, Pool::Strings(NAMES)),
        Column {
            name: "city",
            ty: Ty::Str,
            pool: Pool::Strings(CITIES),
            groupable: false,
        },
        col("score", Ty::Int, Pool::Ints(-12, 105)),
        col("balance", Ty::Dec, Pool::Cents(-600, 5100)),
        col("created", Ty::Date, Pool::Dates),
    ],
};
const ORDERS: Table = Table {
    name: "orders",
    alias: "o",
    pk: "id",
    vindex: Some("customer_id"),
    columns: &[
        col("id", Ty::Int, Pool::OrderIds),
        col("customer_id", Ty::Int, Pool::CustomerIds),
        col("sku", Ty::Str, Pool::Strings(SKUS)),
        col("qty", Ty::Int, Pool::Ints(0, 11)),
        col("price", Ty::Dec, Pool::Cents(0, 310)),
    ],
};
const EVENT: Table = Table {
    name: "event",
    alias: "e",
    pk: "id",
    vindex: Some("id"),
    columns: &[
        col("id", Ty::Int, Pool::EventIds),
        col("kind", Ty::Str, Pool::Strings(KINDS)),
        col("n", Ty::Int, Pool::Ints(0, 52)),
    ],
};
const PRODUCT: Table = Table {
    name: "product",
    alias: "p",
    pk: "sku",
    vindex: None,
    columns: &[
        col("sku", Ty::Str, Pool::Strings(SKUS)),
        col("title", Ty::Str, Pool::Strings(TITLES)),
        col("price", Ty::Int, Pool::Ints(0, 62)),
    ],
};

/// A generated query; `ordered` when its ORDER BY fixes the row order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub sql: String,
    pub ordered: bool,
}

/// What the rows come from: one table, or tables joined so the join can be
/// pushed down whole (co-located by vindex, or with the reference table).
struct Source {
    from: String,
    tables: Vec<(Option<&'static str>, &'static Table)>,
    /// Appended to ORDER BY to make the order total.
    tiebreak: Vec<String>,
    /// The column whose equality routes to one shard, and its pool.
    vindex: Option<(String, Pool)>,
    /// `SELECT *` keeps the single table's column order.
    single: bool,
    /// A join the gate runs itself: WHERE reads only the first table (a
    /// condition over both that is not an equality is refused).
    gate_join: bool,
}

impl Source {
    fn columns(&self) -> Vec<(String, &'static Column)> {
        self.tables
            .iter()
            .flat_map(|(alias, table)| {
                table.columns.iter().map(move |c| {
                    let name = match alias {
                        Some(a) => format!("{a}.{}", c.name),
                        None => c.name.to_string(),
                    };
                    (name, c)
                })
            })
            .collect()
    }
}

fn single(table: &'static Table) -> Source {
    let vindex = table.vindex.map(|v| {
        let pool = table
            .columns
            .iter()
            .find(|c| c.name == v)
            .expect("vindex column exists")
            .pool;
        (v.to_string(), pool)
    });
    Source {
        from: table.name.to_string(),
        tables: vec![(None, table)],
        tiebreak: vec![table.pk.to_string()],
        vindex,
        single: true,
        gate_join: false,
    }
}

fn source(rng: &mut Rng) -> Source {
    match rng.below(20) {
        0..=3 => single(&CUSTOMER),
        4..=6 => single(&ORDERS),
        7..=8 => single(&EVENT),
        9 => single(&PRODUCT),
        10..=13 => {
            let kind = if rng.chance(25) { "LEFT JOIN" } else { "JOIN" };
            Source {
                from: format!("customer c {kind} orders o ON c.id = o.customer_id"),
                tables: vec![(Some("c"), &CUSTOMER), (Some("o"), &ORDERS)],
                tiebreak: vec!["c.id".into(), "o.id".into()],
                vindex: Some(("c.id".into(), Pool::CustomerIds)),
                single: false,
                gate_join: false,
            }
        }
        14..=16 => Source {
            from: "orders o JOIN product p ON o.sku = p.sku".into(),
            tables: vec![(Some("o"), &ORDERS), (Some("p"), &PRODUCT)],
            tiebreak: vec!["o.id".into()],
            vindex: Some(("o.customer_id".into(), Pool::CustomerIds)),
            single: false,
            gate_join: false,
        },
        17 => Source {
            from:
                "customer c JOIN orders o ON o.customer_id = c.id JOIN product p ON p.sku = o.sku"
                    .into(),
            tables: vec![
                (Some("c"), &CUSTOMER),
                (Some("o"), &ORDERS),
                (Some("p"), &PRODUCT),
            ],
            tiebreak: vec!["o.id".into()],
            vindex: Some(("c.id".into(), Pool::CustomerIds)),
            single: false,
            gate_join: false,
        },
        _ => {
            // The alias form of a single table.
            let table = *rng.pick(&[&CUSTOMER, &ORDERS, &EVENT]);
            let alias = table.alias;
            Source {
                from: format!("{} {alias}", table.name),
                tables: vec![(Some(alias), table)],
                tiebreak: vec![format!("{alias}.{}", table.pk)],
                vindex: single(table)
                    .vindex
                    .map(|(v, pool)| (format!("{alias}.{v}"), pool)),
                single: false,
                gate_join: false,
            }
        }
    }
}

/// Two sharded tables joined on columns that are not both their vindex:
/// the gate joins the rows (an inner join, or a LEFT one that keeps the
/// first table's rows no row of the second matches).
fn gate_join(rng: &mut Rng) -> Source {
    let (from, tables): (&str, [&'static Table; 2]) = match rng.below(4) {
        0 => (
            "customer c {JOIN} event e ON c.score = e.n",
            [&CUSTOMER, &EVENT],
        ),
        1 => (
            "customer c {JOIN} orders o ON c.score = o.qty",
            [&CUSTOMER, &ORDERS],
        ),
        2 => ("orders o {JOIN} event e ON o.qty = e.n", [&ORDERS, &EVENT]),
        _ => (
            "customer c {JOIN} event e ON c.id = e.id",
            [&CUSTOMER, &EVENT],
        ),
    };
    let kind = if rng.chance(35) { "LEFT JOIN" } else { "JOIN" };
    Source {
        from: from.replace("{JOIN}", kind),
        tables: tables.iter().map(|t| (Some(t.alias), *t)).collect(),
        tiebreak: tables
            .iter()
            .map(|t| format!("{}.{}", t.alias, t.pk))
            .collect(),
        vindex: None,
        single: false,
        gate_join: true,
    }
}

fn literal(rng: &mut Rng, pool: Pool) -> String {
    match pool {
        Pool::Ints(lo, hi) => rng.range(lo, hi).to_string(),
        Pool::CustomerIds => {
            if rng.chance(80) {
                rng.range(1, 115).to_string()
            } else {
                rng.pick(BIG_CUSTOMER_IDS).to_string()
            }
        }
        Pool::OrderIds => {
            if rng.chance(85) {
                rng.range(1, 245).to_string()
            } else {
                rng.pick(BIG_ORDER_IDS).to_string()
            }
        }
        Pool::EventIds => {
            if rng.chance(75) {
                (rng.range(1, 95) * 7).to_string()
            } else {
                rng.pick(ODD_EVENT_IDS).to_string()
            }
        }
        Pool::Cents(lo, hi) => {
            let cents = rng.range(lo * 100, hi * 100);
            let sign = if cents < 0 { "-" } else { "" };
            format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
        }
        Pool::Dates => format!(
            "'{}-{:02}-{:02}'",
            rng.range(2020, 2024),
            rng.range(1, 12),
            rng.range(1, 28)
        ),
        Pool::Strings(values) => format!("'{}'", rng.pick(values)),
    }
}

fn literals(rng: &mut Rng, pool: Pool, n: usize) -> String {
    (0..n)
        .map(|_| literal(rng, pool))
        .collect::<Vec<_>>()
        .join(", ")
}

fn atom(rng: &mut Rng, name: &str, column: &Column) -> String {
    let pool = column.pool;
    match rng.below(12) {
        0..=2 => format!("{name} = {}", literal(rng, pool)),
        3 => format!("{name} <> {}", literal(rng, pool)),
        4 => format!("{name} < {}", literal(rng, pool)),
        5 => format!("{name} >= {}", literal(rng, pool)),
        6 | 7 => {
            let n = rng.range(1, 4) as usize;
            format!("{name} IN ({})", literals(rng, pool, n))
        }
        8 => {
            let n = rng.range(1, 3) as usize;
            format!("{name} NOT IN ({})", literals(rng, pool, n))
        }
        9 => format!(
            "{name} BETWEEN {} AND {}",
            literal(rng, pool),
            literal(rng, pool)
        ),
        10 => format!("{name} IS NULL"),
        _ => format!("{name} IS NOT NULL"),
    }
}

fn predicate(rng: &mut Rng, src: &Source) -> String {
    let columns = src.columns();
    let mut pred = {
        let (name, column) = rng.pick(&columns);
        atom(rng, name, column)
    };
    for _ in 0..rng.below(3) {
        let (name, column) = rng.pick(&columns);
        let next = atom(rng, name, column);
        pred = match rng.below(4) {
            0 => format!("{pred} OR {next}"),
            1 => format!("({pred}) OR {next}"),
            2 => format!("({pred}) AND {next}"),
            _ => format!("{pred} AND {next}"),
        };
    }
    pred
}

/// WHERE clause (with its keyword) or nothing; sometimes routed by the
/// vindex: equality or IN on it, possibly with more conditions.
fn where_clause(rng: &mut Rng, src: &Source) -> String {
    if let Some((vindex, pool)) = &src.vindex
        && rng.chance(25)
    {
        let routed = if rng.chance(60) {
            format!("{vindex} = {}", literal(rng, *pool))
        } else {
            let n = rng.range(1, 5) as usize;
            format!("{vindex} IN ({})", literals(rng, *pool, n))
        };
        return if rng.chance(40) {
            format!(" WHERE {routed} AND ({})", predicate(rng, src))
        } else {
            format!(" WHERE {routed}")
        };
    }
    if src.gate_join {
        if !rng.chance(65) {
            return String::new();
        }
        let first = Source {
            from: String::new(),
            tables: src.tables[..1].to_vec(),
            tiebreak: Vec::new(),
            vindex: None,
            single: false,
            gate_join: true,
        };
        return format!(" WHERE {}", predicate(rng, &first));
    }
    if rng.chance(65) {
        format!(" WHERE {}", predicate(rng, src))
    } else {
        String::new()
    }
}

fn expression(rng: &mut Rng, name: &str, column: &Column) -> String {
    match column.ty {
        // Ids reach i64::MAX: only arithmetic that cannot overflow BIGINT.
        Ty::Int if has_big_values(column) => format!("{name} - 3"),
        Ty::Int => match rng.below(3) {
            0 => format!("{name}*2"),
            1 => format!("{name} + 1"),
            _ => format!("{name} - 3"),
        },
        Ty::Dec => match rng.below(2) {
            0 => format!("{name}*2"),
            _ => format!("{name} + 0.5"),
        },
        Ty::Str => match rng.below(3) {
            0 => format!("CONCAT({name}, 'x')"),
            1 => format!("UPPER({name})"),
            _ => format!("LENGTH({name})"),
        },
        Ty::Date => match rng.below(2) {
            0 => format!("YEAR({name})"),
            _ => format!("DATE_ADD({name}, INTERVAL 1 DAY)"),
        },
    }
}

fn has_big_values(column: &Column) -> bool {
    matches!(
        column.pool,
        Pool::CustomerIds | Pool::OrderIds | Pool::EventIds
    )
}

fn is_numeric(column: &Column) -> bool {
    matches!(column.ty, Ty::Int | Ty::Dec)
}

fn aggregate(rng: &mut Rng, src: &Source) -> String {
    let columns = src.columns();
    let numeric: Vec<_> = columns.iter().filter(|(_, c)| is_numeric(c)).collect();
    let ordered: Vec<_> = columns.iter().filter(|(_, c)| c.groupable).collect();
    let small: Vec<_> = numeric.iter().filter(|(_, c)| !has_big_values(c)).collect();
    match rng.below(13) {
        0 | 1 => "COUNT(*)".to_string(),
        // Expressions around aggregates, computed by the gate from partials.
        9 => format!("SUM({})/COUNT(*)", rng.pick(&small).0),
        10 => {
            let name = &rng.pick(&small).0;
            [
                format!("MAX({name}) - MIN({name})"),
                "COUNT(*) + 1".to_string(),
                format!("ROUND(AVG({name}), 2)"),
            ][rng.below(3) as usize]
                .clone()
        }
        11 => format!("CONCAT('n=', COUNT(*), '/', MAX({}))", rng.pick(&small).0),
        // Functions the merge does not compute: the rows are gathered.
        12 => {
            let name = &rng.pick(&small).0;
            [
                format!("IFNULL(SUM({name}), 0)"),
                format!("COALESCE(MAX({name}), -1)"),
                "COUNT(*) DIV 2".to_string(),
                format!("GREATEST(MIN({name}), 0)"),
            ][rng.below(4) as usize]
                .clone()
        }
        2 => format!("COUNT({})", rng.pick(&columns).0),
        3 => format!("SUM({})", rng.pick(&numeric).0),
        4 => format!("MIN({})", rng.pick(&ordered).0),
        5 => format!("MAX({})", rng.pick(&ordered).0),
        6 => format!("AVG({})", rng.pick(&numeric).0),
        7 => format!("COUNT(DISTINCT {})", rng.pick(&columns).0),
        _ => format!("SUM({}*2)", rng.pick(&small).0),
    }
}

fn direction(rng: &mut Rng) -> &'static str {
    ["", " ASC", " DESC"][rng.below(3) as usize]
}

fn limit(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!(" LIMIT {}", rng.range(0, 30)),
        1 => format!(" LIMIT {} OFFSET {}", rng.range(1, 20), rng.range(0, 40)),
        _ => format!(" LIMIT {}, {}", rng.range(0, 40), rng.range(1, 20)),
    }
}

/// Rows of the source: columns and expressions, maybe ordered and limited.
fn plain(rng: &mut Rng, src: &Source) -> Query {
    let columns = src.columns();
    // How ORDER BY may name each select item: its alias or its position.
    let mut item_refs = Vec::new();
    let list = if src.single && rng.chance(8) {
        "*".to_string()
    } else {
        let n = rng.range(1, 4);
        (0..n)
            .map(|i| {
                let (name, column) = rng.pick(&columns);
                match rng.below(10) {
                    0 | 1 => {
                        item_refs.push((i + 1).to_string());
                        expression(rng, name, column)
                    }
                    2 => {
                        item_refs.push(format!("a{i}"));
                        format!("{name} AS a{i}")
                    }
                    _ => {
                        item_refs.push((i + 1).to_string());
                        name.clone()
                    }
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut sql = format!("SELECT {list} FROM {}{}", src.from, where_clause(rng, src));
    let ordered = rng.chance(55);
    if ordered {
        let mut keys: Vec<String> = (0..rng.below(3))
            .map(|_| {
                let key = if !item_refs.is_empty() && rng.chance(35) {
                    rng.pick(&item_refs).clone()
                } else {
                    rng.pick(&columns).0.clone()
                };
                format!("{key}{}", direction(rng))
            })
            .collect();
        keys.extend(
            src.tiebreak
                .iter()
                .map(|k| format!("{k}{}", direction(rng))),
        );
        sql += &format!(" ORDER BY {}", keys.join(", "));
        if rng.chance(50) {
            sql += &limit(rng);
        }
    }
    Query { sql, ordered }
}

/// Two SELECTs of the same groupable columns of one table, UNION or UNION
/// ALL; in order only when ordered by every column (rows that tie are then
/// equal, so their order does not matter).
fn union(rng: &mut Rng) -> Query {
    let table = *rng.pick(&[&CUSTOMER, &ORDERS, &EVENT, &PRODUCT]);
    let src = single(table);
    let keys = group_keys(rng, &src);
    let list = keys.join(", ");
    let op = if rng.chance(50) { "UNION" } else { "UNION ALL" };
    let mut sql = format!(
        "SELECT {list} FROM {}{} {op} SELECT {list} FROM {}{}",
        table.name,
        where_clause(rng, &src),
        table.name,
        where_clause(rng, &src)
    );
    let ordered = rng.chance(50);
    if ordered {
        let order: Vec<String> = (1..=keys.len())
            .map(|i| format!("{i}{}", direction(rng)))
            .collect();
        sql += &format!(" ORDER BY {}", order.join(", "));
        if rng.chance(50) {
            sql += &limit(rng);
        }
    }
    Query { sql, ordered }
}

fn group_keys(rng: &mut Rng, src: &Source) -> Vec<String> {
    let candidates: Vec<String> = src
        .columns()
        .into_iter()
        .filter(|(_, c)| c.groupable)
        .map(|(name, _)| name)
        .collect();
    let mut keys = vec![rng.pick(&candidates).clone()];
    if rng.chance(40) {
        let second = rng.pick(&candidates).clone();
        if !keys.contains(&second) {
            keys.push(second);
        }
    }
    keys
}

/// Distinct combinations of groupable columns; in order only when ordered by
/// all of them (distinct rows then differ in some key).
fn distinct(rng: &mut Rng, src: &Source) -> Query {
    let keys = group_keys(rng, src);
    let mut sql = format!(
        "SELECT DISTINCT {} FROM {}{}",
        keys.join(", "),
        src.from,
        where_clause(rng, src)
    );
    let ordered = rng.chance(40);
    if ordered {
        let order: Vec<String> = keys
            .iter()
            .map(|k| format!("{k}{}", direction(rng)))
            .collect();
        sql += &format!(" ORDER BY {}", order.join(", "));
        if rng.chance(50) {
            sql += &limit(rng);
        }
    }
    Query { sql, ordered }
}

fn aggregates(rng: &mut Rng, src: &Source, at_least: u64) -> Vec<String> {
    (0..at_least + rng.below(3))
        .map(|_| aggregate(rng, src))
        .collect()
}

/// Aggregates over the whole (filtered) source: one row, even when empty.
fn whole_aggregate(rng: &mut Rng, src: &Source) -> Query {
    let list = aggregates(rng, src, 1).join(", ");
    Query {
        sql: format!("SELECT {list} FROM {}{}", src.from, where_clause(rng, src)),
        ordered: false,
    }
}

fn having(rng: &mut Rng, src: &Source) -> String {
    let columns = src.columns();
    let numeric: Vec<_> = columns.iter().filter(|(_, c)| is_numeric(c)).collect();
    let (name, column) = rng.pick(&numeric);
    let bound = literal(rng, column.pool);
    let cond = match rng.below(5) {
        0 | 1 => format!("COUNT(*) > {}", rng.range(0, 3)),
        2 => format!("SUM({name}) > {bound}"),
        3 => format!("MIN({name}) < {bound}"),
        _ => format!("AVG({name}) >= {bound}"),
    };
    if rng.chance(20) {
        format!(" HAVING {cond} AND COUNT(*) >= 1")
    } else {
        format!(" HAVING {cond}")
    }
}

/// GROUP BY one or two groupable keys, aggregates, maybe HAVING; in order
/// only when ORDER BY ends in every key.
fn grouped(rng: &mut Rng, src: &Source) -> Query {
    let keys = group_keys(rng, src);
    // Aggregates as ORDER BY names them: sometimes by an alias.
    let mut aggs = Vec::new();
    let mut list: Vec<String> = if rng.chance(10) {
        Vec::new()
    } else {
        keys.clone()
    };
    for (i, agg) in aggregates(rng, src, 1).into_iter().enumerate() {
        if rng.chance(25) {
            list.push(format!("{agg} AS g{i}"));
            aggs.push(format!("g{i}"));
        } else {
            list.push(agg.clone());
            aggs.push(agg);
        }
    }
    if rng.chance(30) {
        list.reverse();
    }
    let mut sql = format!(
        "SELECT {} FROM {}{} GROUP BY {}",
        list.join(", "),
        src.from,
        where_clause(rng, src),
        keys.join(", ")
    );
    if rng.chance(30) {
        sql += &having(rng, src);
    }
    let ordered = rng.chance(50);
    if ordered {
        let mut order = Vec::new();
        if rng.chance(50) {
            let agg = if rng.chance(60) {
                rng.pick(&aggs).clone()
            } else {
                aggregate(rng, src)
            };
            order.push(format!("{agg}{}", direction(rng)));
        }
        order.extend(keys.iter().map(|k| format!("{k}{}", direction(rng))));
        sql += &format!(" ORDER BY {}", order.join(", "));
        if rng.chance(40) {
            sql += &limit(rng);
        }
    }
    Query { sql, ordered }
}

/// A derived table whose rows need several shards' rows (grouped by a
/// column that is not the vindex, or limited), aggregated by the outer
/// query: the gate gathers the derived table's rows.
fn derived(rng: &mut Rng) -> Query {
    let table = *rng.pick(&[&CUSTOMER, &ORDERS, &EVENT]);
    let src = single(table);
    let columns = src.columns();
    let small: Vec<_> = columns
        .iter()
        .filter(|(_, c)| is_numeric(c) && !has_big_values(c))
        .collect();
    let x = &rng.pick(&small).0;
    let inner = if rng.chance(50) {
        let key = group_keys(rng, &src).swap_remove(0);
        format!(
            "SELECT {key} AS k0, COUNT(*) AS n, SUM({x}) AS s FROM {}{} GROUP BY {key}",
            table.name,
            where_clause(rng, &src)
        )
    } else {
        format!(
            "SELECT {pk} AS k0, 1 AS n, {x} AS s FROM {}{} ORDER BY {pk}{} LIMIT {}",
            table.name,
            where_clause(rng, &src),
            direction(rng),
            rng.range(0, 25),
            pk = table.pk,
        )
    };
    let list = [
        "COUNT(*)",
        "SUM(d.s)",
        "MAX(d.n)",
        "IFNULL(MIN(d.s), -1)",
        "COUNT(DISTINCT d.k0)",
    ];
    let items: Vec<&str> = (0..rng.range(1, 3)).map(|_| *rng.pick(&list)).collect();
    let filter = if rng.chance(40) {
        format!(" WHERE d.n > {}", rng.range(0, 3))
    } else {
        String::new()
    };
    Query {
        sql: format!("SELECT {} FROM ({inner}) AS d{filter}", items.join(", ")),
        ordered: false,
    }
}

/// Aggregates over a join the gate runs whose arguments read both tables:
/// the rows of both are gathered.
fn cross_join_aggregate(rng: &mut Rng) -> Query {
    let src = gate_join(rng);
    let small: Vec<String> = src
        .columns()
        .into_iter()
        .filter(|(_, c)| is_numeric(c) && !has_big_values(c))
        .map(|(name, _)| name)
        .collect();
    let first = src.tables[0].0.unwrap_or_default();
    let a = rng.pick(&small).clone();
    let mut b = rng.pick(&small).clone();
    // One argument from each table.
    for candidate in &small {
        if a.starts_with(first) != candidate.starts_with(first) {
            b = candidate.clone();
            break;
        }
    }
    let list = match rng.below(3) {
        0 => format!("SUM({a} + {b}), COUNT(*)"),
        1 => format!("MAX({a} - {b}), MIN({a} * 2 + {b})"),
        _ => format!("COUNT(*), SUM(CASE WHEN {a} > {b} THEN 1 ELSE 0 END)"),
    };
    Query {
        sql: format!("SELECT {list} FROM {}{}", src.from, where_clause(rng, &src)),
        ordered: false,
    }
}

/// A set operation between a sharded and another table (the reference
/// table among them), over integer columns.
fn mixed_set_operation(rng: &mut Rng) -> Query {
    const BRANCHES: &[(&str, &Table)] = &[
        ("qty", &ORDERS),
        ("n", &EVENT),
        ("price", &PRODUCT),
        ("score", &CUSTOMER),
    ];
    let (c1, t1) = *rng.pick(&BRANCHES[..2]);
    let (c2, t2) = *rng.pick(&BRANCHES[2..]);
    let op = *rng.pick(&["UNION", "UNION ALL", "INTERSECT", "EXCEPT"]);
    // The first branch is sometimes a join: co-located, or one the gate runs.
    let first = match rng.below(3) {
        0 => {
            let src = gate_join(rng);
            let column = src
                .columns()
                .into_iter()
                .find(|(_, c)| is_numeric(c) && !has_big_values(c))
                .map(|(name, _)| name)
                .expect("a small numeric column");
            format!(
                "SELECT {column} FROM {}{}",
                src.from,
                where_clause(rng, &src)
            )
        }
        1 => {
            "SELECT o.qty FROM customer c JOIN orders o ON c.id = o.customer_id WHERE c.score > 50"
                .to_string()
        }
        _ => format!(
            "SELECT {c1} FROM {}{}",
            t1.name,
            where_clause(rng, &single(t1))
        ),
    };
    let mut sql = format!(
        "{first} {op} SELECT {c2} FROM {}{}",
        t2.name,
        where_clause(rng, &single(t2)),
    );
    let ordered = rng.chance(50);
    if ordered {
        sql += &format!(" ORDER BY 1{}", direction(rng));
        if rng.chance(50) {
            sql += &limit(rng);
        }
    }
    Query { sql, ordered }
}

pub fn query(rng: &mut Rng) -> Query {
    if rng.chance(8) {
        return match rng.below(3) {
            0 => derived(rng),
            1 => cross_join_aggregate(rng),
            _ => mixed_set_operation(rng),
        };
    }
    let src = source(rng);
    match rng.below(20) {
        0..=6 => plain(rng, &src),
        7 => union(rng),
        8..=9 => distinct(rng, &src),
        10..=13 => whole_aggregate(rng, &src),
        14..=17 => grouped(rng, &src),
        // Over a join the gate runs (plain columns of one are in `plain`'s
        // reach only through the hand-written cases).
        18 => {
            let src = gate_join(rng);
            match rng.below(3) {
                0 => distinct(rng, &src),
                1 => whole_aggregate(rng, &src),
                _ => grouped(rng, &src),
            }
        }
        _ => {
            let src = gate_join(rng);
            grouped(rng, &src)
        }
    }
}

/// `count` queries from `seed`.
pub fn queries(seed: u64, count: usize) -> Vec<Query> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| query(&mut rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_queries() {
        assert_eq!(queries(7, 300), queries(7, 300));
        assert_ne!(queries(7, 50), queries(8, 50));
    }

    #[test]
    fn limits_only_under_a_total_order() {
        for q in queries(12345, 3000) {
            if q.sql.contains(") AS d") {
                // A derived table's LIMIT comes under an order by its key.
                if q.sql.contains(" LIMIT ") {
                    assert!(q.sql.contains(" ORDER BY id"), "{}", q.sql);
                }
            } else if q.sql.contains(" LIMIT ") {
                assert!(q.ordered, "{}", q.sql);
            }
            if q.ordered {
                assert!(q.sql.contains(" ORDER BY "), "{}", q.sql);
            }
            // city may repeat under its collation: never a group's face.
            assert!(!q.sql.contains("MIN(c.city)") && !q.sql.contains("MIN(city)"));
            assert!(!q.sql.contains("GROUP BY city") && !q.sql.contains("SELECT DISTINCT city"));
        }
    }

    #[test]
    fn covers_the_grammar() {
        let all: String = queries(99, 3000)
            .into_iter()
            .map(|q| q.sql + "\n")
            .collect();
        for needle in [
            " JOIN ",
            " LEFT JOIN ",
            "JOIN event e ON c.score = e.n",
            "JOIN orders o ON c.score = o.qty",
            "JOIN event e ON o.qty = e.n",
            "GROUP BY",
            "HAVING",
            "DISTINCT",
            "COUNT(DISTINCT",
            "AVG(",
            "/COUNT(*)",
            "ROUND(AVG(",
            "BETWEEN",
            "IS NULL",
            " IN (",
            " OR ",
            " OFFSET ",
            "SELECT *",
            "CONCAT(",
            "WHERE id = ",
            "WHERE c.id IN (",
            " UNION SELECT ",
            " UNION ALL SELECT ",
            " AS g0",
            "ORDER BY 1",
            "IFNULL(SUM(",
            "COUNT(*) DIV 2",
            ") AS d",
            " LIMIT 1) AS d",
            "SUM(c.score + e.n)",
            " INTERSECT SELECT ",
            " EXCEPT SELECT ",
            " UNION SELECT price FROM product",
            "JOIN event e ON c.score = e.n WHERE",
        ] {
            assert!(all.contains(needle), "no query has {needle:?}");
        }
    }
}
