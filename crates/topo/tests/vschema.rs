//! The typed VSchema: Vitess's tutorial VSchemas load unchanged, each rule
//! refuses with its exact message, and documents survive a round trip.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use tessera_topo::vschema::{
    ForeignKeyMode, Keyspace, RoutingRules, TableName, TableType, VINDEX_TYPES, VSchema,
    VSchemaError, parse_table_name, vindex_type,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn example(name: &str) -> String {
    std::fs::read_to_string(data_dir().join(name)).unwrap()
}

/// Parses, serialises and parses again, asserting nothing changed.
fn round_trip(ks: &Keyspace) {
    let text = ks.to_json();
    let again = Keyspace::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&again, ks, "{text}");
}

fn err(json: &str) -> String {
    match Keyspace::from_json(json) {
        Ok(ks) => panic!("accepted {json} as {ks:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_vitess_example_loads_unchanged() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("vschema") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let (ks, notes) = Keyspace::check_json(&text).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert!(notes.is_empty(), "{file:?}: {notes:?}");
        // Serialising gives back the document itself, not just an equivalent.
        let original: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_value(&ks).unwrap(), original, "{file:?}");
        round_trip(&ks);
    }
}

#[test]
fn examples_read_as_vitess_means_them() {
    let customer = Keyspace::from_json(&example("vschema_customer_sharded.json")).unwrap();
    assert!(customer.sharded);
    assert_eq!(customer.vindexes["xxhash"].vindex_type, "xxhash");
    let (cv, vindex) = customer.primary_vindex("corder").unwrap();
    assert_eq!(cv.column_names(), ["customer_id"]);
    assert_eq!(vindex.vindex_type, "xxhash");
    let ai = customer.tables["corder"].auto_increment.as_ref().unwrap();
    assert_eq!(
        (ai.column.as_str(), ai.sequence.as_str()),
        ("order_id", "order_seq")
    );

    let seq = Keyspace::from_json(&example("vschema_commerce_seq.json")).unwrap();
    assert!(!seq.sharded);
    assert_eq!(seq.tables["customer_seq"].table_type, TableType::Sequence);
    assert_eq!(seq.tables["product"].table_type, TableType::Normal);

    // The sharded keyspace's sequences live in commerce: resolvable only together.
    let mut cluster = VSchema::default();
    cluster.keyspaces.insert("customer".into(), customer);
    let alone = cluster.validate().unwrap_err().to_string();
    assert_eq!(
        alone,
        "keyspace \"customer\": table \"corder\": auto_increment sequence \"order_seq\" is not a table of the VSchema"
    );
    cluster.keyspaces.insert("commerce".into(), seq);
    cluster.validate().unwrap();
    assert_eq!(
        cluster.find_sequence("customer_seq").unwrap(),
        TableName {
            keyspace: Some("commerce".into()),
            table: "customer_seq".into()
        }
    );
    assert_eq!(
        cluster.find_sequence("commerce.product").unwrap_err(),
        "is table \"commerce.product\", which is not of type \"sequence\""
    );
}

#[test]
fn vindex_catalog_matches_vitess() {
    for name in [
        "hash",
        "xxhash",
        "binary_md5",
        "unicode_loose_md5",
        "unicode_loose_xxhash",
        "numeric",
        "numeric_static_map",
        "binary",
        "null",
        "reverse_bits",
        "region_json",
        "region_experimental",
        "cfc",
        "multicol",
        "lookup",
        "lookup_unique",
        "lookup_hash",
        "lookup_hash_unique",
        "consistent_lookup",
        "consistent_lookup_unique",
    ] {
        assert!(vindex_type(name).is_some(), "{name}");
    }
    let non_unique: Vec<&str> = VINDEX_TYPES
        .iter()
        .filter(|t| !t.unique)
        .map(|t| t.name)
        .collect();
    assert_eq!(
        non_unique,
        [
            "consistent_lookup",
            "lookup",
            "lookup_hash",
            "lookup_unicodeloosemd5_hash"
        ]
    );
    assert!(vindex_type("hash").unwrap().tessera_implements);
    assert!(!vindex_type("region_json").unwrap().tessera_implements);
    let mut sorted: Vec<&str> = VINDEX_TYPES.iter().map(|t| t.name).collect();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        VINDEX_TYPES.iter().map(|t| t.name).collect::<Vec<_>>()
    );
}

