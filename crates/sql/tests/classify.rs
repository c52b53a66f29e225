//! Table-driven tests of the statement classifier's kinds and flags.

use tessera_sql::{Flags, StatementKind, classify};

use StatementKind::*;

const NONE: Flags = Flags::empty();
const UV: Flags = Flags::USER_VARIABLES;
const SET: Flags = Flags::SESSION_SET;
const TEMP: Flags = Flags::TEMPORARY_TABLE;
const GL: Flags = Flags::GET_LOCK;
const LT: Flags = Flags::LOCK_TABLES;
const PREP: Flags = Flags::SQL_PREPARE;
const FR: Flags = Flags::FOUND_ROWS;
const LID: Flags = Flags::LAST_INSERT_ID;
const STATE: Flags = Flags::SESSION_STATE;
const MULTI: Flags = Flags::MULTI;

fn check(cases: &[(&str, StatementKind, Flags)]) {
    let mut failures = Vec::new();
    for &(sql, kind, flags) in cases {
        let got = classify(sql);
        if got.kind != kind || got.flags != flags {
            failures.push(format!(
                "{sql:?}\n    expected {kind:?} {flags:?}\n    got      {:?} {:?}",
                got.kind, got.flags
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn statement_kinds() {
    check(&[
        ("", Empty, NONE),
        ("   \n\t ", Empty, NONE),
        (
            "-- only a comment\n/* and another */ # and a third",
            Empty,
            NONE,
        ),
        (";;", Empty, NONE),
        ("SELECT 1", Select, NONE),
        ("select * from t where a = 'x'", Select, NONE),
        ("WITH c AS (SELECT 1) SELECT * FROM c", Select, NONE),
        (
            "WITH RECURSIVE c (n) AS (SELECT 1 UNION SELECT n+1 FROM c) SELECT n FROM c",
            Select,
            NONE,
        ),
        (
            "WITH c AS (SELECT id FROM t) DELETE FROM t WHERE id IN (SELECT id FROM c)",
            Delete,
            NONE,
        ),
        ("WITH c AS (SELECT 1) UPDATE t SET a = 1", Update, NONE),
        ("VALUES (1, 2), (3, 4)", Select, NONE),
        ("INSERT INTO t VALUES (1)", Insert, NONE),
        ("insert ignore into t select * from u", Insert, NONE),
        ("REPLACE INTO t VALUES (1)", Replace, NONE),
        ("UPDATE t SET a = 1", Update, NONE),
        ("DELETE FROM t", Delete, NONE),
        ("BEGIN", Begin, NONE),
        ("begin work", Begin, NONE),
        ("START TRANSACTION", Begin, NONE),
        ("START TRANSACTION READ ONLY", Begin, NONE),
        ("START SLAVE", Other, NONE),
        ("COMMIT", Commit, NONE),
        ("COMMIT WORK AND NO CHAIN", Commit, NONE),
        ("ROLLBACK", Rollback, NONE),
        ("ROLLBACK WORK", Rollback, NONE),
        ("ROLLBACK TO SAVEPOINT sp1", Savepoint, NONE),
        ("ROLLBACK WORK TO sp1", Savepoint, NONE),
        ("SAVEPOINT sp1", Savepoint, NONE),
        ("RELEASE SAVEPOINT sp1", Savepoint, NONE),
        ("USE commerce", Use, NONE),
        ("use `commerce@replica`", Use, NONE),
        ("SHOW DATABASES", ShowDatabases, NONE),
        ("show schemas;", ShowDatabases, NONE),
        ("SHOW DATABASES LIKE 'c%'", Show, NONE),
        ("SHOW SCHEMAS WHERE `Database` = 'x'", Show, NONE),
        ("SHOW TABLES", Show, NONE),
        ("SHOW CREATE TABLE t", Show, NONE),
        ("DESCRIBE t", Describe, NONE),
        ("desc t", Describe, NONE),
        ("EXPLAIN SELECT * FROM t", Explain, NONE),
        ("CREATE TABLE t (id INT PRIMARY KEY)", Ddl, NONE),
        ("ALTER TABLE t ADD COLUMN c INT", Ddl, NONE),
        ("DROP TABLE IF EXISTS t", Ddl, NONE),
        ("TRUNCATE TABLE t", Ddl, NONE),
        ("RENAME TABLE a TO b", Ddl, NONE),
        ("CREATE OR REPLACE VIEW v AS SELECT 1", Ddl, NONE),
        ("CALL p(1, 2)", Call, NONE),
        ("DO 1", Other, NONE),
        ("KILL 42", Other, NONE),
        ("GRANT SELECT ON db.* TO 'u'@'%'", Other, NONE),
        ("ANALYZE TABLE t", Other, NONE),
        ("FLUSH PRIVILEGES", Other, NONE),
        ("42", Other, NONE),
        ("'just a string'", Other, NONE),
    ]);
}

#[test]
fn session_flags() {
    check(&[
        ("SET @x = 1", Set, SET.union(UV)),
        ("SET NAMES utf8mb4", Set, SET),
        ("SET autocommit = 0", Set, SET),
        ("SET @@session.sql_mode = ''", Set, SET),
        ("SET SESSION wait_timeout = 10", Set, SET),
        ("SET GLOBAL max_connections = 10", Set, SET),
        (
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            Set,
            SET.union(STATE),
        ),
        ("SET SESSION TRANSACTION READ ONLY", Set, SET.union(STATE)),
        ("SET", Set, SET),
        // SET STATEMENT's settings last only for the inner statement.
        (
            "SET STATEMENT max_statement_time = 1 FOR SELECT * FROM t",
            Select,
            NONE,
        ),
        (
            "SET STATEMENT sort_buffer_size = (100000) FOR UPDATE t SET a = 1",
            Update,
            NONE,
        ),
        ("SET STATEMENT x = 1", Set, SET),
        ("SELECT @x", Select, UV),
        ("SELECT @`odd name`, @'q', @\"dq\"", Select, UV),
        ("SELECT a INTO @x FROM t", Select, UV),
        ("SELECT @n := @n + 1 FROM t", Select, UV),
        ("SELECT@v", Select, UV),
        ("SELECT @@version", Select, NONE),
        (
            "SELECT @@session.autocommit, @@global.read_only",
            Select,
            NONE,
        ),
        ("CREATE TEMPORARY TABLE tmp (a INT)", Ddl, TEMP),
        ("create or replace temporary table tmp (a int)", Ddl, TEMP),
        ("DROP TEMPORARY TABLE IF EXISTS tmp", Ddl, TEMP),
        ("CREATE TABLE temporary_things (a INT)", Ddl, NONE),
        ("SELECT GET_LOCK('l', 10)", Select, GL),
        ("SELECT release_lock ('l')", Select, GL),
        ("DO RELEASE_ALL_LOCKS()", Other, GL),
        ("SELECT get_lock_count FROM t", Select, NONE),
        ("LOCK TABLES t READ", Lock, LT),
        ("LOCK TABLE t WRITE", Lock, LT),
        ("UNLOCK TABLES", Lock, LT),
        ("FLUSH TABLES WITH READ LOCK", Lock, LT),
        ("FLUSH TABLES t FOR EXPORT", Lock, LT),
        ("PREPARE s FROM 'SELECT ?'", Prepare, PREP),
        ("EXECUTE s USING @a", Prepare, PREP.union(UV)),
        ("DEALLOCATE PREPARE s", Prepare, PREP),
        ("DROP PREPARE s", Prepare, PREP),
        ("EXECUTE IMMEDIATE 'SELECT 1'", Prepare, PREP),
        ("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", Select, FR),
        ("SELECT FOUND_ROWS()", Select, FR),
        ("SELECT LAST_INSERT_ID()", Select, LID),
        ("select last_insert_id ( )", Select, LID),
        ("SELECT LAST_INSERT_ID(/* nothing */)", Select, LID),
        ("INSERT INTO t VALUES (LAST_INSERT_ID())", Insert, LID),
        ("UPDATE t SET id = LAST_INSERT_ID(id + 1)", Update, STATE),
        ("SELECT @@identity", Select, LID),
        ("SELECT @@session.last_insert_id", Select, LID),
        ("SET @@last_insert_id = 5", Set, SET.union(STATE)),
        ("SELECT t.last_insert_id FROM t", Select, NONE),
        ("SELECT ROW_COUNT()", Select, STATE),
        ("SELECT LASTVAL(seq)", Select, STATE),
        ("XA START 'x'", Other, STATE),
        ("HANDLER t OPEN", Other, STATE),
        ("BACKUP STAGE START", Other, STATE),
    ]);
}

#[test]
fn strings_and_comments_hide_keywords() {
    check(&[
        ("SELECT 'it''s @x'", Select, NONE),
        ("SELECT \"\\\"@x\"", Select, NONE),
        ("SELECT 'a\\'@x'", Select, NONE),
        ("SELECT 'GET_LOCK(1)', \"LAST_INSERT_ID()\"", Select, NONE),
        ("SELECT `@x`, `GET_LOCK`(1)", Select, NONE),
        ("SELECT 1 -- @x\n", Select, NONE),
        ("SELECT 1 # SQL_CALC_FOUND_ROWS", Select, NONE),
        ("SELECT /* @x ; SELECT 2 */ 1", Select, NONE),
        ("SELECT /*+ MAX_EXECUTION_TIME(1) @x */ 1", Select, NONE),
        ("SELECT 1 --@x", Select, UV),
        ("/* SET @x = 1 */ SELECT 1", Select, NONE),
        ("-- DELETE\nSELECT 1", Select, NONE),
        ("# BEGIN\r\nCOMMIT", Commit, NONE),
        ("`select` ", Other, NONE),
        ("SELECT 1 FROM `lock`", Select, NONE),
        (
            "CREATE USER 'bob'@'localhost' IDENTIFIED BY 'pw'",
            Ddl,
            NONE,
        ),
        (
            "CREATE DEFINER=`root`@`localhost` VIEW v AS SELECT 1",
            Ddl,
            NONE,
        ),
        ("GRANT ALL ON *.* TO bob@localhost", Other, NONE),
    ]);
}

#[test]
fn executable_comments_reveal_code() {
    check(&[
        ("/*!40101 SET NAMES utf8 */", Set, SET),
        (
            "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */;",
            Set,
            SET.union(UV),
        ),
        (
            "SELECT /*!50708 SQL_CALC_FOUND_ROWS */ * FROM t",
            Select,
            FR,
        ),
        ("/*M!100101 SET @x = 1 */", Set, SET.union(UV)),
        ("SELECT /*! GET_LOCK */ ('x', 1)", Select, GL),
        ("/*!40000 ALTER TABLE t DISABLE KEYS */", Ddl, NONE),
        ("/*!*/ SELECT 1", Select, NONE),
    ]);
}

#[test]
fn case_whitespace_and_parentheses() {
    check(&[
        ("SeLeCt 1", Select, NONE),
        ("\n\t  select 1", Select, NONE),
        ("(SELECT 1) UNION (SELECT 2)", Select, NONE),
        ("((select 1))", Select, NONE),
        ("  /* c */ ( /* d */ SELECT @x)", Select, UV),
        ("UpDaTe t SeT a = @B", Update, UV),
        ("sTaRt TrAnSaCtIoN", Begin, NONE),
    ]);
}

#[test]
fn multiple_statements() {
    check(&[
        ("SELECT 1; SELECT 2", Select, MULTI),
        ("SELECT 1;", Select, NONE),
        ("SELECT 1; -- trailing comment", Select, NONE),
        ("SELECT 1; /* trailing */ ; ;", Select, NONE),
        ("SELECT 1;\n", Select, NONE),
        (
            "INSERT INTO t VALUES (1); SELECT LAST_INSERT_ID()",
            Insert,
            MULTI.union(LID),
        ),
        ("SELECT 1; SET @x = 2", Select, MULTI.union(SET).union(UV)),
        ("SELECT ';'; SELECT 2", Select, MULTI),
        ("SELECT ';'", Select, NONE),
        ("SELECT `a;b` FROM t", Select, NONE),
        ("SELECT 1 /* ; SELECT 2 */", Select, NONE),
        (";SELECT 1", Select, NONE),
        ("BEGIN; UPDATE t SET a = 1; COMMIT", Begin, MULTI),
        (
            "CREATE TEMPORARY TABLE x (a INT); LOCK TABLES t READ",
            Ddl,
            MULTI.union(TEMP).union(LT),
        ),
    ]);
}

#[test]
fn stored_program_bodies_are_one_statement() {
    check(&[
        (
            "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
            Ddl,
            NONE,
        ),
        (
            "CREATE PROCEDURE p() BEGIN SELECT 1; END; SELECT 2",
            Ddl,
            MULTI,
        ),
        (
            "CREATE DEFINER=`root`@`%` PROCEDURE p(IN a INT)\nBEGIN\n  DECLARE done INT DEFAULT 0;\n  \
             IF a > 0 THEN SET done = 1; ELSEIF a < 0 THEN SET done = 2; ELSE SET done = 3; END IF;\n  \
             WHILE done < 10 DO SET done = done + 1; END WHILE;\n  \
             lbl: LOOP LEAVE lbl; END LOOP lbl;\n  \
             REPEAT SET done = done - 1; UNTIL done = 0 END REPEAT;\n  \
             CASE a WHEN 1 THEN SELECT 1; ELSE SELECT 2; END CASE;\n  \
             SELECT CASE WHEN a THEN IF(a, 1, 2) ELSE REPEAT('x', 2) END;\n\
             END",
            Ddl,
            NONE,
        ),
        (
            "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; SET NEW.b = 2; END",
            Ddl,
            NONE,
        ),
        (
            "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW IF NEW.a IS NULL THEN SET NEW.a = 1; END IF",
            Ddl,
            NONE,
        ),
        (
            "CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC BEGIN DECLARE y INT; SET y = x * 2; RETURN y; END",
            Ddl,
            NONE,
        ),
        (
            "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO BEGIN DELETE FROM t; DELETE FROM u; END",
            Ddl,
            NONE,
        ),
        ("BEGIN NOT ATOMIC SELECT 1; SELECT 2; END", Other, NONE),
        ("IF 1 THEN SELECT 1; ELSE SELECT 2; END IF", Other, NONE),
        ("IF 1 THEN SELECT 1; END IF; SELECT 3", Other, MULTI),
        ("FOR i IN 1..3 DO SELECT i; END FOR", Other, NONE),
        // A plain CREATE TABLE with columns named begin/end still splits.
        ("CREATE TABLE t (begin INT, end INT); SELECT 1", Ddl, MULTI),
        ("SELECT t.begin FROM t; SELECT 2", Select, MULTI),
    ]);
}

#[test]
fn kind_reports_first_statement_and_flags_union() {
    let result = classify("SELECT 1; CREATE TEMPORARY TABLE t (a INT); SELECT GET_LOCK('x', 1)");
    assert_eq!(result.kind, Select);
    assert!(result.flags.contains(MULTI.union(TEMP).union(GL)));
    assert!(!result.flags.contains(UV));
    assert!(result.flags.intersects(UV.union(GL)));
}

#[test]
fn flags_api() {
    let mut flags = Flags::empty();
    assert!(flags.is_empty());
    flags |= UV;
    flags.insert(SET);
    assert_eq!(flags, UV | SET);
    assert!(flags.contains(UV));
    assert!(!flags.contains(UV | TEMP));
    flags.remove(UV);
    assert_eq!(flags, SET);
    assert_eq!(format!("{:?}", UV | MULTI), "Flags(USER_VARIABLES | MULTI)");
    assert_eq!(Flags::default(), NONE);
}

#[test]
fn one_megabyte_of_text_classifies_in_linear_time() {
    let mut sql = String::from("SELECT ");
    let chunk = "a, 'str''ing @x', `id`, /* c */ LAST_INSERT_ID(), (1 + 2), ";
    while sql.len() < 1 << 20 {
        sql.push_str(chunk);
    }
    sql.push('1');
    let started = std::time::Instant::now();
    let result = classify(&sql);
    let elapsed = started.elapsed();
    assert_eq!(result.kind, Select);
    assert_eq!(result.flags, LID);
    // Linear work is a few milliseconds even unoptimised on a loaded machine;
    // quadratic work over 1 MB would take minutes.
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "took {elapsed:?}"
    );

    // Many statements, and unterminated constructs, must be linear too.
    let many = "SELECT 1;".repeat(100_000);
    let result = classify(&many);
    assert_eq!((result.kind, result.flags), (Select, MULTI));
    let unterminated = format!("SELECT '{}", "\\'".repeat(500_000));
    assert_eq!(classify(&unterminated).kind, Select);
    let comments = "/* ".repeat(500_000);
    assert_eq!(classify(&comments).kind, Empty);
}
