//! Checks a VSchema (Vitess's JSON format) before it is stored, so a typo is
//! reported to whoever applied it, naming the place, instead of surfacing
//! later as a gate that cannot route. Only the shape is checked here; which
//! vindex types exist is the gate's business.

use serde_json::{Map, Value};

/// Parses and checks `json`; returns the parsed document or a message naming
/// the problem and where it is.
pub fn validate_vschema(json: &str) -> Result<Value, String> {
    if json.trim().is_empty() {
        return Err("vschema is empty: expected a JSON object such as {\"sharded\": false}".into());
    }
    let doc: Value =
        serde_json::from_str(json).map_err(|e| format!("vschema is not valid JSON: {e}"))?;
    let Value::Object(top) = &doc else {
        return Err(format!(
            "vschema must be a JSON object, found {}",
            kind_of(&doc)
        ));
    };

    let sharded = match top.get("sharded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "vschema \"sharded\" must be true or false, found {}",
                kind_of(other)
            ));
        }
    };

    let vindexes = match top.get("vindexes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "vschema \"vindexes\" must be an object of name -> vindex, found {}",
                kind_of(other)
            ));
        }
    };
    for (name, vindex) in &vindexes {
        check_vindex(name, vindex)?;
    }

    match top.get("tables") {
        None | Some(Value::Null) => {}
        Some(Value::Object(tables)) => {
            for (name, table) in tables {
                check_table(name, table, sharded, &vindexes)?;
            }
        }
        Some(other) => {
            return Err(format!(
                "vschema \"tables\" must be an object of name -> table, found {}",
                kind_of(other)
            ));
        }
    }
    Ok(doc)
}

fn check_vindex(name: &str, vindex: &Value) -> Result<(), String> {
    let Value::Object(v) = vindex else {
        return Err(format!(
            "vindex \"{name}\" must be an object such as {{\"type\": \"hash\"}}, found {}",
            kind_of(vindex)
        ));
    };
    match v.get("type") {
        Some(Value::String(t)) if !t.is_empty() => {}
        Some(Value::String(_)) | None => {
            return Err(format!("vindex \"{name}\" has no \"type\""));
        }
        Some(other) => {
            return Err(format!(
                "vindex \"{name}\" \"type\" must be a string, found {}",
                kind_of(other)
            ));
        }
    }
    match v.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(params)) => {
            for (key, value) in params {
                if !value.is_string() {
                    return Err(format!(
                        "vindex \"{name}\" param \"{key}\" must be a string, found {}",
                        kind_of(value)
                    ));
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "vindex \"{name}\" \"params\" must be an object of strings, found {}",
                kind_of(other)
            ));
        }
    }
    expect_optional_string(v, "owner", || format!("vindex \"{name}\""))
}

fn check_table(
    name: &str,
    table: &Value,
    sharded: bool,
    vindexes: &Map<String, Value>,
) -> Result<(), String> {
    let Value::Object(t) = table else {
        return Err(format!(
            "table \"{name}\" must be an object (use {{}} for a plain table), found {}",
            kind_of(table)
        ));
    };
    let table_type = match t.get("type") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(format!(
                "table \"{name}\" \"type\" must be a string, found {}",
                kind_of(other)
            ));
        }
    };
    if !matches!(table_type, "" | "sequence" | "reference") {
        return Err(format!(
            "table \"{name}\" has unknown type \"{table_type}\" (expected \"sequence\", \"reference\" or none)"
        ));
    }

    let column_vindexes = match t.get("column_vindexes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(other) => {
            return Err(format!(
                "table \"{name}\" \"column_vindexes\" must be an array, found {}",
                kind_of(other)
            ));
        }
    };
    for (i, cv) in column_vindexes.iter().enumerate() {
        check_column_vindex(name, i, cv, vindexes)?;
    }
    if sharded && table_type.is_empty() && column_vindexes.is_empty() {
        return Err(format!(
            "table \"{name}\" of a sharded keyspace needs \"column_vindexes\" (the first is its primary vindex), or type \"reference\""
        ));
    }

    match t.get("auto_increment") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ai)) => {
            for field in ["column", "sequence"] {
                match ai.get(field) {
                    Some(Value::String(s)) if !s.is_empty() => {}
                    _ => {
                        return Err(format!(
                            "table \"{name}\" \"auto_increment\" needs a string \"{field}\""
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "table \"{name}\" \"auto_increment\" must be an object with \"column\" and \"sequence\", found {}",
                kind_of(other)
            ));
        }
    }

    match t.get("columns") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(cols)) => {
            for (i, col) in cols.iter().enumerate() {
                match col.get("name") {
                    Some(Value::String(s)) if !s.is_empty() => {}
                    _ => {
                        return Err(format!(
                            "table \"{name}\" column #{} needs a string \"name\"",
                            i + 1
                        ));
                    }
                }
            }
            Ok(())
        }
        Some(other) => Err(format!(
            "table \"{name}\" \"columns\" must be an array, found {}",
            kind_of(other)
        )),
    }
}

