//! String comparison by MariaDB collation: turns a value (in the result set's character
//! set) into collation weights and compares weights with PAD SPACE or NO PAD rules.
//!
//! Why the caller must name the collation: MariaDB's result metadata carries the
//! connection's result collation (e.g. 45 for every text column of a utf8mb4 client),
//! plus the BINARY flag for `_bin` columns — never the column's own collation. A
//! latin1_swedish_ci, utf8mb4_unicode_ci or utf8mb4_nopad_bin column looks exactly like a
//! utf8mb4_general_ci or utf8mb4_bin one, so guessing from metadata would be wrong.

use std::cmp::Ordering;

use super::collation_tables::{GENERAL_CI_EXCEPTIONS, LATIN1_SWEDISH_CI, LATIN1_TO_UNICODE};

/// How a result set's bytes are encoded (from the metadata's collation id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
    Binary,
}

/// The result charset a collation id in column metadata stands for.
pub fn encoding_of(collation_id: u16) -> Option<Encoding> {
    match collation_id {
        63 => Some(Encoding::Binary),
        // utf8mb3 and utf8mb4 collations of MariaDB 10.11 (information_schema.COLLATIONS).
        33
        | 45
        | 46
        | 83
        | 192..=215
        | 223..=247
        | 576..=578
        | 608..=610
        | 1057
        | 1069
        | 1070
        | 1107
        | 1216
        | 1238
        | 1248
        | 1270 => Some(Encoding::Utf8),
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 | 1032 | 1071 => Some(Encoding::Latin1),
        _ => None,
    }
}

/// A collation the engine reproduces exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collation {
    /// binary (63): bytes, NO PAD.
    Binary,
    /// utf8mb4_bin / utf8mb3_bin (and their nopad variants): code points.
    UnicodeBin { pad: bool },
    /// latin1_bin / latin1_nopad_bin: latin1 bytes.
    Latin1Bin { pad: bool },
    /// utf8mb4_general_ci / utf8mb3_general_ci (and nopad variants).
    GeneralCi { pad: bool },
    /// latin1_swedish_ci / latin1_swedish_nopad_ci.
    Latin1SwedishCi { pad: bool },
}

impl Collation {
    pub fn by_id(id: u16) -> Option<Collation> {
        Some(match id {
            63 => Collation::Binary,
            46 | 83 => Collation::UnicodeBin { pad: true },
            1070 | 1107 => Collation::UnicodeBin { pad: false },
            47 => Collation::Latin1Bin { pad: true },
            1071 => Collation::Latin1Bin { pad: false },
            33 | 45 => Collation::GeneralCi { pad: true },
            1057 | 1069 => Collation::GeneralCi { pad: false },
            8 => Collation::Latin1SwedishCi { pad: true },
            1032 => Collation::Latin1SwedishCi { pad: false },
            _ => return None,
        })
    }

    pub fn pads(self) -> bool {
        match self {
            Collation::Binary => false,
            Collation::UnicodeBin { pad }
            | Collation::Latin1Bin { pad }
            | Collation::GeneralCi { pad }
            | Collation::Latin1SwedishCi { pad } => pad,
        }
    }

    /// The weights of `value` (encoded as `encoding`) under this collation.
    pub fn weights(self, encoding: Encoding, value: &[u8]) -> Result<Vec<u32>, String> {
        if self == Collation::Binary {
            return Ok(value.iter().map(|&b| u32::from(b)).collect());
        }
        let chars = decode(encoding, value)?;
        chars
            .into_iter()
            .map(|c| match self {
                Collation::Binary => unreachable!("handled above"),
                Collation::UnicodeBin { .. } => Ok(c),
                Collation::Latin1Bin { .. } => latin1_byte(c).map(u32::from),
                Collation::GeneralCi { .. } => Ok(general_ci_weight(c)),
                Collation::Latin1SwedishCi { .. } => {
                    latin1_byte(c).map(|b| u32::from(LATIN1_SWEDISH_CI[usize::from(b)]))
                }
            })
            .collect()
    }
}

/// The space character's weight in every supported collation.
const SPACE_WEIGHT: u32 = 0x20;

fn decode(encoding: Encoding, value: &[u8]) -> Result<Vec<u32>, String> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(value)
            .map(|s| s.chars().map(u32::from).collect())
            .map_err(|_| "a string value is not valid UTF-8".to_string()),
        Encoding::Latin1 => Ok(value
            .iter()
            .map(|&b| u32::from(LATIN1_TO_UNICODE[usize::from(b)]))
            .collect()),
        // A binary result holds raw bytes; a text collation cannot interpret them.
        Encoding::Binary => Err("a text collation was asked to compare binary data".into()),
    }
}

