//! Checks a VSchema (Vitess's JSON format) before it is stored, so a mistake
//! is reported to whoever applied it, naming the vindex, table or field,
//! instead of surfacing later as a gate that cannot route. The rules live in
//! `tessera_topo::vschema`, shared with the gate; this is ctld's door to them.

use serde_json::Value;
use tessera_topo::vschema::Keyspace;
use tracing::warn;

/// Parses and checks `json` as one keyspace's VSchema; returns the parsed
/// document or a message naming the problem and where it is. Accepted things
/// that have no effect (unknown fields, vindex types Tessera cannot compute
/// yet) are logged as warnings.
pub fn validate_vschema(json: &str) -> Result<Value, String> {
    let (_, notes) = Keyspace::check_json(json).map_err(|e| e.to_string())?;
    for note in notes {
        warn!("vschema: {note}");
    }
    serde_json::from_str(json).map_err(|e| format!("vschema is not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "sharded": true,
        "vindexes": {
            "hash": {"type": "hash"},
            "corder_keyspace_idx": {
                "type": "consistent_lookup_unique",
                "params": {"table": "corder_keyspace_idx", "from": "corder_id", "to": "keyspace_id"},
                "owner": "corder"
            }
        },
        "tables": {
            "customer": {
                "column_vindexes": [{"column": "customer_id", "name": "hash"}],
                "auto_increment": {"column": "customer_id", "sequence": "customer_seq"}
            },
            "corder": {
                "column_vindexes": [
                    {"column": "customer_id", "name": "hash"},
                    {"columns": ["corder_id"], "name": "corder_keyspace_idx"}
                ],
                "columns": [{"name": "sku", "type": "VARBINARY"}]
            },
            "countries": {"type": "reference"}
        }
    }"#;

    fn err(json: &str) -> String {
        validate_vschema(json).expect_err(json)
    }

    #[test]
    fn accepts_vitess_examples() {
        let doc = validate_vschema(GOOD).unwrap();
        assert_eq!(doc["tables"]["countries"]["type"], "reference");
        assert!(validate_vschema(r#"{"sharded": false}"#).is_ok());
        assert!(
            validate_vschema(
                r#"{"tables": {"product": {}, "customer_seq": {"type": "sequence"}}}"#
            )
            .is_ok()
        );
        assert!(validate_vschema("{}").is_ok());
        assert!(validate_vschema(r#"{"require_explicit_routing": true}"#).is_ok());
    }

    #[test]
    fn names_syntax_errors() {
        let e = err(r#"{"sharded": true,"#);
        assert!(e.starts_with("vschema is not valid JSON"), "{e}");
        assert!(e.contains("line 1"), "{e}");
        assert!(err("").contains("empty"));
        assert!(err("[1]").contains("must be a JSON object, found an array"));
    }

    #[test]
    fn names_shape_errors() {
        assert_eq!(
            err(r#"{"sharded": "yes"}"#),
            "vschema field sharded: must be true or false, found a string \"yes\" at line 1 column 18"
        );
        assert!(err(r#"{"tables": []}"#).starts_with("vschema field tables: invalid type"));
        assert!(err(r#"{"vindexes": 3}"#).starts_with("vschema field vindexes: invalid type"));
        assert!(err(r#"{"vindexes": {"h": {}}}"#).starts_with("vindex \"h\": has no \"type\""));
        assert!(
            err(r#"{"vindexes": {"h": {"type": "hash", "params": {"a": {}}}}}"#)
                .contains("param \"a\" must be a string")
        );
        assert!(err(r#"{"tables": {"t": 1}}"#).starts_with("vschema field tables.t: invalid type"));
        assert!(
            err(r#"{"tables": {"t": {"type": "view"}}}"#).contains("unknown table type \"view\"")
        );
    }

    #[test]
    fn names_vindex_reference_errors() {
        let undeclared = r#"{"sharded": true, "tables": {"t": {"column_vindexes": [{"column": "id", "name": "hash"}]}}}"#;
        assert_eq!(
            err(undeclared),
            "table \"t\" uses vindex \"hash\", which is not defined in \"vindexes\""
        );
        let no_column = r#"{"sharded": true, "vindexes": {"hash": {"type": "hash"}},
            "tables": {"t": {"column_vindexes": [{"name": "hash"}]}}}"#;
        assert!(err(no_column).contains("needs \"column\" or \"columns\""));
        let no_vindex = r#"{"sharded": true, "tables": {"t": {}}}"#;
        assert!(
            err(no_vindex).contains("table \"t\" of a sharded keyspace needs \"column_vindexes\"")
        );
        let bad_ai = r#"{"tables": {"t": {"auto_increment": {"column": "id"}}}}"#;
        assert!(err(bad_ai).contains("\"auto_increment\" needs a \"sequence\""));
        let unknown_type = r#"{"vindexes": {"h": {"type": "md6"}}}"#;
        assert!(
            err(unknown_type)
                .starts_with("vindex \"h\" has unknown type \"md6\"; known types: binary,")
        );
        let not_unique = r#"{"sharded": true, "vindexes": {"l": {"type": "lookup", "params": {"table": "x", "from": "a", "to": "k"}}},
            "tables": {"t": {"column_vindexes": [{"column": "a", "name": "l"}]}}}"#;
        assert!(
            err(not_unique)
                .contains("primary (first) vindex \"l\" of type \"lookup\" is not unique")
        );
    }
}