fn check_column_vindex(
    table: &str,
    index: usize,
    cv: &Value,
    vindexes: &Map<String, Value>,
) -> Result<(), String> {
    let place = format!("table \"{table}\" column_vindexes #{}", index + 1);
    let Value::Object(cv) = cv else {
        return Err(format!(
            "{place} must be an object such as {{\"column\": \"id\", \"name\": \"hash\"}}, found {}",
            kind_of(cv)
        ));
    };
    let vindex = match cv.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(format!("{place} needs a string \"name\" naming a vindex")),
    };
    if !vindexes.contains_key(vindex) {
        return Err(format!(
            "{place} uses vindex \"{vindex}\", which is not declared in \"vindexes\""
        ));
    }
    let has_column = match cv.get("column") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if !s.is_empty() => true,
        Some(_) => return Err(format!("{place} \"column\" must be a non-empty string")),
    };
    let has_columns = match cv.get("columns") {
        None | Some(Value::Null) => false,
        Some(Value::Array(cols))
            if !cols.is_empty()
                && cols
                    .iter()
                    .all(|c| c.as_str().is_some_and(|s| !s.is_empty())) =>
        {
            true
        }
        Some(_) => {
            return Err(format!(
                "{place} \"columns\" must be a non-empty array of column names"
            ));
        }
    };
    match (has_column, has_columns) {
        (true, true) => Err(format!(
            "{place} has both \"column\" and \"columns\"; use one"
        )),
        (false, false) => Err(format!("{place} needs \"column\" or \"columns\"")),
        _ => Ok(()),
    }
}

fn expect_optional_string(
    obj: &Map<String, Value>,
    field: &str,
    place: impl Fn() -> String,
) -> Result<(), String> {
    match obj.get(field) {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(other) => Err(format!(
            "{} \"{field}\" must be a string, found {}",
            place(),
            kind_of(other)
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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
        assert!(validate_vschema(GOOD).is_ok());
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
        assert!(
            err(r#"{"sharded": "yes"}"#)
                .contains("\"sharded\" must be true or false, found a string")
        );
        assert!(err(r#"{"tables": []}"#).contains("\"tables\" must be an object"));
        assert!(err(r#"{"vindexes": 3}"#).contains("\"vindexes\" must be an object"));
        assert!(err(r#"{"vindexes": {"h": {}}}"#).contains("vindex \"h\" has no \"type\""));
        assert!(
            err(r#"{"vindexes": {"h": {"type": "hash", "params": {"a": 1}}}}"#)
                .contains("param \"a\" must be a string")
        );
        assert!(err(r#"{"tables": {"t": 1}}"#).contains("table \"t\" must be an object"));
        assert!(err(r#"{"tables": {"t": {"type": "view"}}}"#).contains("unknown type \"view\""));
    }

    #[test]
    fn names_vindex_reference_errors() {
        let undeclared = r#"{"sharded": true, "tables": {"t": {"column_vindexes": [{"column": "id", "name": "hash"}]}}}"#;
        assert!(err(undeclared).contains("uses vindex \"hash\", which is not declared"));
        let no_column = r#"{"sharded": true, "vindexes": {"hash": {"type": "hash"}},
            "tables": {"t": {"column_vindexes": [{"name": "hash"}]}}}"#;
        assert!(err(no_column).contains("needs \"column\" or \"columns\""));
        let no_vindex = r#"{"sharded": true, "tables": {"t": {}}}"#;
        assert!(
            err(no_vindex).contains("table \"t\" of a sharded keyspace needs \"column_vindexes\"")
        );
        let bad_ai = r#"{"tables": {"t": {"auto_increment": {"column": "id"}}}}"#;
        assert!(err(bad_ai).contains("needs a string \"sequence\""));
    }
}
