//! MariaDB GTID positions (`domain-server-seq` per replication domain,
//! comma-separated), compared to tell whether a replica has applied
//! everything a primary wrote.

use std::collections::BTreeMap;

/// The highest sequence number seen per replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos {
    seq_by_domain: BTreeMap<u32, u64>,
}

impl GtidPos {
    /// Parses `@@gtid_binlog_pos`-style text; empty text is the empty position.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pos = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let fields: Vec<&str> = part.split('-').collect();
            let [domain, server, seq] = fields.as_slice() else {
                return Err(format!(
                    "bad GTID {part:?} in {text:?}: expected domain-server-sequence"
                ));
            };
            let domain: u32 = domain
                .parse()
                .map_err(|_| format!("bad GTID {part:?}: domain is not a number"))?;
            server
                .parse::<u32>()
                .map_err(|_| format!("bad GTID {part:?}: server id is not a number"))?;
            let seq: u64 = seq
                .parse()
                .map_err(|_| format!("bad GTID {part:?}: sequence is not a number"))?;
            let entry = pos.seq_by_domain.entry(domain).or_insert(0);
            *entry = (*entry).max(seq);
        }
        Ok(pos)
    }

    /// The later of the two positions in every domain.
    pub fn merge(&self, other: &GtidPos) -> GtidPos {
        let mut out = self.clone();
        for (&domain, &seq) in &other.seq_by_domain {
            let entry = out.seq_by_domain.entry(domain).or_insert(0);
            *entry = (*entry).max(seq);
        }
        out
    }

    /// Sum of the sequence numbers: orders positions that do not contain
    /// each other by how much they hold.
    pub fn seq_total(&self) -> u64 {
        self.seq_by_domain.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.seq_by_domain.is_empty()
    }

    /// Whether every transaction of `other` is at or before this position.
    pub fn contains(&self, other: &GtidPos) -> bool {
        other.seq_by_domain.iter().all(|(domain, &seq)| {
            self.seq_by_domain
                .get(domain)
                .is_some_and(|&have| have >= seq)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares() {
        let primary = GtidPos::parse("0-100-12,1-100-3").unwrap();
        let behind = GtidPos::parse("0-100-11,1-100-3").unwrap();
        let caught_up = GtidPos::parse("1-100-3, 0-101-12").unwrap();
        assert!(!behind.contains(&primary));
        assert!(caught_up.contains(&primary));
        assert!(primary.contains(&GtidPos::parse("").unwrap()));
        assert!(!GtidPos::parse("").unwrap().contains(&primary));
        let merged = GtidPos::parse("0-1-5")
            .unwrap()
            .merge(&GtidPos::parse("1-1-3").unwrap());
        assert!(merged.contains(&GtidPos::parse("0-1-4,1-1-3").unwrap()));
    }

    #[test]
    fn rejects_garbage() {
        assert!(GtidPos::parse("0-1").is_err());
        assert!(GtidPos::parse("a-1-2").is_err());
        assert!(GtidPos::parse("0-1-x").is_err());
    }
}
