//! Which SET statements a sharded session can carry to every shard: those
//! that give each backend connection the same state when run there again
//! (see `Session::sharded_session_set`).

/// Functions whose value differs from one server or moment to the next.
const VARYING: [&str; 14] = [
    "rand(",
    "uuid",
    "now(",
    "sysdate(",
    "curdate(",
    "curtime(",
    "current_time",
    "current_date",
    "unix_timestamp(",
    "utc_",
    "connection_id(",
    "last_insert_id(",
    "row_count(",
    "found_rows(",
];

/// Why `text` (a SET statement) cannot be run again on each shard's
/// connection, or None when it can.
pub(super) fn not_replayable(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let body = lower
        .trim()
        .strip_prefix("set")
        .unwrap_or(&lower)
        .trim_start();
    if body.starts_with("global ") || body.contains("@@global.") || body.starts_with("persist") {
        return Some("SET GLOBAL through the gate".to_string());
    }
    if body.starts_with("transaction") {
        return Some(
            "SET TRANSACTION without SESSION (it applies to the next transaction only)".to_string(),
        );
    }
    if body
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w == "select")
    {
        return Some("SET with a subquery".to_string());
    }
    if VARYING.iter().any(|f| body.contains(f)) {
        return Some("SET with a value that differs from server to server".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_mean_the_same_everywhere_are_carried() {
        for sql in [
            "SET @x = 5",
            "SET @a := 'text', @b = NULL",
            "SET SESSION sql_mode = 'STRICT_ALL_TABLES'",
            "SET @@SESSION.sql_mode = CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'), @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483",
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "set time_zone = '+00:00'",
            "SET div_precision_increment = 8",
        ] {
            assert_eq!(not_replayable(sql), None, "{sql}");
        }
        for sql in [
            "SET GLOBAL max_connections = 10",
            "SET @@global.sql_mode = ''",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET @n = (SELECT COUNT(*) FROM customer)",
            "SET @r = RAND()",
            "SET @t = NOW()",
            "SET @id = LAST_INSERT_ID()",
        ] {
            assert!(not_replayable(sql).is_some(), "{sql}");
        }
    }
}