fn latin1_byte(code_point: u32) -> Result<u8, String> {
    if let Some(byte) = LATIN1_TO_UNICODE
        .iter()
        .position(|&u| u32::from(u) == code_point)
    {
        return Ok(byte as u8);
    }
    Err(format!(
        "character U+{code_point:04X} has no latin1 form to compare with a latin1 collation"
    ))
}

fn general_ci_weight(code_point: u32) -> u32 {
    if code_point > 0xFFFF {
        // general_ci gives every supplementary character the weight of U+FFFD.
        return 0xFFFD;
    }
    match GENERAL_CI_EXCEPTIONS.binary_search_by_key(&(code_point as u16), |&(cp, _)| cp) {
        Ok(i) => u32::from(GENERAL_CI_EXCEPTIONS[i].1),
        Err(_) => code_point,
    }
}

/// Compares two weight strings; under PAD SPACE the shorter one is extended with spaces,
/// so "a" = "a  " and "a\t" < "a".
pub fn compare_weights(a: &[u32], b: &[u32], pad: bool) -> Ordering {
    let common = a.len().min(b.len());
    match a[..common].cmp(&b[..common]) {
        Ordering::Equal => {}
        other => return other,
    }
    if !pad {
        return a.len().cmp(&b.len());
    }
    for &w in &a[common..] {
        match w.cmp(&SPACE_WEIGHT) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    for &w in &b[common..] {
        match SPACE_WEIGHT.cmp(&w) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

/// The form of a weight string that is equal exactly for strings the collation calls equal.
pub fn equality_form(mut weights: Vec<u32>, pad: bool) -> Vec<u32> {
    if pad {
        while weights.last() == Some(&SPACE_WEIGHT) {
            weights.pop();
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(collation: Collation, a: &str, b: &str) -> Ordering {
        let wa = collation.weights(Encoding::Utf8, a.as_bytes()).unwrap();
        let wb = collation.weights(Encoding::Utf8, b.as_bytes()).unwrap();
        compare_weights(&wa, &wb, collation.pads())
    }

    #[test]
    fn general_ci_folds_case_and_accents_and_pads() {
        let ci = Collation::by_id(45).unwrap();
        assert_eq!(cmp(ci, "a", "A"), Ordering::Equal);
        assert_eq!(cmp(ci, "Ä", "a"), Ordering::Equal);
        assert_eq!(cmp(ci, "é", "E "), Ordering::Equal);
        assert_eq!(cmp(ci, "a\t", "a"), Ordering::Less);
        assert_eq!(cmp(ci, "b", "A"), Ordering::Greater);
        assert_eq!(cmp(ci, "😀", "\u{FFFD}"), Ordering::Equal);
        let nopad = Collation::by_id(1069).unwrap();
        assert_eq!(cmp(nopad, "a ", "a"), Ordering::Greater);
    }

    #[test]
    fn bin_collations_compare_code_points() {
        let bin = Collation::by_id(46).unwrap();
        assert_eq!(cmp(bin, "a", "A"), Ordering::Greater);
        assert_eq!(cmp(bin, "a ", "a"), Ordering::Equal);
        let nopad = Collation::by_id(1070).unwrap();
        assert_eq!(cmp(nopad, "a ", "a"), Ordering::Greater);
        let binary = Collation::Binary;
        assert_eq!(cmp(binary, "a ", "a"), Ordering::Greater);
    }

    #[test]
    fn latin1_swedish_sorts_a_umlaut_after_z() {
        let sw = Collation::by_id(8).unwrap();
        assert_eq!(cmp(sw, "Ä", "z"), Ordering::Greater);
        assert_eq!(cmp(sw, "a", "A"), Ordering::Equal);
        // The same text arriving as latin1 bytes gives the same weights.
        let from_latin1 = sw.weights(Encoding::Latin1, &[0xC4]).unwrap();
        let from_utf8 = sw.weights(Encoding::Utf8, "Ä".as_bytes()).unwrap();
        assert_eq!(from_latin1, from_utf8);
        assert!(sw.weights(Encoding::Utf8, "😀".as_bytes()).is_err());
    }

    #[test]
    fn unknown_collations_and_bad_bytes_are_refused() {
        assert_eq!(Collation::by_id(224), None, "unicode_ci is not reproduced");
        assert!(
            Collation::by_id(45)
                .unwrap()
                .weights(Encoding::Utf8, &[0xFF])
                .is_err()
        );
        assert_eq!(
            equality_form(vec![0x41, 0x20, 0x20], true),
            vec![0x41],
            "trailing spaces do not count under PAD SPACE"
        );
    }
}
