//! Tests of USE targets, statement splitting and the LAST_INSERT_ID rewrite,
//! plus a robustness sweep over generated garbage input.

use tessera_sql::{StatementKind, classify, rewrite_last_insert_id, split_statements, use_target};

#[test]
fn use_targets() {
    let cases: &[(&str, Option<&str>)] = &[
        ("USE commerce", Some("commerce")),
        ("use commerce;", Some("commerce")),
        ("USE commerce@replica", Some("commerce@replica")),
        ("USE commerce@rdonly ; ", Some("commerce@rdonly")),
        ("USE customer:-80", Some("customer:-80")),
        ("USE customer:80-@replica", Some("customer:80-@replica")),
        ("USE customer:40-80", Some("customer:40-80")),
        ("USE `commerce`", Some("commerce")),
        ("USE `commerce@replica`", Some("commerce@replica")),
        ("USE `customer:-80`;", Some("customer:-80")),
        ("  /* c */ USE\n\tks -- trailing\n", Some("ks")),
        ("USE ks /* c */", Some("ks")),
        ("USE ks; SELECT 1", Some("ks")),
        ("USE `we``ird`", Some("we``ird")),
        ("USE", None),
        ("USE ;", None),
        ("USE ks extra", None),
        ("USE 'ks'", None),
        ("USE `unterminated", None),
        ("SELECT 1", None),
        ("USED", None),
        ("`USE` ks", None),
        ("-- USE ks", None),
        ("", None),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter(|(sql, expected)| use_target(sql) != *expected)
        .map(|(sql, expected)| format!("{sql:?}: expected {expected:?}, got {:?}", use_target(sql)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(classify("USE `commerce@replica`").kind, StatementKind::Use);
}

#[test]
fn splitting_statements() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("  ;; -- nothing\n", &[]),
        ("SELECT 1", &["SELECT 1"]),
        ("SELECT 1;", &["SELECT 1"]),
        ("SELECT 1; SELECT 2", &["SELECT 1", "SELECT 2"]),
        ("  SELECT 1 ;\n\n SELECT 2 ; ", &["SELECT 1", "SELECT 2"]),
        ("SELECT ';'; SELECT \";\"", &["SELECT ';'", "SELECT \";\""]),
        (
            "SELECT 'a\\';b'; SELECT 2",
            &["SELECT 'a\\';b'", "SELECT 2"],
        ),
        ("SELECT `x;y`; SELECT 2", &["SELECT `x;y`", "SELECT 2"]),
        (
            "SELECT 1 /* ; */; SELECT 2",
            &["SELECT 1 /* ; */", "SELECT 2"],
        ),
        ("SELECT 1 -- ;\n; SELECT 2", &["SELECT 1 -- ;", "SELECT 2"]),
        ("SELECT 1 # ;\n; SELECT 2", &["SELECT 1 # ;", "SELECT 2"]),
        ("SELECT 1; -- done", &["SELECT 1"]),
        (
            "/*!40101 SET NAMES utf8 */; SELECT 1",
            &["/*!40101 SET NAMES utf8 */", "SELECT 1"],
        ),
        (
            "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END; CALL p()",
            &[
                "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
                "CALL p()",
            ],
        ),
        (
            "BEGIN NOT ATOMIC DECLARE x INT; SET x = 1; END;\nSELECT 1",
            &["BEGIN NOT ATOMIC DECLARE x INT; SET x = 1; END", "SELECT 1"],
        ),
        ("BEGIN; COMMIT", &["BEGIN", "COMMIT"]),
    ];
    for (sql, expected) in cases {
        assert_eq!(&split_statements(sql), expected, "splitting {sql:?}");
    }
}

#[test]
fn last_insert_id_rewrites() {
    let cases: &[(&str, Option<&str>)] = &[
        ("SELECT 1", None),
        ("SELECT 'LAST_INSERT_ID()'", None),
        ("SELECT `LAST_INSERT_ID`()", None),
        ("SELECT 1 /* LAST_INSERT_ID() */", None),
        ("SELECT 1 -- LAST_INSERT_ID()", None),
        ("SELECT LAST_INSERT_ID(5)", None),
        ("SELECT LAST_INSERT_ID", None),
        ("SELECT db.LAST_INSERT_ID()", None),
        ("SET @@last_insert_id = 9", None),
        ("SET @@identity := 9", None),
        // A whole select-list item keeps its column name through an alias.
        (
            "SELECT LAST_INSERT_ID()",
            Some("SELECT 42 AS `LAST_INSERT_ID()`"),
        ),
        (
            "select last_insert_id ( );",
            Some("select 42 AS `last_insert_id ( )`;"),
        ),
        (
            "SELECT a, LAST_INSERT_ID() FROM t",
            Some("SELECT a, 42 AS `LAST_INSERT_ID()` FROM t"),
        ),
        (
            "SELECT DISTINCT LAST_INSERT_ID()",
            Some("SELECT DISTINCT 42 AS `LAST_INSERT_ID()`"),
        ),
        (
            "(SELECT LAST_INSERT_ID())",
            Some("(SELECT 42 AS `LAST_INSERT_ID()`)"),
        ),
        ("SELECT @@identity", Some("SELECT 42 AS `@@identity`")),
        (
            "SELECT @@session.last_insert_id, 1",
            Some("SELECT 42 AS `@@session.last_insert_id`, 1"),
        ),
        (
            "SELECT LAST_INSERT_ID() INTO @x",
            Some("SELECT 42 AS `LAST_INSERT_ID()` INTO @x"),
        ),
        // Aliased, or perhaps aliased: plain replacement.
        ("SELECT LAST_INSERT_ID() AS id", Some("SELECT 42 AS id")),
        ("SELECT LAST_INSERT_ID() id", Some("SELECT 42 id")),
        (
            "SELECT LAST_INSERT_ID() + 1",
            Some("SELECT 42 + 1 AS `LAST_INSERT_ID() + 1`"),
        ),
        ("SELECT LAST_INSERT_ID() + a", Some("SELECT 42 + a")),
        ("SELECT LAST_INSERT_ID() 'x'", Some("SELECT 42 'x'")),
        (
            "SELECT `a``b`, LAST_INSERT_ID()",
            Some("SELECT `a``b`, 42 AS `LAST_INSERT_ID()`"),
        ),
        (
            "SELECT CONCAT('`', LAST_INSERT_ID())",
            Some("SELECT CONCAT('`', 42) AS `CONCAT('``', LAST_INSERT_ID())`"),
        ),
        (
            "SELECT LAST_INSERT_ID() + 1 AS n",
            Some("SELECT 42 + 1 AS n"),
        ),
        (
            "SELECT a, (SELECT LAST_INSERT_ID()) FROM t",
            Some(
                "SELECT a, (SELECT 42 AS `LAST_INSERT_ID()`) AS `(SELECT LAST_INSERT_ID())` FROM t",
            ),
        ),
        (
            "SELECT CONCAT('a', LAST_INSERT_ID(), 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')",
            Some(
                "SELECT CONCAT('a', 42, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')",
            ),
        ),
        ("SELECT f(LAST_INSERT_ID()", Some("SELECT f(42")),
        (
            "SELECT f(LAST_INSERT_ID(), 2)",
            Some("SELECT f(42, 2) AS `f(LAST_INSERT_ID(), 2)`"),
        ),
        (
            "SELECT * FROM t WHERE id = LAST_INSERT_ID()",
            Some("SELECT * FROM t WHERE id = 42"),
        ),
        (
            "SELECT * FROM t WHERE id IN (1, LAST_INSERT_ID())",
            Some("SELECT * FROM t WHERE id IN (1, 42)"),
        ),
        (
            "INSERT INTO c (parent) VALUES (LAST_INSERT_ID()), (LAST_INSERT_ID())",
            Some("INSERT INTO c (parent) VALUES (42), (42)"),
        ),
        (
            "UPDATE t SET a = 'LAST_INSERT_ID()' WHERE id = Last_Insert_Id( /* c */ )",
            Some("UPDATE t SET a = 'LAST_INSERT_ID()' WHERE id = 42"),
        ),
        ("SET @x = LAST_INSERT_ID()", Some("SET @x = 42")),
        (
            "SET @@last_insert_id = @@last_insert_id + 1",
            Some("SET @@last_insert_id = 42 + 1"),
        ),
        (
            "SELECT /*! LAST_INSERT_ID() */",
            Some("SELECT /*! 42 AS `LAST_INSERT_ID()` */"),
        ),
        (
            "INSERT INTO t VALUES (1); SELECT LAST_INSERT_ID(); SELECT 'x'",
            Some("INSERT INTO t VALUES (1); SELECT 42 AS `LAST_INSERT_ID()`; SELECT 'x'"),
        ),
        ("SELECT LAST_INSERT_ID(/* `tick` */)", Some("SELECT 42")),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(sql, expected)| {
            let got = rewrite_last_insert_id(sql, 42);
            (got.as_deref() != *expected)
                .then(|| format!("{sql:?}\n    expected {expected:?}\n    got      {got:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        rewrite_last_insert_id("DO LAST_INSERT_ID() + 0", u64::MAX).as_deref(),
        Some("DO 18446744073709551615 + 0")
    );
}

/// Deterministic pseudo-random generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn arbitrary_input_never_panics_and_splits_into_substrings() {
    const PIECES: &[&str] = &[
        "'",
        "\"",
        "`",
        "\\",
        "/*",
        "*/",
        "/*!",
        "/*M!",
        "/*+",
        "--",
        "-- ",
        "#",
        "\n",
        ";",
        "@",
        "@@",
        "(",
        ")",
        ".",
        ":",
        "=",
        " ",
        "SELECT",
        "SET",
        "BEGIN",
        "END",
        "IF",
        "CASE",
        "NOT",
        "ATOMIC",
        "CREATE",
        "PROCEDURE",
        "TEMPORARY",
        "LAST_INSERT_ID",
        "GET_LOCK",
        "USE",
        "x",
        "é",
        "日本",
        "1",
        "@@identity",
        "AS",
        ",",
        "FROM",
        "50708",
        "WITH",
        "FOR",
        "STATEMENT",
        "THEN",
        "ELSE",
        "LOOP",
        "DO",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = (rng.next() % 24) as usize;
        let mut sql = String::new();
        for _ in 0..len {
            sql.push_str(PIECES[(rng.next() % PIECES.len() as u64) as usize]);
        }
        let classified = classify(&sql);
        let pieces = split_statements(&sql);
        for piece in &pieces {
            assert!(!piece.is_empty(), "empty piece from {sql:?}");
            let offset = piece.as_ptr() as usize - sql.as_ptr() as usize;
            assert!(
                offset + piece.len() <= sql.len(),
                "piece outside text for {sql:?}"
            );
        }
        assert_eq!(
            classified.kind == StatementKind::Empty,
            pieces.is_empty(),
            "kind and split disagree on {sql:?}"
        );
        assert_eq!(
            classified.flags.contains(tessera_sql::Flags::MULTI),
            pieces.len() > 1,
            "MULTI and split disagree on {sql:?}"
        );
        let _ = use_target(&sql);
        if let Some(rewritten) = rewrite_last_insert_id(&sql, 7) {
            assert!(
                rewritten.contains('7'),
                "rewrite lost its value for {sql:?}"
            );
        }
    }
}