/// A sharded keyspace using most of the format, as Vitess's guides write it.
const RICH: &str = r#"{
  "sharded": true,
  "vindexes": {
    "hash": {"type": "hash"},
    "corder_keyspace_idx": {
      "type": "consistent_lookup_unique",
      "params": {"table": "product.corder_keyspace_idx", "from": "corder_id", "to": "keyspace_id"},
      "owner": "corder"
    },
    "name_idx": {
      "type": "lookup",
      "params": {"table": "name_idx", "from": "name,customer_id", "to": "keyspace_id", "autocommit": true, "batch_lookup": 1}
    },
    "region": {"type": "region_json", "params": {"region_map": "/etc/regions.json", "region_bytes": 1}}
  },
  "tables": {
    "customer": {
      "column_vindexes": [
        {"column": "customer_id", "name": "hash"},
        {"columns": ["name", "customer_id"], "name": "name_idx"}
      ],
      "auto_increment": {"column": "customer_id", "sequence": "product.customer_seq"},
      "columns": [
        {"name": "name", "type": "VARCHAR", "collation_name": "utf8mb4_general_ci", "size": 64},
        {"name": "kind", "type": "ENUM", "values": ["a", "b"], "nullable": true}
      ],
      "column_list_authoritative": true
    },
    "corder": {
      "column_vindexes": [
        {"column": "customer_id", "name": "hash"},
        {"column": "corder_id", "name": "corder_keyspace_idx"}
      ]
    },
    "countries": {"type": "reference", "source": "product.countries"},
    "pinned_seq": {"type": "sequence", "pinned": "80"},
    "pinned_table": {"pinned": "00ff"}
  },
  "require_explicit_routing": true,
  "foreign_key_mode": "managed",
  "multi_tenant_spec": {"tenant_id_column_name": "tenant_id", "tenant_id_column_type": "INT64"}
}"#;

#[test]
fn rich_vschema_parses_and_round_trips() {
    let (ks, notes) = Keyspace::check_json(RICH).unwrap();
    // Vitess params are strings; numbers and booleans arrive as their text.
    assert_eq!(ks.vindexes["name_idx"].params["autocommit"], "true");
    assert_eq!(ks.vindexes["name_idx"].params["batch_lookup"], "1");
    assert_eq!(ks.vindexes["region"].params["region_bytes"], "1");
    assert_eq!(
        ks.tables["customer"].column_vindexes[1].column_names(),
        ["name", "customer_id"]
    );
    assert_eq!(ks.tables["countries"].table_type, TableType::Reference);
    assert_eq!(ks.foreign_key_mode, Some(ForeignKeyMode::Managed));
    assert_eq!(ks.tables["customer"].columns[1].values, ["a", "b"]);
    assert_eq!(ks.tables["customer"].columns[1].nullable, Some(true));
    assert!(ks.require_explicit_routing);
    assert_eq!(
        notes,
        [
            "vindex \"region\": Tessera does not implement type \"region_json\" yet; tables using it cannot be routed"
        ]
    );
    round_trip(&ks);
    // Serialised params are strings, as Vitess stores them.
    let value = serde_json::to_value(&ks).unwrap();
    assert_eq!(value["vindexes"]["region"]["params"]["region_bytes"], "1");
}

