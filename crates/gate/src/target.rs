//! Session targets as clients name them (`ks`, `ks@replica`, `ks:shard@rdonly`):
//! parsing only; whether the keyspace and shard exist is checked against the
//! routing table.

use std::fmt;

use tessera_topo::TabletType;

/// Where a session's statements go: a keyspace, optionally one shard of it,
/// and the type of tablet to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub keyspace: String,
    pub shard: Option<String>,
    pub tablet_type: TabletType,
}

impl Target {
    /// Parses `ks`, `ks@type`, `ks:shard`, `ks:shard@type`. The type is
    /// primary (also `master`), replica or rdonly.
    pub fn parse(text: &str) -> Result<Target, String> {
        let (rest, tablet_type) = match text.rsplit_once('@') {
            Some((rest, ty)) => {
                let tablet_type = match ty.to_ascii_lowercase().as_str() {
                    "primary" | "master" => TabletType::Primary,
                    "replica" => TabletType::Replica,
                    "rdonly" | "batch" => TabletType::Rdonly,
                    _ => {
                        return Err(format!(
                            "bad target {text:?}: tablet type {ty:?} is not primary, replica or rdonly"
                        ));
                    }
                };
                (rest, tablet_type)
            }
            None => (text, TabletType::Primary),
        };
        // `ks:shard`, or `ks/shard` as Vitess's tutorial writes it.
        let (keyspace, shard) = match rest.split_once([':', '/']) {
            Some((ks, shard)) => {
                if shard.is_empty() {
                    return Err(format!("bad target {text:?}: empty shard"));
                }
                (ks, Some(shard.to_string()))
            }
            None => (rest, None),
        };
        if keyspace.is_empty() {
            return Err(format!("bad target {text:?}: empty keyspace"));
        }
        Ok(Target {
            keyspace: keyspace.to_string(),
            shard,
            tablet_type,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.keyspace)?;
        if let Some(shard) = &self.shard {
            write!(f, ":{shard}")?;
        }
        if self.tablet_type != TabletType::Primary {
            write!(f, "@{}", self.tablet_type)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let t = Target::parse("commerce").unwrap();
        assert_eq!(
            (t.keyspace.as_str(), t.shard.as_deref(), t.tablet_type),
            ("commerce", None, TabletType::Primary)
        );
        let t = Target::parse("commerce@replica").unwrap();
        assert_eq!(t.tablet_type, TabletType::Replica);
        let t = Target::parse("commerce@RDONLY").unwrap();
        assert_eq!(t.tablet_type, TabletType::Rdonly);
        let t = Target::parse("customer:-80@primary").unwrap();
        assert_eq!(
            (t.keyspace.as_str(), t.shard.as_deref(), t.tablet_type),
            ("customer", Some("-80"), TabletType::Primary)
        );
        let t = Target::parse("customer:0").unwrap();
        assert_eq!(t.shard.as_deref(), Some("0"));
        assert_eq!(t.to_string(), "customer:0");
        assert_eq!(
            Target::parse("a:80-@replica").unwrap().to_string(),
            "a:80-@replica"
        );
    }

    #[test]
    fn rejects_bad_targets() {
        assert!(Target::parse("").is_err());
        assert!(Target::parse("@replica").is_err());
        assert!(Target::parse("ks@spare").is_err());
        assert!(Target::parse("ks@").is_err());
        assert!(Target::parse("ks:").is_err());
        assert!(Target::parse(":0").is_err());
    }
}
