//! The "loose" Unicode weight string that Vitess's unicode_loose_md5 and
//! unicode_loose_xxhash vindexes hash: primary collation weights only, so
//! case, accents and width do not change the keyspace id.
//!
//! Vitess computes these with a frozen copy of Go's x/text collator (English,
//! `collate.Loose`, tables from UCA 6.2.0 / CLDR 23). To stay bit-compatible
//! we do not implement UCA ourselves: `unicode_loose.bin` holds the weights
//! that collator gives every code point and every contraction, dumped by the
//! generator in `crates/gate/tools/unicode-loose-table/`. This module replays
//! the collator's matching rules over that table.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// Generated data; see the module comment for how to rebuild it.
static TABLE_BYTES: &[u8] = include_bytes!("unicode_loose.bin");

/// One collation element: its primary weight (0 for ignorables) and the
/// canonical combining class the collator reorders elements by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Elem {
    primary: u32,
    ccc: u8,
}

/// A run of elements inside `LooseTable::elems`.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

struct LooseTable {
    /// Code points whose weights differ from the implicit ones, sorted.
    single_runes: Vec<u32>,
    single_spans: Vec<Span>,
    elems: Vec<Elem>,
    contractions: HashMap<Vec<char>, Span>,
    /// Every proper prefix of a contraction: a match may continue from it.
    contraction_prefixes: HashSet<Vec<char>>,
    /// Lead and trail canonical combining class, for non-starters only.
    ccc: HashMap<u32, (u8, u8)>,
}

/// Reads the table's unsigned LEB128 varints; the data is compiled in, so a
/// malformed table is a build defect, reported by panicking once at load.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let b = *self
            .bytes
            .get(self.at)
            .expect("unicode_loose.bin is truncated");
        self.at += 1;
        b
    }

    fn varint(&mut self) -> u32 {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.byte();
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(value).expect("unicode_loose.bin varint overflows u32");
            }
        }
        panic!("unicode_loose.bin has an over-long varint");
    }

    fn rune(&mut self) -> char {
        char::from_u32(self.varint()).expect("unicode_loose.bin holds an invalid code point")
    }
}

impl LooseTable {
    fn parse(bytes: &[u8]) -> LooseTable {
        assert!(
            bytes.starts_with(b"TVLK2"),
            "unicode_loose.bin has an unknown format"
        );
        let mut r = Reader { bytes, at: 5 };
        let mut elems = Vec::new();
        let mut read_span = |r: &mut Reader<'_>| {
            let len = r.varint();
            let start = elems.len() as u32;
            for _ in 0..len {
                let primary = r.varint();
                let ccc = r.byte();
                elems.push(Elem { primary, ccc });
            }
            Span { start, len }
        };

        let singles = r.varint() as usize;
        let mut single_runes = Vec::with_capacity(singles);
        let mut single_spans = Vec::with_capacity(singles);
        let mut rune = 0u32;
        for _ in 0..singles {
            rune += r.varint();
            single_runes.push(rune);
            single_spans.push(read_span(&mut r));
        }

        let count = r.varint() as usize;
        let mut contractions = HashMap::with_capacity(count);
        let mut contraction_prefixes = HashSet::new();
        for _ in 0..count {
            let len = r.varint() as usize;
            let runes: Vec<char> = (0..len).map(|_| r.rune()).collect();
            for end in 1..runes.len() {
                contraction_prefixes.insert(runes[..end].to_vec());
            }
            contractions.insert(runes, read_span(&mut r));
        }