#[test]
fn lenient_where_vitess_is() {
    // Protobuf JSON spellings and nulls mean the defaults.
    let ks = Keyspace::from_json(
        r#"{"sharded": true, "requireExplicitRouting": true, "foreignKeyMode": 2,
            "vindexes": {"h": {"type": "hash", "params": null, "owner": null}},
            "tables": {"t": {"columnVindexes": [{"column": "id", "name": "h"}],
                             "autoIncrement": {"column": "id", "sequence": "`my.ks`.`t_seq`"},
                             "columns": null, "type": null}}}"#,
    )
    .unwrap();
    assert!(ks.require_explicit_routing);
    assert_eq!(ks.foreign_key_mode, Some(ForeignKeyMode::Unmanaged));
    assert_eq!(ks.tables["t"].column_vindexes[0].name, "h");
    round_trip(&ks);

    // Vitess accepts vindexes in an unsharded keyspace (usable as vindex
    // functions); column vindexes there route nothing, which is noted.
    let (ks, notes) = Keyspace::check_json(
        r#"{"vindexes": {"h": {"type": "hash", "owner": "t"}},
            "tables": {"t": {"column_vindexes": [{"column": "id", "name": "h"}], "colum_list": 1}},
            "sharding": true}"#,
    )
    .unwrap();
    assert!(!ks.sharded);
    assert_eq!(
        notes,
        [
            "unknown field \"sharding\" is ignored (known: sharded, vindexes, tables, require_explicit_routing, requireExplicitRouting, foreign_key_mode, foreignKeyMode, multi_tenant_spec, multiTenantSpec)",
            "unknown field \"colum_list\" in table \"t\" is ignored (known: type, column_vindexes, columnVindexes, auto_increment, autoIncrement, columns, pinned, column_list_authoritative, columnListAuthoritative, source)",
            "vindex \"h\": \"owner\" has no effect on a hash vindex (only lookup vindexes have owners)",
            "table \"t\": \"column_vindexes\" do not route anything in an unsharded keyspace",
        ]
    );

    // A pinned table needs no vindex, and a pinned sequence may live sharded.
    Keyspace::from_json(
        r#"{"sharded": true, "tables": {"s": {"type": "sequence", "pinned": "80"}, "p": {"pinned": "01"}}}"#,
    )
    .unwrap();
    Keyspace::from_json("{}").unwrap();
}

