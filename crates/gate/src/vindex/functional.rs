//! The functional vindexes: keyspace id computed from the value alone
//! (hash, xxhash, numeric, reverse_bits, binary, binary_md5, the unicode
//! loose family and null).

use std::collections::BTreeMap;

use des::Des;
use des::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use md5::{Digest, Md5};

use super::value::{to_u64, to_u64_wrapping, value_bytes};
use super::{KeyspaceId, Vindex, VindexError, VindexValue, unicode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Hash,
    XxHash,
    Numeric,
    ReverseBits,
    Binary,
    BinaryMd5,
    UnicodeLooseMd5,
    UnicodeLooseXxHash,
    Null,
}

impl Function {
    fn from_kind(kind: &str) -> Option<(Function, &'static str)> {
        Some(match kind {
            "hash" => (Function::Hash, "hash"),
            "xxhash" => (Function::XxHash, "xxhash"),
            "numeric" => (Function::Numeric, "numeric"),
            "reverse_bits" => (Function::ReverseBits, "reverse_bits"),
            "binary" => (Function::Binary, "binary"),
            "binary_md5" => (Function::BinaryMd5, "binary_md5"),
            "unicode_loose_md5" => (Function::UnicodeLooseMd5, "unicode_loose_md5"),
            "unicode_loose_xxhash" => (Function::UnicodeLooseXxHash, "unicode_loose_xxhash"),
            "null" => (Function::Null, "null"),
            _ => return None,
        })
    }

    /// Vitess's costs: the planner prefers the cheapest vindex. `null` is
    /// priced so that it is never chosen over a real one.
    fn cost(self) -> u32 {
        match self {
            Function::Numeric | Function::Binary => 0,
            Function::Null => 100,
            _ => 1,
        }
    }
}

pub(super) struct Functional {
    name: String,
    kind: &'static str,
    function: Function,
    unknown_params: Vec<String>,
}

impl Functional {
    /// None when `kind` is not a functional type.
    pub(super) fn new(name: &str, kind: &str, params: &BTreeMap<String, String>) -> Option<Self> {
        let (function, kind) = Function::from_kind(kind)?;
        Some(Functional {
            name: name.to_string(),
            kind,
            function,
            // None of these take params; Vitess ignores extra ones with a warning.
            unknown_params: params.keys().cloned().collect(),
        })
    }

    fn invalid(&self, value: &VindexValue<'_>, reason: String) -> VindexError {
        VindexError::InvalidValue {
            vindex: self.name.clone(),
            kind: self.kind.to_string(),
            value: value.to_string(),
            reason,
        }
    }

    /// The keyspace id of the integer vindexes (`hash`, `numeric`,
    /// `reverse_bits`): always 8 bytes.
    fn map_integer(&self, value: &VindexValue<'_>) -> Result<Option<[u8; 8]>, VindexError> {
        let n = match self.function {
            Function::Hash => to_u64_wrapping(value),
            _ => to_u64(value),
        };
        let Some(n) = n.map_err(|reason| self.invalid(value, reason))? else {
            return Ok(None);
        };
        Ok(Some(match self.function {
            Function::Hash => des_null_key(n),
            Function::ReverseBits => n.reverse_bits().to_be_bytes(),
            _ => n.to_be_bytes(),
        }))
    }
}

impl Vindex for Functional {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn is_unique(&self) -> bool {
        true
    }

    fn cost(&self) -> u32 {
        self.function.cost()
    }

    fn unknown_params(&self) -> &[String] {
        &self.unknown_params
    }

    fn map_fixed(&self, value: &VindexValue<'_>) -> Option<Result<Option<[u8; 8]>, VindexError>> {
        matches!(
            self.function,
            Function::Hash | Function::Numeric | Function::ReverseBits
        )
        .then(|| self.map_integer(value))
    }

    fn map(&self, value: &VindexValue<'_>) -> Result<Option<KeyspaceId>, VindexError> {
        let ksid = match self.function {
            Function::Hash | Function::Numeric | Function::ReverseBits => {
                match self.map_integer(value)? {
                    Some(k) => k.to_vec(),
                    None => return Ok(None),
                }
            }
            // The byte-based vindexes hash NULL as empty bytes, as Vitess does.
            Function::XxHash => xxh64_le(&value_bytes(value)).to_vec(),
            Function::Binary => value_bytes(value).into_owned(),
            Function::BinaryMd5 => Md5::digest(value_bytes(value)).to_vec(),
            Function::UnicodeLooseMd5 => {
                let weights = unicode::unicode_loose_key(&value_bytes(value))
                    .map_err(|e| self.invalid(value, format!("not valid UTF-8 text ({e})")))?;
                Md5::digest(&weights).to_vec()
            }
            Function::UnicodeLooseXxHash => {
                let weights = unicode::unicode_loose_key(&value_bytes(value))
                    .map_err(|e| self.invalid(value, format!("not valid UTF-8 text ({e})")))?;
                xxh64_le(&weights).to_vec()
            }
            Function::Null => vec![0],
        };
        Ok(Some(KeyspaceId(ksid)))
    }
}

/// DES with an all-zero key over the big-endian integer: a bijection on
/// 64-bit values that spreads consecutive ids across the whole range.
fn des_null_key(n: u64) -> [u8; 8] {
    // The key schedule is the same for every value: made once.
    static CIPHER: std::sync::LazyLock<Des> =
        std::sync::LazyLock::new(|| Des::new(&GenericArray::from([0u8; 8])));
    let cipher = &*CIPHER;
    let mut block = GenericArray::from(n.to_be_bytes());
    cipher.encrypt_block(&mut block);
    block.into()
}

/// XXH64 (seed 0), stored little-endian as Vitess stores it.
fn xxh64_le(bytes: &[u8]) -> [u8; 8] {
    xxhash_rust::xxh64::xxh64(bytes, 0).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_fixed_gives_what_map_gives() {
        let values = [
            VindexValue::Null,
            VindexValue::Int(0),
            VindexValue::Int(1),
            VindexValue::Int(-1),
            VindexValue::Int(i64::MIN),
            VindexValue::UInt(u64::MAX),
            VindexValue::Bytes(b"42"),
            VindexValue::Bytes(b"-42"),
            VindexValue::Bytes(b"abc"),
        ];
        let none = BTreeMap::new();
        for kind in ["hash", "numeric", "reverse_bits"] {
            let v = Functional::new("v", kind, &none).unwrap();
            for value in &values {
                let fixed = v.map_fixed(value).expect("an integer vindex maps fixed");
                let full = v.map(value);
                assert_eq!(
                    fixed.map(|k| k.map(|k| KeyspaceId(k.to_vec()))),
                    full,
                    "{kind} {value}"
                );
            }
        }
        for kind in ["xxhash", "binary", "binary_md5", "null"] {
            let v = Functional::new("v", kind, &none).unwrap();
            assert!(v.map_fixed(&VindexValue::Int(1)).is_none(), "{kind}");
        }
    }
}