        let count = r.varint() as usize;
        let mut ccc = HashMap::with_capacity(count);
        let mut rune = 0u32;
        for _ in 0..count {
            rune += r.varint();
            let lead = r.byte();
            let trail = r.byte();
            ccc.insert(rune, (lead, trail));
        }
        assert_eq!(r.at, bytes.len(), "unicode_loose.bin has trailing bytes");
        LooseTable {
            single_runes,
            single_spans,
            elems,
            contractions,
            contraction_prefixes,
            ccc,
        }
    }

    fn get() -> &'static LooseTable {
        static TABLE: OnceLock<LooseTable> = OnceLock::new();
        TABLE.get_or_init(|| LooseTable::parse(TABLE_BYTES))
    }

    fn span(&self, span: Span) -> &[Elem] {
        &self.elems[span.start as usize..(span.start + span.len) as usize]
    }

    fn push_single(&self, c: char, out: &mut Vec<Elem>) {
        match self.single_runes.binary_search(&(c as u32)) {
            Ok(i) => out.extend_from_slice(self.span(self.single_spans[i])),
            Err(_) => out.push(Elem {
                primary: implicit_primary(c),
                ccc: 0,
            }),
        }
    }

    fn lead_ccc(&self, c: char) -> u8 {
        self.ccc.get(&(c as u32)).map_or(0, |&(lead, _)| lead)
    }

    fn trail_ccc(&self, c: char) -> u8 {
        self.ccc.get(&(c as u32)).map_or(0, |&(_, trail)| trail)
    }

    fn can_extend(&self, prefix: &[char]) -> bool {
        self.contraction_prefixes.contains(prefix)
    }

    /// Appends the elements of the rune or contraction at `runes[at]` and
    /// returns how many runes that consumed.
    fn append_next(&self, runes: &[char], at: usize, out: &mut Vec<Elem>) -> usize {
        if self.can_extend(&runes[at..=at]) {
            self.append_contraction(runes, at, out) - at
        } else {
            self.push_single(runes[at], out);
            1
        }
    }

    /// Appends every element of `runes`, without reordering.
    fn append_all(&self, runes: &[char], out: &mut Vec<Elem>) {
        let mut at = 0;
        while at < runes.len() {
            at += self.append_next(runes, at, out);
        }
    }

    /// Matches the longest contraction starting at `runes[start]`, which
    /// begins at least one, and returns where the next match starts.
    ///
    /// As in the collator, the match first runs over consecutive runes; then
    /// it may skip combining marks that do not block the next one (a mark of
    /// lower combining class in between), whose elements follow the
    /// contraction's.
    fn append_contraction(&self, runes: &[char], start: usize, out: &mut Vec<Elem>) -> usize {
        let mut state_end = start + 1;
        let mut best: Option<(usize, Span)> = None;
        while state_end < runes.len() {
            let candidate = &runes[start..=state_end];
            let complete = self.contractions.get(candidate);
            if complete.is_none() && !self.can_extend(candidate) {
                break;
            }
            state_end += 1;
            if let Some(&span) = complete {
                best = Some((state_end, span));
            }
        }
        let mut matched: Vec<char> = runes[start..state_end].to_vec();
        let mut skipped_before_best: Vec<char> = Vec::new();

        if self.can_extend(&matched)
            && state_end < runes.len()
            && self.lead_ccc(runes[state_end]) != 0
        {
            let mut skipped = vec![runes[state_end]];
            let mut prev_ccc = self.trail_ccc(runes[state_end]);
            let mut k = state_end + 1;
            while k < runes.len() && self.can_extend(&matched) {
                let c = runes[k];
                let lead = self.lead_ccc(c);
                if lead == 0 || prev_ccc >= lead {
                    break;
                }
                prev_ccc = self.trail_ccc(c);
                matched.push(c);
                let complete = self.contractions.get(&matched).copied();
                if complete.is_some() || self.can_extend(&matched) {
                    if let Some(span) = complete {
                        best = Some((k + 1, span));
                        skipped_before_best.clone_from(&skipped);
                    }
                } else {
                    matched.pop();
                    skipped.push(c);
                }
                k += 1;
            }
        }

        match best {
            Some((end, span)) => {
                out.extend_from_slice(self.span(span));
                self.append_all(&skipped_before_best, out);
                end
            }
            None => {
                self.push_single(runes[start], out);
                start + 1
            }
        }
    }

    /// All elements of `runes` in the collator's order: elements come rune
    /// (or contraction) at a time, and a block of combining elements is
    /// moved ahead of earlier ones with a higher combining class, the way
    /// the collator's iterator reorders unnormalized input.
    fn collation_elements(&self, runes: &[char]) -> Vec<Elem> {
        /// Past this many pending combining elements the iterator gives up
        /// reordering, so a flood of marks costs linear time.
        const MAX_COMBINING: usize = 30;
        let mut elems: Vec<Elem> = Vec::with_capacity(runes.len() + 4);
        let mut at = 0;
        // Elements before `settled` are final.
        let mut settled = 0;
        let append = |elems: &mut Vec<Elem>, at: &mut usize| -> bool {
            if *at >= runes.len() {
                return false;
            }
            let before = elems.len();
            *at += self.append_next(runes, *at, elems);
            if elems.len() == before {
                // Every rune yields an element; keep the invariant anyway.
                elems.push(Elem { primary: 0, ccc: 0 });
            }
            true
        };
        loop {
            if settled == elems.len() && !append(&mut elems, &mut at) {
                break;
            }
            let mut prev_ccc = elems[elems.len() - 1].ccc;
            if prev_ccc == 0 {
                settled = elems.len();
                continue;
            }
            if elems[settled].ccc == 0 {
                settled += 1;
                while settled < elems.len() && elems[settled].ccc == 0 {
                    settled += 1;
                }
                continue;
            }
            loop {
                let block = elems.len();
                if !append(&mut elems, &mut at) {
                    settled = elems.len();
                    break;
                }
                let ccc = elems[block].ccc;
                if ccc == 0 || elems.len() - settled > MAX_COMBINING {
                    settled = block;
                    break;
                } else if ccc < prev_ccc {
                    // The block always moves ahead of the element before
                    // it, then past any earlier pending ones of higher class.
                    let mut to = block - 1;
                    while to > settled && ccc < elems[to - 1].ccc {
                        to -= 1;
                    }
                    elems[to..].rotate_left(block - to);
                } else {
                    prev_ccc = ccc;
                }
            }
            if at >= runes.len() && settled == elems.len() {
                break;
            }
        }
        elems
    }
}