#[test]
fn syntax_and_shape_errors_name_the_field() {
    assert_eq!(
        err(""),
        "vschema is empty: expected a JSON object such as {\"sharded\": false}"
    );
    assert_eq!(
        err(r#"{"sharded": true,"#),
        "vschema is not valid JSON: EOF while parsing a value at line 1 column 17"
    );
    assert_eq!(err("[1]"), "vschema must be a JSON object, found an array");
    assert_eq!(
        err(r#"{"sharded": "yes"}"#),
        "vschema field sharded: must be true or false, found a string \"yes\" at line 1 column 18"
    );
    assert_eq!(
        err(r#"{"tables": {"t": 1}}"#),
        "vschema field tables.t: invalid type: integer `1`, expected an object (use {} for a plain table) at line 1 column 18"
    );
    assert_eq!(
        err(r#"{"tables": {"t": {"type": "view"}}}"#),
        "vschema field tables.t.type: unknown table type \"view\" (expected \"sequence\", \"reference\" or none) at line 1 column 33"
    );
    assert_eq!(
        err(r#"{"vindexes": {"h": {"type": "hash", "params": {"a": [1]}}}}"#),
        "vschema field vindexes.h.params: param \"a\" must be a string, found an array at line 1 column 57"
    );
    assert_eq!(
        err(r#"{"tables": {"t": {"column_vindexes": [{"column": 3, "name": "h"}]}}}"#),
        "vschema field tables.t.column_vindexes[0].column: must be a string, found a number 3 at line 1 column 50"
    );
    assert_eq!(
        err(r#"{"foreign_key_mode": "strict"}"#),
        "vschema field foreign_key_mode: must be one of \"unspecified\", \"disallow\", \"unmanaged\", \"managed\", found a string \"strict\" at line 1 column 30"
    );
}

/// A sharded keyspace with one table `t` whose column vindexes and the
/// keyspace's vindexes are as given.
fn sharded(vindexes: Value, column_vindexes: Value) -> String {
    json!({
        "sharded": true,
        "vindexes": vindexes,
        "tables": {"t": {"column_vindexes": column_vindexes}}
    })
    .to_string()
}

#[test]
fn each_rule_refuses_with_its_message() {
    let hash = json!({"h": {"type": "hash"}});
    let on_id = json!([{"column": "id", "name": "h"}]);
    let known = VINDEX_TYPES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ");

    assert_eq!(
        err(&sharded(json!({"h": {"type": "md5"}}), on_id.clone())),
        format!("vindex \"h\" has unknown type \"md5\"; known types: {known}")
    );
    assert_eq!(
        err(&sharded(json!({"h": {}}), on_id.clone())),
        format!("vindex \"h\": has no \"type\"; known types: {known}")
    );
    assert_eq!(
        err(&sharded(
            json!({"h": {"type": "lookup_unique", "params": {"table": "t_idx", "from": "id"}}}),
            on_id.clone()
        )),
        "vindex \"h\": type \"lookup_unique\" needs param \"to\""
    );
    assert_eq!(
        err(&sharded(
            json!({"h": {"type": "hash"}, "l": {"type": "lookup", "params": {"table": "x", "from": "a", "to": "k"}, "owner": "orders"}}),
            on_id.clone()
        )),
        "vindex \"l\" is owned by \"orders\", which is not a table of this keyspace's \"tables\""
    );
    assert_eq!(
        err(&sharded(
            hash.clone(),
            json!([{"column": "id", "name": "hash"}])
        )),
        "table \"t\" uses vindex \"hash\", which is not defined in \"vindexes\""
    );
    assert_eq!(
        err(&sharded(hash.clone(), json!([]))),
        "table \"t\" of a sharded keyspace needs \"column_vindexes\" (the first is its primary vindex), or type \"reference\", or \"pinned\""
    );
    assert_eq!(
        err(&sharded(
            json!({"l": {"type": "consistent_lookup", "params": {"table": "x", "from": "a", "to": "k"}}}),
            json!([{"column": "a", "name": "l"}])
        )),
        "table \"t\": primary (first) vindex \"l\" of type \"consistent_lookup\" is not unique; a row must map to exactly one keyspace id"
    );
    assert_eq!(
        err(&sharded(
            json!({"l": {"type": "lookup_unique", "params": {"table": "x", "from": "a", "to": "k"}, "owner": "t"}}),
            json!([{"column": "a", "name": "l"}])
        )),
        "table \"t\": primary (first) vindex \"l\" is owned by this table; an owned lookup is filled from the row's placement, so it cannot decide it"
    );
    assert_eq!(
        err(&sharded(
            hash.clone(),
            json!([{"column": "id", "columns": ["id"], "name": "h"}])
        )),
        "table \"t\": column_vindexes #1 (vindex \"h\") has both \"column\" and \"columns\"; use one"
    );
    assert_eq!(
        err(&sharded(hash.clone(), json!([{"name": "h"}]))),
        "table \"t\": column_vindexes #1 (vindex \"h\") needs \"column\" or \"columns\""
    );
    assert_eq!(
        err(&sharded(hash.clone(), json!([{"column": "id"}]))),
        "table \"t\": column_vindexes #1 needs a \"name\" naming a vindex"
    );
    assert_eq!(
        err(r#"{"sharded": true, "tables": {"t_seq": {"type": "sequence"}}}"#),
        "sequence table \"t_seq\" must be in an unsharded keyspace (or be \"pinned\" to one keyspace id)"
    );
    assert_eq!(
        err(r#"{"tables": {"t": {"auto_increment": {"column": "id", "sequence": "a.b.c"}}}}"#),
        "table \"t\" auto_increment sequence \"a.b.c\" is not a table name: it has more than one dot (expected \"table\" or \"keyspace.table\")"
    );
    assert_eq!(
        err(r#"{"tables": {"t": {"auto_increment": {"column": "id", "sequence": "ks."}}}}"#),
        "table \"t\" auto_increment sequence \"ks.\" is not a table name: a name part is empty (expected \"table\" or \"keyspace.table\")"
    );
    assert_eq!(
        err(r#"{"tables": {"t": {"auto_increment": {"column": "id"}}}}"#),
        "table \"t\": \"auto_increment\" needs a \"sequence\" (\"table\" or \"keyspace.table\")"
    );
    assert_eq!(
        err(r#"{"tables": {"t": {"auto_increment": {"sequence": "s"}}}}"#),
        "table \"t\": \"auto_increment\" needs a \"column\""
    );
    assert_eq!(
        err(r#"{"tables": {"t": {"columns": [{"name": "a"}, {"name": "A"}]}}}"#),
        "table \"t\": column \"A\" is listed twice in \"columns\""
    );
    assert_eq!(
        err(r#"{"tables": {"t": {"columns": [{"type": "INT64"}]}}}"#),
        "table \"t\": column #1 needs a \"name\""
    );
    assert!(
        err(r#"{"tables": {"t": {"columns": [{"name": "a", "type": "STRING"}]}}}"#).starts_with(
            "table \"t\": column \"a\" has unknown type \"STRING\"; known types: NULL_TYPE, INT8,"
        )
    );
    assert_eq!(
        err(r#"{"tables": {"t": {"pinned": "8g"}}}"#),
        "table \"t\": \"pinned\" \"8g\" is not a hex keyspace id: \"8g\" is not a hex byte"
    );
    assert_eq!(
        err(r#"{"tables": {"r": {"type": "reference", "source": "countries"}}}"#),
        "table \"r\": \"source\" \"countries\" must name its keyspace, as \"keyspace.table\""
    );
    assert_eq!(
        err(r#"{"multi_tenant_spec": {"tenant_id_column_name": "tenant"}}"#),
        format!(
            "multi_tenant_spec: \"tenant_id_column_type\" \"\" is not a column type; known types: {}",
            tessera_topo::vschema::COLUMN_TYPES.join(", ")
        )
    );
}

#[test]
fn cluster_checks_cross_keyspace_references() {
    let keyspace = |json: &str| Keyspace::from_json(json).unwrap();
    let mut cluster = VSchema {
        keyspaces: BTreeMap::from([
            (
                "main".to_string(),
                keyspace(r#"{"tables": {"t_seq": {"type": "sequence"}, "countries": {}}}"#),
            ),
            (
                "other".to_string(),
                keyspace(r#"{"tables": {"t_seq": {"type": "sequence"}}}"#),
            ),
            (
                "sharded".to_string(),
                keyspace(
                    r#"{"sharded": true, "vindexes": {"h": {"type": "hash"}}, "tables": {
                        "t": {"column_vindexes": [{"column": "id", "name": "h"}],
                              "auto_increment": {"column": "id", "sequence": "t_seq"}},
                        "countries": {"type": "reference", "source": "main.countries"}}}"#,
                ),
            ),
        ]),
        routing_rules: RoutingRules::default(),
    };
    assert_eq!(
        cluster.validate().unwrap_err().to_string(),
        "keyspace \"sharded\": table \"t\": auto_increment sequence \"t_seq\" is ambiguous: keyspaces \"main\", \"other\" all have it; write \"keyspace.table\""
    );
    // A keyspace that requires explicit routing is not searched for bare names.
    cluster
        .keyspaces
        .get_mut("other")
        .unwrap()
        .require_explicit_routing = true;
    cluster.validate().unwrap();

    let sharded = cluster.keyspaces.get_mut("sharded").unwrap();
    sharded.tables.get_mut("countries").unwrap().source = "sharded.countries".into();
    assert_eq!(
        cluster.validate().unwrap_err().to_string(),
        "keyspace \"sharded\": table \"countries\": reference \"source\" \"sharded.countries\" must be in another keyspace"
    );
    let sharded = cluster.keyspaces.get_mut("sharded").unwrap();
    sharded.tables.get_mut("countries").unwrap().source = "main.nations".into();
    assert_eq!(
        cluster.validate().unwrap_err().to_string(),
        "keyspace \"sharded\": table \"countries\": reference \"source\" \"main.nations\" is not a table of the VSchema"
    );
    let sharded = cluster.keyspaces.get_mut("sharded").unwrap();
    sharded.tables.get_mut("countries").unwrap().source = "main.countries".into();

    cluster.routing_rules =
        RoutingRules::from_json(r#"{"rules": [{"from_table": "t", "to_tables": ["sharded.u"]}]}"#)
            .unwrap();
    assert_eq!(
        cluster.validate().unwrap_err().to_string(),
        "routing rule for \"t\": target \"sharded.u\" is not a table of sharded keyspace \"sharded\""
    );
    // Unsharded keyspaces serve tables their VSchema does not list.
    cluster.routing_rules = RoutingRules::from_json(
        r#"{"rules": [{"from_table": "t@replica", "to_tables": ["main.anything"]},
                      {"from_table": "main.t", "to_tables": ["sharded.t"]},
                      {"fromTable": "blocked", "toTables": []}]}"#,
    )
    .unwrap();
    cluster.validate().unwrap();
    cluster.routing_rules.rules[0].to_tables = vec!["nowhere.t".into()];
    assert_eq!(
        cluster.validate().unwrap_err().to_string(),
        "routing rule for \"t@replica\": target \"nowhere.t\" is in keyspace \"nowhere\", which has no VSchema"
    );

    // The whole-cluster document round-trips too.
    let text = serde_json::to_string(&cluster).unwrap();
    let again: VSchema = serde_json::from_str(&text).unwrap();
    assert_eq!(again, cluster);
}

#[test]
fn routing_rules_refuse_with_their_messages() {
    let rule_err = |json: &str| RoutingRules::from_json(json).unwrap_err().to_string();
    assert_eq!(
        rule_err(r#"{"rules": [{"from_table": "t", "to_tables": ["a.t", "b.t"]}]}"#),
        "routing rule for \"t\": it has 2 targets; a table routes to one"
    );
    assert_eq!(
        rule_err(r#"{"rules": [{"from_table": "t", "to_tables": ["t2"]}]}"#),
        "routing rule for \"t\": target \"t2\" must name its keyspace, as \"keyspace.table\""
    );
    assert_eq!(
        rule_err(
            r#"{"rules": [{"from_table": "t", "to_tables": ["a.t"]}, {"from_table": "t", "to_tables": ["b.t"]}]}"#
        ),
        "routing rule for \"t\": there is more than one rule for this table"
    );
    assert_eq!(
        rule_err(r#"{"rules": [{"from_table": "t@master", "to_tables": ["a.t"]}]}"#),
        "routing rule for \"t@master\": the tablet type after @ must be primary, replica or rdonly"
    );
    assert_eq!(
        rule_err(r#"{"rules": [{"from_table": "", "to_tables": ["a.t"]}]}"#),
        "routing rule for \"\": \"from_table\" is not a table name: it is empty"
    );
    assert_eq!(
        rule_err(r#"{"rules": {"t": "a.t"}}"#),
        "vschema field rules: invalid type: map, expected a sequence at line 1 column 10"
    );
    let rules = RoutingRules::from_json(
        r#"{"rules": [{"from_table": "customer", "to_tables": ["commerce.customer"]}]}"#,
    )
    .unwrap();
    let again = RoutingRules::from_json(&serde_json::to_string(&rules).unwrap()).unwrap();
    assert_eq!(again, rules);
    assert_eq!(rules.rules[0].to_tables, ["commerce.customer"]);
}

#[test]
fn table_names_parse_like_vitess() {
    let name = |ks: Option<&str>, t: &str| TableName {
        keyspace: ks.map(str::to_string),
        table: t.to_string(),
    };
    assert_eq!(parse_table_name("t").unwrap(), name(None, "t"));
    assert_eq!(parse_table_name("ks.t").unwrap(), name(Some("ks"), "t"));
    assert_eq!(
        parse_table_name("`a.b`.`t`").unwrap(),
        name(Some("a.b"), "t")
    );
    assert_eq!(parse_table_name("`a.b`.`t`").unwrap().to_string(), "a.b.t");
    assert_eq!(parse_table_name("").unwrap_err(), "it is empty");
    assert_eq!(
        parse_table_name("`t").unwrap_err(),
        "a backtick is not closed"
    );
    assert_eq!(
        parse_table_name("k s.t").unwrap_err(),
        "' ' is not allowed outside backticks"
    );
    assert_eq!(
        parse_table_name("`ks`x").unwrap_err(),
        "unexpected \"x\" after a quoted name"
    );
}

#[test]
fn error_values_are_typed() {
    let e = Keyspace::from_json(&sharded(json!({"h": {"type": "hash"}}), json!([]))).unwrap_err();
    assert_eq!(e, VSchemaError::MissingPrimaryVindex { table: "t".into() });
    assert!(matches!(
        Keyspace::from_json("[]").unwrap_err(),
        VSchemaError::NotAnObject(_)
    ));
}
