//! The cluster description `local up` starts: cells, keyspaces, shards and
//! tablets, read from TOML (`--config`) or the built-in default (the Vitess
//! tutorial's unsharded `commerce` keyspace with three tablets).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;
use tessera_topo::{DurabilityPolicy, KeyRange, TabletType};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    #[serde(default = "default_cell")]
    pub cell: String,
    #[serde(rename = "keyspace")]
    pub keyspaces: Vec<KeyspaceConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyspaceConfig {
    pub name: String,
    #[serde(default)]
    pub sharded: bool,
    #[serde(default)]
    pub durability: DurabilityPolicy,
    #[serde(rename = "shard")]
    pub shards: Vec<ShardConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    pub name: String,
    pub tablets: Vec<TabletConfigEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabletConfigEntry {
    pub uid: u32,
    #[serde(rename = "type")]
    pub tablet_type: TabletType,
}

fn default_cell() -> String {
    "zone1".to_string()
}

pub const DEFAULT_CONFIG: &str = r#"
cell = "zone1"

[[keyspace]]
name = "commerce"
sharded = false

[[keyspace.shard]]
name = "0"
tablets = [
  { uid = 100, type = "primary" },
  { uid = 101, type = "replica" },
  { uid = 102, type = "rdonly" },
]
"#;

impl ClusterConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read cluster config {}", p.display()))?,
                p.display().to_string(),
            ),
            None => (DEFAULT_CONFIG.to_string(), "built-in default".to_string()),
        };
        let cfg: ClusterConfig =
            toml::from_str(&text).with_context(|| format!("bad cluster config ({origin})"))?;
        cfg.validate()
            .with_context(|| format!("bad cluster config ({origin})"))?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.keyspaces.is_empty() {
            bail!("no keyspace defined");
        }
        let mut uids = BTreeSet::new();
        let mut names = BTreeSet::new();
        for ks in &self.keyspaces {
            if ks.name.is_empty()
                || !ks
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                bail!("keyspace name {:?} must be letters, digits and _", ks.name);
            }
            if !names.insert(ks.name.clone()) {
                bail!("keyspace {} defined twice", ks.name);
            }
            if ks.shards.is_empty() {
                bail!("keyspace {} has no shard", ks.name);
            }
            if !ks.sharded && ks.shards.len() != 1 {
                bail!("unsharded keyspace {} must have exactly one shard", ks.name);
            }
            if ks.sharded {
                check_shards_cover_keyspace(ks)?;
            }
            for shard in &ks.shards {
                KeyRange::from_shard_name(&shard.name)
                    .map_err(|e| anyhow::anyhow!("keyspace {}: {e}", ks.name))?;
                let primaries = shard
                    .tablets
                    .iter()
                    .filter(|t| t.tablet_type == TabletType::Primary)
                    .count();
                if primaries != 1 {
                    bail!(
                        "shard {}/{} needs exactly one tablet of type primary, has {primaries}",
                        ks.name,
                        shard.name
                    );
                }
                if ks.durability == DurabilityPolicy::SemiSync {
                    let replicas = shard
                        .tablets
                        .iter()
                        .filter(|t| t.tablet_type == TabletType::Replica)
                        .count();
                    if replicas < 2 {
                        bail!(
                            "shard {}/{} uses durability semi_sync and needs at least two replica tablets (has {replicas}): with semi-sync a primary whose only replica is gone blocks every write",
                            ks.name,
                            shard.name
                        );
                    }
                }
                for t in &shard.tablets {
                    if !matches!(
                        t.tablet_type,
                        TabletType::Primary | TabletType::Replica | TabletType::Rdonly
                    ) {
                        bail!("tablet {} must start as primary, replica or rdonly", t.uid);
                    }
                    if t.uid == 0 || t.uid > 9999 {
                        bail!("tablet uid {} must be between 1 and 9999", t.uid);
                    }
                    if !uids.insert(t.uid) {
                        bail!("tablet uid {} used twice", t.uid);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A sharded keyspace's shards must cover every keyspace id exactly once,
/// or some rows would have no shard (or two).
fn check_shards_cover_keyspace(ks: &KeyspaceConfig) -> anyhow::Result<()> {
    let mut ranges = ks
        .shards
        .iter()
        .map(|s| {
            KeyRange::from_shard_name(&s.name)
                .map(|r| (r, s.name.as_str()))
                .map_err(|e| anyhow::anyhow!("keyspace {}: {e}", ks.name))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    ranges.sort_by(|a, b| a.0.start.cmp(&b.0.start));
    let mut expected_start: Vec<u8> = Vec::new();
    for (i, (range, name)) in ranges.iter().enumerate() {
        if range.start != expected_start {
            bail!(
                "keyspace {}: shard {name} does not start where the previous shard ends (gap or overlap in the key ranges)",
                ks.name
            );
        }
        if range.end.is_empty() && i + 1 != ranges.len() {
            bail!(
                "keyspace {}: shard {name} is open-ended but is not the last",
                ks.name
            );
        }
        expected_start = range.end.clone();
    }
    if !expected_start.is_empty() {
        bail!(
            "keyspace {}: the shards stop short of the end of the key range (the last should end with `-`)",
            ks.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_the_tutorial_layout() {
        let cfg = ClusterConfig::load(None).unwrap();
        assert_eq!(cfg.cell, "zone1");
        assert_eq!(cfg.keyspaces.len(), 1);
        let ks = &cfg.keyspaces[0];
        assert_eq!((ks.name.as_str(), ks.sharded), ("commerce", false));
        let types: Vec<_> = ks.shards[0]
            .tablets
            .iter()
            .map(|t| (t.uid, t.tablet_type))
            .collect();
        assert_eq!(
            types,
            vec![
                (100, TabletType::Primary),
                (101, TabletType::Replica),
                (102, TabletType::Rdonly)
            ]
        );
    }

    fn parse(text: &str) -> anyhow::Result<ClusterConfig> {
        let cfg: ClusterConfig = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn shipped_examples_are_valid() {
        for (name, text) in [
            ("tutorial", include_str!("../examples/local/tutorial.toml")),
            (
                "tutorial-sharded",
                include_str!("../examples/local/tutorial-sharded.toml"),
            ),
            (
                "four-shards",
                include_str!("../examples/local/four-shards.toml"),
            ),
        ] {
            let cfg = parse(text).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!cfg.keyspaces.is_empty(), "{name}");
        }
        let four = parse(include_str!("../examples/local/four-shards.toml")).unwrap();
        assert_eq!(four.keyspaces[0].shards.len(), 4);
    }

    #[test]
    fn sharded_key_ranges_must_tile_the_keyspace() {
        let layout = |shards: &[&str]| {
            let mut text = String::from("[[keyspace]]\nname = \"c\"\nsharded = true\n");
            for (i, s) in shards.iter().enumerate() {
                text += &format!(
                    "[[keyspace.shard]]\nname = \"{s}\"\ntablets = [{{ uid = {}, type = \"primary\" }}]\n",
                    i + 1
                );
            }
            parse(&text).map(|_| ()).map_err(|e| format!("{e:#}"))
        };
        assert!(layout(&["-80", "80-"]).is_ok());
        assert!(layout(&["80-", "-40", "40-80"]).is_ok());
        assert!(layout(&["-80"]).unwrap_err().contains("stop short"));
        assert!(
            layout(&["-40", "80-"])
                .unwrap_err()
                .contains("gap or overlap")
        );
        assert!(
            layout(&["-80", "40-"])
                .unwrap_err()
                .contains("gap or overlap")
        );
        assert!(layout(&["40-", "-40", "40-80"]).is_err());
    }

    #[test]
    fn rejects_bad_layouts() {
        let two_primaries = r#"
            [[keyspace]]
            name = "a"
            [[keyspace.shard]]
            name = "0"
            tablets = [{ uid = 1, type = "primary" }, { uid = 2, type = "primary" }]
        "#;
        assert!(format!("{:#}", parse(two_primaries).unwrap_err()).contains("exactly one tablet"));
        let semi_sync_one_replica = r#"
            [[keyspace]]
            name = "a"
            durability = "semi_sync"
            [[keyspace.shard]]
            name = "0"
            tablets = [{ uid = 1, type = "primary" }, { uid = 2, type = "replica" }]
        "#;
        assert!(
            format!("{:#}", parse(semi_sync_one_replica).unwrap_err())
                .contains("at least two replica")
        );
        let bad_shard = r#"
            [[keyspace]]
            name = "a"
            sharded = true
            [[keyspace.shard]]
            name = "zz"
            tablets = [{ uid = 1, type = "primary" }]
        "#;
        assert!(parse(bad_shard).is_err());
        let dup_uid = r#"
            [[keyspace]]
            name = "a"
            [[keyspace.shard]]
            name = "0"
            tablets = [{ uid = 1, type = "primary" }, { uid = 1, type = "replica" }]
        "#;
        assert!(format!("{:#}", parse(dup_uid).unwrap_err()).contains("used twice"));
    }
}