/// Primary weights up to 15 bits take two bytes; larger ones three, flagged
/// by the top bit.
fn push_primary(w: u32, out: &mut Vec<u8>) {
    if w <= 0x7fff {
        out.extend_from_slice(&[(w >> 8) as u8, w as u8]);
    } else {
        out.extend_from_slice(&[((w >> 16) as u8) | 0x80, (w >> 8) as u8, w as u8]);
    }
}

/// The weight of a code point the table does not list: ideographs sort by
/// code point ahead of everything else unlisted.
fn implicit_primary(c: char) -> u32 {
    let cp = c as u32;
    if is_ideographic(cp) {
        if (0x4E00..=0x9FFF).contains(&cp) || (0xF900..=0xFAFF).contains(&cp) {
            return cp + 0x10000;
        }
        return cp + 0x20000;
    }
    cp + 0x50000
}

/// Unicode 15.0's Ideographic property (what Go's `unicode.Ideographic`,
/// used by Vitess's collator, holds since Go 1.21).
fn is_ideographic(cp: u32) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x3006, 0x3007),
        (0x3021, 0x3029),
        (0x3038, 0x303A),
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xF900, 0xFA6D),
        (0xFA70, 0xFAD9),
        (0x16FE4, 0x16FE4),
        (0x17000, 0x187F7),
        (0x18800, 0x18CD5),
        (0x18D00, 0x18D08),
        (0x1B170, 0x1B2FB),
        (0x20000, 0x2A6DF),
        (0x2A700, 0x2B739),
        (0x2B740, 0x2B81D),
        (0x2B820, 0x2CEA1),
        (0x2CEB0, 0x2EBE0),
        (0x2F800, 0x2FA1D),
        (0x30000, 0x3134A),
        (0x31350, 0x323AF),
    ];
    RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

/// The weight string Vitess's unicode_loose vindexes hash: text must be
/// UTF-8; trailing spaces are ignored, as MySQL's PAD SPACE collations do.
pub fn unicode_loose_key(text: &[u8]) -> Result<Vec<u8>, std::str::Utf8Error> {
    let text = std::str::from_utf8(text)?;
    let runes: Vec<char> = text.trim_end_matches(' ').chars().collect();
    let mut out = Vec::with_capacity(runes.len() * 2);
    for elem in LooseTable::get().collation_elements(&runes) {
        if elem.primary > 0 {
            push_primary(elem.primary, &mut out);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_loads_with_every_section() {
        let table = LooseTable::get();
        assert!(table.single_runes.len() > 30_000);
        assert!(table.contractions.len() > 700);
        assert!(!table.ccc.is_empty());
    }

    #[test]
    fn primaries_above_15_bits_take_three_bytes() {
        let mut out = Vec::new();
        push_primary(0x1816, &mut out);
        push_primary(0x15E00, &mut out);
        assert_eq!(out, [0x18, 0x16, 0x81, 0x5E, 0x00]);
    }
}
