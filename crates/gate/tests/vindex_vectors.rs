//! Vindex functions against Vitess's published test vectors: every keyspace
//! id here is one Vitess computes, so data placed by Vitess lands on the same
//! shard through Tessera.

use std::collections::BTreeMap;

use tessera_gate::vindex::{
    KNOWN_TYPES, KeyspaceId, Vindex, VindexError, VindexValue, create_vindex, unicode_loose_key,
};

fn vindex(kind: &str) -> Box<dyn Vindex> {
    create_vindex(&format!("{kind}_vdx"), kind, &BTreeMap::new())
        .unwrap_or_else(|e| panic!("creating {kind}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The expected outcome of mapping one value.
enum Want {
    Ksid(&'static str),
    NoShard,
    Invalid,
}

fn check(kind: &str, cases: &[(VindexValue<'_>, Want)]) {
    let v = vindex(kind);
    for (value, want) in cases {
        let got = v.map(value);
        match (want, &got) {
            (Want::Ksid(hex_ksid), Ok(Some(ksid))) => assert_eq!(
                ksid.to_string(),
                *hex_ksid,
                "{kind}({value}) mapped to the wrong keyspace id"
            ),
            (Want::NoShard, Ok(None)) => {}
            (
                Want::Invalid,
                Err(VindexError::InvalidValue {
                    vindex, kind: k, ..
                }),
            ) => {
                assert_eq!(vindex, &format!("{kind}_vdx"));
                assert_eq!(k, kind);
                let message = got.as_ref().unwrap_err().to_string();
                assert!(
                    message.contains(&value.to_string()),
                    "error should quote the value: {message}"
                );
            }
            _ => panic!("{kind}({value}): unexpected {got:?}"),
        }
    }
}

use VindexValue::{Bytes, Int, Null, UInt};

#[test]
fn hash_matches_vitess() {
    check(
        "hash",
        &[
            // hash_test.go and the commerce/customer example's expected outputs.
            (Int(1), Want::Ksid("166b40b44aba4bd6")),
            (Int(2), Want::Ksid("06e7ea22ce92708f")),
            (Int(3), Want::Ksid("4eb190c9a2fa169c")),
            (Null, Want::NoShard),
            (Int(4), Want::Ksid("d2fd8867d50d2dfe")),
            (Int(5), Want::Ksid("70bb023c810ca87a")),
            (Int(6), Want::Ksid("f098480ac4c4be71")),
            // Unsigned and numeric text hash as the same integer.
            (UInt(1), Want::Ksid("166b40b44aba4bd6")),
            (Bytes(b"6"), Want::Ksid("f098480ac4c4be71")),
            (Bytes(b"+6"), Want::Ksid("f098480ac4c4be71")),
            (Bytes(b"aa"), Want::Invalid),
            (Bytes(b""), Want::Invalid),
            (Bytes(b"-13"), Want::Invalid),
            (Bytes(b"1.5"), Want::Invalid),
            (Bytes(b"18446744073709551616"), Want::Invalid),
            (Bytes(b"\xff\xfe"), Want::Invalid),
        ],
    );
    // A negative signed id hashes as its two's-complement bits.
    let v = vindex("hash");
    assert_eq!(v.map(&Int(-1)).unwrap(), v.map(&UInt(u64::MAX)).unwrap());
    assert_ne!(v.map(&Int(-1)).unwrap(), v.map(&Int(1)).unwrap());
}

#[test]
fn xxhash_matches_vitess() {
    check(
        "xxhash",
        &[
            (Bytes(b"test1"), Want::Ksid("d01ab7e4d6978f0b")),
            (Bytes(b"test2"), Want::Ksid("87eb11714c0a0e89")),
            (
                Bytes(b"testaverylongvaluetomakesurethisworks"),
                Want::Ksid("81d8c38e0d850e6a"),
            ),
            (Int(1), Want::Ksid("d46405367612b4b7")),
            (Int(2), Want::Ksid("8b59801662b52160")),
            (Int(3), Want::Ksid("a42c16f52a7c1626")),
            (Int(4), Want::Ksid("896ba42c32143991")),
            (Int(5), Want::Ksid("ed48b60574b4816a")),
            // NULL hashes as empty bytes in Vitess, so it has a shard.
            (Null, Want::Ksid("99e9d85137db46ef")),
            (Int(-1), Want::Ksid("d8e2a6a7c8c7623d")),
            (UInt(u64::MAX), Want::Ksid("477cfa8d6d8f1f8d")),
            (Int(i64::MAX), Want::Ksid("b37eb01f7bffafd8")),
            (UInt(i64::MAX as u64), Want::Ksid("b37eb01f7bffafd8")),
            (Int(i64::MIN), Want::Ksid("102c27ddb26a609e")),
            // Integers are hashed as their decimal text.
            (Bytes(b"1"), Want::Ksid("d46405367612b4b7")),
        ],
    );
}

#[test]
fn binary_md5_matches_vitess() {
    check(
        "binary_md5",
        &[
            (
                Bytes(b"Test"),
                Want::Ksid("0cbc6611f5540bd0809a388dc95a615b"),
            ),
            (
                Bytes(b"TEST"),
                Want::Ksid("033bd94b1168d7e4f0d644c3c95e35bf"),
            ),
            (Null, Want::Ksid("d41d8cd98f00b204e9800998ecf8427e")),
            (Int(1), Want::Ksid("c4ca4238a0b923820dcc509a6f75849b")),
        ],
    );
}

#[test]
fn unicode_loose_md5_matches_vitess() {
    const TEST: &str = "0b5edbb401fd7524393690491d64f1f5";
    check(
        "unicode_loose_md5",
        &[
            (Bytes(b"Test"), Want::Ksid(TEST)),
            (Bytes(b"TEST"), Want::Ksid(TEST)),
            (Bytes("Te\u{301}st".as_bytes()), Want::Ksid(TEST)),
            (Bytes("Tést".as_bytes()), Want::Ksid(TEST)),
            (Bytes(b"Test "), Want::Ksid(TEST)),
            (
                Bytes("Bést".as_bytes()),
                Want::Ksid("c2b2332e4f73d00741026249706f2fb6"),
            ),
            (
                Bytes(b" Test"),
                Want::Ksid("a2e3515c7e8df1ffd2ccfc11c6b19dd1"),
            ),
            (
                Bytes(b"Test\t"),
                Want::Ksid("82456dd87a9c7a02b1c2056b5abaa272"),
            ),
            (
                Bytes("TéstLooong".as_bytes()),
                Want::Ksid("9683e12b80430cd453f5dfdfba81c9a5"),
            ),
            (Bytes(b"T"), Want::Ksid("ac0f9179f51db87fe8ecc0cf40cab97a")),
            (Null, Want::Ksid("d41d8cd98f00b204e9800998ecf8427e")),
            // unicodeloosemd5_test.go's invalid UTF-8 inputs.
            (
                Bytes(b"\x99\xeb\x9d\x18\xa4G\x84\x04]\x87\xf3\xc6|\xf2'F"),
                Want::Invalid,
            ),
            (
                Bytes(b"D\x86\x15\xbb\xda\x081?j\x8e\xb6h\xd2\x0b\xf5\x05"),
                Want::Invalid,
            ),
        ],
    );
}

#[test]
fn unicode_loose_xxhash_matches_vitess() {
    const TEST: &str = "42d21361087a4c07";
    check(
        "unicode_loose_xxhash",
        &[
            (Bytes(b"Test"), Want::Ksid(TEST)),
            (Bytes(b"TEst"), Want::Ksid(TEST)),
            (Bytes("Te\u{301}st".as_bytes()), Want::Ksid(TEST)),
            (Bytes("Tést".as_bytes()), Want::Ksid(TEST)),
            (Bytes(b"Test "), Want::Ksid(TEST)),
            (Bytes("Bést".as_bytes()), Want::Ksid("926975b9ce2ec316")),
            (Bytes(b" Test"), Want::Ksid("4fcb8be34ec05775")),
            (Bytes(b"Test\t"), Want::Ksid("20af87fc36e3fd51")),
            (
                Bytes("TéstLooong".as_bytes()),
                Want::Ksid("d3ea873942b484a7"),
            ),
            (Bytes(b"T"), Want::Ksid("f81c3be2d501fe18")),
            (Null, Want::Ksid("99e9d85137db46ef")),
            (Bytes(b"\xc3"), Want::Invalid),
        ],
    );
}

/// unicodeloosemd5_test.go's TestNormalization: the weight strings themselves.
#[test]
fn loose_weight_strings_match_vitess() {
    let cases: &[(&str, &str)] = &[
        ("Test", "1816164c17f31816"),
        ("TEST", "1816164c17f31816"),
        ("Te\u{301}st", "1816164c17f31816"),
        ("Tést", "1816164c17f31816"),
        ("Bést", "1605164c17f31816"),
        ("Test ", "1816164c17f31816"),
        (" Test", "01091816164c17f31816"),
        ("Test\t", "1816164c17f318160100"),
        ("TéstLooong", "1816164c17f318161711177117711771174f1691"),
        ("T", "1816"),
    ];
    for (input, want) in cases {
        let key = unicode_loose_key(input.as_bytes()).expect("valid UTF-8");
        assert_eq!(hex(&key), *want, "weights of {input:?}");
    }
}

/// Weight strings the reference collator (Go x/text, as frozen in Vitess)
/// gives a generated corpus: every contraction, contractions interrupted by
/// a combining mark, Hangul, ideographs, expansions and random code points.
/// Generated by crates/gate/tools/unicode-loose-table.
#[test]
fn loose_weight_strings_match_the_reference_collator() {
    let data = include_str!("data/unicode_loose_vectors.txt");
    let mut checked = 0;
    let mut mismatches = Vec::new();
    let mut newer_ideographs = 0;
    for line in data.lines() {
        let (input, want) = line.split_once(' ').expect("two fields per line");
        let input = unhex(input);
        // The generator ran on Unicode 13 tables; Vitess (Go >= 1.21) counts
        // ideographs added in Unicode 14 and 15 as ideographs, and so do we,
        // which gives those code points other implicit weights.
        if String::from_utf8_lossy(&input).chars().any(|c| {
            matches!(c as u32, 0x9FFD..=0x9FFF | 0x2A6DE..=0x2A6DF | 0x2B735..=0x2B739 | 0x31350..=0x323AF)
        }) {
            newer_ideographs += 1;
            continue;
        }
        let key = unicode_loose_key(&input).expect("corpus is valid UTF-8");
        // The corpus holds raw collator keys; our function trims trailing
        // spaces first, as Vitess does before collating.
        let untrimmed_matches = hex(&key) == want;
        let trailing_space = input.ends_with(b" ");
        if !untrimmed_matches && !trailing_space {
            mismatches.push(format!(
                "{:?}: got {} want {want}",
                String::from_utf8_lossy(&input),
                hex(&key)
            ));
        }
        checked += 1;
    }
    assert!(checked > 2500, "corpus too small: {checked}");
    assert!(newer_ideographs < 50, "{newer_ideographs} lines skipped");
    assert!(
        mismatches.is_empty(),
        "{} of {checked} mismatched, first: {:#?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(10)]
    );
}

#[test]
fn numeric_is_the_big_endian_integer() {
    check(
        "numeric",
        &[
            (Int(1), Want::Ksid("0000000000000001")),
            (Int(2), Want::Ksid("0000000000000002")),
            (Int(3), Want::Ksid("0000000000000003")),
            (Bytes(b"1.1"), Want::Invalid),
            (Int(4), Want::Ksid("0000000000000004")),
            (Int(8), Want::Ksid("0000000000000008")),
            (UInt(u64::MAX), Want::Ksid("ffffffffffffffff")),
            (Bytes(b"256"), Want::Ksid("0000000000000100")),
            (Int(-1), Want::Invalid),
            (Bytes(b"aa"), Want::Invalid),
            (Null, Want::NoShard),
        ],
    );
}

#[test]
fn reverse_bits_matches_vitess() {
    check(
        "reverse_bits",
        &[
            (Int(1), Want::Ksid("8000000000000000")),
            (Int(2), Want::Ksid("4000000000000000")),
            (Int(3), Want::Ksid("c000000000000000")),
            (Null, Want::NoShard),
            (Int(4), Want::Ksid("2000000000000000")),
            (Int(5), Want::Ksid("a000000000000000")),
            (Int(6), Want::Ksid("6000000000000000")),
            (Bytes(b"aa"), Want::Invalid),
            (Int(-5), Want::Invalid),
        ],
    );
}

#[test]
fn binary_is_the_bytes_themselves() {
    check(
        "binary",
        &[
            (Bytes(b"test"), Want::Ksid("74657374")),
            (Bytes(b"test2"), Want::Ksid("7465737432")),
            (Bytes(b"\x00\xff"), Want::Ksid("00ff")),
            (Int(12), Want::Ksid("3132")),
            (Null, Want::Ksid("")),
        ],
    );
}

#[test]
fn null_maps_everything_to_one_zero_byte() {
    check(
        "null",
        &[
            (Int(1), Want::Ksid("00")),
            (Int(6), Want::Ksid("00")),
            (Null, Want::Ksid("00")),
            (Bytes(b"anything"), Want::Ksid("00")),
        ],
    );
}

#[test]
fn functional_vindex_properties_match_vitess() {
    // (type, cost, unique)
    let cases = [
        ("hash", 1),
        ("xxhash", 1),
        ("binary_md5", 1),
        ("unicode_loose_md5", 1),
        ("unicode_loose_xxhash", 1),
        ("reverse_bits", 1),
        ("numeric", 0),
        ("binary", 0),
        ("null", 100),
    ];
    for (kind, cost) in cases {
        let v = vindex(kind);
        assert_eq!(v.kind(), kind);
        assert_eq!(v.name(), format!("{kind}_vdx"));
        assert_eq!(v.cost(), cost, "cost of {kind}");
        assert!(v.is_unique(), "{kind} is unique");
        assert!(!v.needs_lookup());
        assert!(v.lookup_params().is_none());
    }
    // Extra params are tolerated and reported, as Vitess warns about them.
    let params = BTreeMap::from([("hello".to_string(), "world".to_string())]);
    let v = create_vindex("x", "xxhash", &params).unwrap();
    assert_eq!(v.unknown_params(), ["hello".to_string()]);
}

fn lookup_params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn lookup_vindexes_validate_params_and_refuse_to_map_for_now() {
    let good = lookup_params(&[
        ("table", "customer.name_keyspace_idx"),
        ("from", "name, id"),
        ("to", "keyspace_id"),
        ("autocommit", "true"),
        ("write_only", "false"),
        ("read_lock", "shared"),
    ]);
    // (type, cost, unique)
    let cases = [
        ("lookup", 20, false),
        ("lookup_hash", 20, false),
        ("lookup_unique", 10, true),
        ("lookup_hash_unique", 10, true),
        ("consistent_lookup", 20, false),
        ("consistent_lookup_unique", 10, true),
    ];
    for (kind, cost, unique) in cases {
        let v = create_vindex("name_idx", kind, &good).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(v.kind(), kind);
        assert_eq!(v.cost(), cost, "cost of {kind}");
        assert_eq!(v.is_unique(), unique, "uniqueness of {kind}");
        assert!(v.needs_lookup());
        let p = v.lookup_params().expect("lookup params");
        assert_eq!(p.table, "customer.name_keyspace_idx");
        assert_eq!(p.from, ["name", "id"]);
        assert_eq!(p.to, "keyspace_id");
        assert!(p.autocommit && !p.write_only);
        assert_eq!(p.read_lock.as_deref(), Some("shared"));
        let err = v.map(&Int(1)).unwrap_err();
        assert!(
            matches!(&err, VindexError::NeedsLookup { vindex, table, .. }
                if vindex == "name_idx" && table == "customer.name_keyspace_idx"),
            "{kind}: {err:?}"
        );
    }

    let bad: &[(&[(&str, &str)], &str)] = &[
        (
            &[("from", "a"), ("to", "k")],
            "missing required param 'table'",
        ),
        (
            &[("table", "t"), ("to", "k")],
            "missing required param 'from'",
        ),
        (
            &[("table", "t"), ("from", "a")],
            "missing required param 'to'",
        ),
        (
            &[("table", "t"), ("from", "a,,b"), ("to", "k")],
            "empty column name",
        ),
        (
            &[("table", "t"), ("from", "a"), ("to", "k1,k2")],
            "must name one column",
        ),
        (
            &[
                ("table", "t"),
                ("from", "a"),
                ("to", "k"),
                ("autocommit", "yes"),
            ],
            "param 'autocommit' must be 'true' or 'false', got 'yes'",
        ),
        (
            &[
                ("table", "t"),
                ("from", "a"),
                ("to", "k"),
                ("read_lock", "all"),
            ],
            "param 'read_lock'",
        ),
    ];
    for (pairs, want) in bad {
        let err = match create_vindex("v", "lookup_unique", &lookup_params(pairs)) {
            Ok(_) => panic!("{pairs:?} should be refused"),
            Err(e) => e,
        };
        assert!(
            matches!(err, VindexError::InvalidParam { .. }),
            "{pairs:?}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(want), "{pairs:?}: {message}");
        assert!(message.contains("'v' (lookup_unique)"), "{message}");
    }
}

#[test]
fn unknown_type_is_named_with_the_known_ones() {
    let err = match create_vindex("v", "hash2", &BTreeMap::new()) {
        Ok(_) => panic!("hash2 is not a vindex type"),
        Err(e) => e,
    };
    let message = err.to_string();
    assert!(message.contains("'hash2'"), "{message}");
    for kind in KNOWN_TYPES {
        assert!(message.contains(kind), "{message} should list {kind}");
        // And every listed type really is accepted.
        let params = lookup_params(&[("table", "t"), ("from", "a"), ("to", "k")]);
        assert!(create_vindex("v", kind, &params).is_ok(), "{kind}");
    }
}

#[test]
fn keyspace_id_prints_as_lowercase_hex() {
    assert_eq!(
        KeyspaceId(vec![0x16, 0x6b, 0x40, 0xb4, 0x4a, 0xba, 0x4b, 0xd6]).to_string(),
        "166b40b44aba4bd6"
    );
    assert_eq!(KeyspaceId(vec![]).to_string(), "");
}

/// Arbitrary bytes and integers through every type: a value either maps or
/// is refused with an error, never a panic.
#[test]
fn arbitrary_input_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let functional: Vec<Box<dyn Vindex>> = KNOWN_TYPES
        .iter()
        .filter(|k| !k.contains("lookup"))
        .map(|k| vindex(k))
        .collect();
    let mut refused = 0;
    for round in 0..3000 {
        let len = (next() % 24) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                // Mostly high bytes, to hit invalid and multi-byte UTF-8.
                let b = next() as u8;
                if round % 2 == 0 { b | 0x80 } else { b }
            })
            .collect();
        let n = next();
        for v in &functional {
            for value in [Bytes(&bytes), Int(n as i64), UInt(n)] {
                match v.map(&value) {
                    Ok(_) => {}
                    Err(VindexError::InvalidValue { .. }) => refused += 1,
                    Err(other) => panic!("{}({value}): {other:?}", v.kind()),
                }
            }
        }
    }
    assert!(refused > 0, "random bytes should sometimes be refused");
}
