//! Typed access to the records over any `Store`: where each record lives, how
//! it is encoded, and read-modify-write loops that retry lost
//! compare-and-swaps.
//!
//! Layout (global root, then one root per cell):
//! `/global/cells/{cell}`, `/global/keyspaces/{ks}/keyspace`,
//! `/global/keyspaces/{ks}/shards/{shard}`, `/global/keyspaces/{ks}/vschema`,
//! `/cells/{cell}/tablets/{alias}`, `/cells/{cell}/srvkeyspaces/{ks}`.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    CellInfo, Expect, Keyspace, LockGuard, Shard, SrvKeyspace, Store, Tablet, TabletAlias,
    TopoError, TopoResult,
};

/// How many times a read-modify-write retries a lost compare-and-swap.
const UPDATE_RETRIES: u32 = 40;
/// Upper bound of the random pause between retries.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Topo {
    store: Arc<dyn Store>,
}

pub fn cell_key(cell: &str) -> String {
    format!("/global/cells/{cell}")
}
pub fn keyspace_key(ks: &str) -> String {
    format!("/global/keyspaces/{ks}/keyspace")
}
pub fn shards_prefix(ks: &str) -> String {
    format!("/global/keyspaces/{ks}/shards/")
}
pub fn shard_key(ks: &str, shard: &str) -> String {
    format!("/global/keyspaces/{ks}/shards/{shard}")
}
pub fn vschema_key(ks: &str) -> String {
    format!("/global/keyspaces/{ks}/vschema")
}
/// Vitess routing rules, one JSON text for the whole cluster.
pub const ROUTING_RULES_KEY: &str = "/global/routing_rules";
pub fn tablets_prefix(cell: &str) -> String {
    format!("/cells/{cell}/tablets/")
}
pub fn tablet_key(alias: &TabletAlias) -> String {
    format!("/cells/{}/tablets/{alias}", alias.cell)
}
pub fn srv_keyspace_key(cell: &str, ks: &str) -> String {
    format!("/cells/{cell}/srvkeyspaces/{ks}")
}
pub fn shard_lock_name(ks: &str, shard: &str) -> String {
    format!("keyspaces/{ks}/shards/{shard}")
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("records always serialise")
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> TopoResult<T> {
    serde_json::from_slice(bytes).map_err(|e| TopoError::Decode {
        key: key.to_string(),
        message: e.to_string(),
    })
}

/// Waits a random, growing while before retrying a lost compare-and-swap, so
/// writers racing on one record spread out instead of colliding again.
async fn retry_pause(attempt: u32) {
    use std::hash::BuildHasher;
    let cap = Duration::from_millis(1u64 << attempt.min(7)).min(MAX_RETRY_PAUSE);
    // RandomState is seeded randomly per call: good enough for jitter.
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let pause = cap.mul_f64((random % 1000) as f64 / 1000.0);
    tokio::time::sleep(pause).await;
}

impl Topo {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn get_record<T: DeserializeOwned>(&self, key: &str) -> TopoResult<Option<(T, u64)>> {
        match self.store.get(key).await? {
            Some(v) => Ok(Some((decode(key, &v.value)?, v.version))),
            None => Ok(None),
        }
    }

    async fn must_get<T: DeserializeOwned>(&self, key: &str) -> TopoResult<(T, u64)> {
        self.get_record(key)
            .await?
            .ok_or_else(|| TopoError::NotFound(key.to_string()))
    }

    async fn list_records<T: DeserializeOwned>(&self, prefix: &str) -> TopoResult<Vec<T>> {
        self.store
            .list(prefix)
            .await?
            .into_iter()
            .map(|(k, v)| decode(&k, &v.value))
            .collect()
    }

    /// Reads the record at `key`, applies `change`, and writes it back with a
    /// compare-and-swap, retrying when someone else wrote in between.
    async fn update_record<T, F>(&self, key: &str, mut change: F) -> TopoResult<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T) -> TopoResult<()>,
    {
        for attempt in 0..UPDATE_RETRIES {
            let (mut record, version) = self.must_get::<T>(key).await?;
            change(&mut record)?;
            match self
                .store
                .put(key, &encode(&record), Expect::Version(version))
                .await
            {
                Ok(_) => return Ok(record),
                Err(TopoError::BadVersion { .. }) => retry_pause(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(TopoError::Backend(format!(
            "gave up updating {key} after {UPDATE_RETRIES} concurrent changes"
        )))
    }

    // Cells.

    pub async fn create_cell(&self, cell: &CellInfo) -> TopoResult<()> {
        self.store
            .put(&cell_key(&cell.name), &encode(cell), Expect::Absent)
            .await
            .map(|_| ())
    }

    pub async fn get_cell(&self, name: &str) -> TopoResult<Option<CellInfo>> {
        Ok(self.get_record(&cell_key(name)).await?.map(|(c, _)| c))
    }

    pub async fn list_cells(&self) -> TopoResult<Vec<CellInfo>> {
        self.list_records("/global/cells/").await
    }

    // Keyspaces.

    pub async fn create_keyspace(&self, ks: &Keyspace) -> TopoResult<()> {
        self.store
            .put(&keyspace_key(&ks.name), &encode(ks), Expect::Absent)
            .await
            .map(|_| ())
    }

    pub async fn get_keyspace(&self, name: &str) -> TopoResult<Option<Keyspace>> {
        Ok(self.get_record(&keyspace_key(name)).await?.map(|(k, _)| k))
    }

    pub async fn list_keyspaces(&self) -> TopoResult<Vec<Keyspace>> {
        let all = self.store.list("/global/keyspaces/").await?;
        all.into_iter()
            .filter(|(k, _)| k.ends_with("/keyspace"))
            .map(|(k, v)| decode(&k, &v.value))
            .collect()
    }

    // Shards.

    pub async fn create_shard(&self, shard: &Shard) -> TopoResult<()> {
        self.store
            .put(
                &shard_key(&shard.keyspace, &shard.name),
                &encode(shard),
                Expect::Absent,
            )
            .await
            .map(|_| ())
    }

    pub async fn get_shard(&self, ks: &str, shard: &str) -> TopoResult<Option<(Shard, u64)>> {
        self.get_record(&shard_key(ks, shard)).await
    }

    pub async fn list_shards(&self, ks: &str) -> TopoResult<Vec<Shard>> {
        self.list_records(&shards_prefix(ks)).await
    }

    pub async fn update_shard<F>(&self, ks: &str, shard: &str, change: F) -> TopoResult<Shard>
    where
        F: FnMut(&mut Shard) -> TopoResult<()>,
    {
        self.update_record(&shard_key(ks, shard), change).await
    }

    /// The shard lock every reparent and shard-wide change holds.
    pub async fn lock_shard(
        &self,
        ks: &str,
        shard: &str,
        wait: Duration,
    ) -> TopoResult<Box<dyn LockGuard>> {
        self.store
            .lock(&shard_lock_name(ks, shard), Duration::from_secs(30), wait)
            .await
    }

    // Tablets.

    /// Creates or overwrites a tablet's record.
    pub async fn put_tablet(&self, tablet: &Tablet) -> TopoResult<u64> {
        self.store
            .put(&tablet_key(&tablet.alias), &encode(tablet), Expect::Any)
            .await
    }

    pub async fn get_tablet(&self, alias: &TabletAlias) -> TopoResult<Option<(Tablet, u64)>> {
        self.get_record(&tablet_key(alias)).await
    }

    pub async fn update_tablet<F>(&self, alias: &TabletAlias, change: F) -> TopoResult<Tablet>
    where
        F: FnMut(&mut Tablet) -> TopoResult<()>,
    {
        self.update_record(&tablet_key(alias), change).await
    }

    pub async fn delete_tablet(&self, alias: &TabletAlias) -> TopoResult<()> {
        self.store.delete(&tablet_key(alias), Expect::Any).await
    }

    /// Tablets of one cell, or of every known cell when `cell` is None, in
    /// alias order.
    pub async fn list_tablets(&self, cell: Option<&str>) -> TopoResult<Vec<Tablet>> {
        let mut out = Vec::new();
        match cell {
            Some(c) => out.extend(self.list_records::<Tablet>(&tablets_prefix(c)).await?),
            None => {
                for c in self.list_cells().await? {
                    out.extend(
                        self.list_records::<Tablet>(&tablets_prefix(&c.name))
                            .await?,
                    );
                }
            }
        }
        out.sort_by(|a, b| a.alias.cmp(&b.alias));
        Ok(out)
    }

    pub async fn list_shard_tablets(&self, ks: &str, shard: &str) -> TopoResult<Vec<Tablet>> {
        let mut all = self.list_tablets(None).await?;
        all.retain(|t| t.keyspace == ks && t.shard == shard);
        Ok(all)
    }

    // VSchema, kept as the user's JSON text.

    pub async fn put_vschema(&self, ks: &str, json: &str) -> TopoResult<()> {
        self.store
            .put(&vschema_key(ks), json.as_bytes(), Expect::Any)
            .await
            .map(|_| ())
    }

    pub async fn get_vschema(&self, ks: &str) -> TopoResult<Option<String>> {
        Ok(self
            .store
            .get(&vschema_key(ks))
            .await?
            .map(|v| String::from_utf8_lossy(&v.value).into_owned()))
    }

    /// Stores the routing rules JSON, as given.
    pub async fn put_routing_rules(&self, json: &str) -> TopoResult<()> {
        self.store
            .put(ROUTING_RULES_KEY, json.as_bytes(), Expect::Any)
            .await
            .map(|_| ())
    }

    pub async fn get_routing_rules(&self) -> TopoResult<Option<String>> {
        Ok(self
            .store
            .get(ROUTING_RULES_KEY)
            .await?
            .map(|v| String::from_utf8_lossy(&v.value).into_owned()))
    }

    // Serving graph.

    pub async fn put_srv_keyspace(
        &self,
        cell: &str,
        ks: &str,
        srv: &SrvKeyspace,
    ) -> TopoResult<()> {
        self.store
            .put(&srv_keyspace_key(cell, ks), &encode(srv), Expect::Any)
            .await
            .map(|_| ())
    }

    pub async fn get_srv_keyspace(&self, cell: &str, ks: &str) -> TopoResult<Option<SrvKeyspace>> {
        Ok(self
            .get_record(&srv_keyspace_key(cell, ks))
            .await?
            .map(|(s, _)| s))
    }
}
