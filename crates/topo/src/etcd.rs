//! The distributed topology store on etcd v3: node versions are etcd
//! `mod_revision`s, conditional writes are transactions, locks are keys bound
//! to a lease that a background task keeps alive.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, PutOptions,
    SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchOptions,
};
use tokio::task::JoinHandle;

use crate::keys::{check_key, check_lock, check_prefix};
use crate::{Expect, LockGuard, Store, TopoError, TopoResult, Versioned, WatchEvent, WatchStream};

/// Longest a single request may take before the store is reported down:
/// callers such as gates must get an error they can fall back on, not a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A topology store in etcd, every key under `root`.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    root: String,
    /// The endpoints as given, for error messages.
    endpoints: String,
}

/// `/tessera/` and `tessera` both mean `/tessera`; `/` and `` mean no prefix.
fn normalize_root(root: &str) -> TopoResult<String> {
    let trimmed = root.trim().trim_end_matches('/');
    if trimmed.contains('\0') {
        return Err(TopoError::Backend(format!("bad etcd root {root:?}")));
    }
    if trimmed.is_empty() || trimmed.starts_with('/') {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("/{trimmed}"))
    }
}

impl EtcdStore {
    /// Connects to etcd and checks that it answers, so an unreachable cluster
    /// fails here rather than on first use.
    pub async fn connect(endpoints: &[String], root: &str) -> TopoResult<EtcdStore> {
        let endpoints: Vec<String> = endpoints
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(TopoError::Backend("no etcd endpoints given".to_string()));
        }
        let root = normalize_root(root)?;
        let shown = endpoints.join(",");
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client =
            match tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(&endpoints, Some(options)))
                .await
            {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => {
                    return Err(TopoError::Backend(format!(
                        "cannot connect to etcd at {shown}: {e}"
                    )));
                }
                Err(_) => {
                    return Err(TopoError::Backend(format!(
                        "cannot connect to etcd at {shown}: no answer within {}s",
                        CONNECT_TIMEOUT.as_secs()
                    )));
                }
            };
        let store = EtcdStore {
            client,
            root,
            endpoints: shown,
        };
        let mut maintenance = store.client.maintenance_client();
        match tokio::time::timeout(CONNECT_TIMEOUT, maintenance.status()).await {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(e)) => Err(TopoError::Backend(format!(
                "cannot reach etcd at {}: {e}",
                store.endpoints
            ))),
            Err(_) => Err(TopoError::Backend(format!(
                "cannot reach etcd at {}: no answer within {}s",
                store.endpoints,
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The prefix every key is stored under.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.root)
    }

    fn lock_key(&self, name: &str) -> String {
        format!("{}/locks/{name}", self.root)
    }

    fn strip_root(&self, full: &[u8]) -> String {
        let full = String::from_utf8_lossy(full);
        full.strip_prefix(self.root.as_str())
            .unwrap_or(&full)
            .to_string()
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> TopoError {
        TopoError::Backend(format!("etcd at {}: {what}: {e}", self.endpoints))
    }

    async fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> TopoResult<T> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.err(what, e)),
            Err(_) => Err(self.err(
                what,
                format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
            )),
        }
    }

    fn revision_of(&self, what: &str, resp: &TxnResponse) -> TopoResult<u64> {
        resp.header()
            .map(|h| h.revision() as u64)
            .ok_or_else(|| self.err(what, "response without a header"))
    }

    /// Runs a conditional write; on a failed condition, explains why from the
    /// node's current state (read in the same transaction).
    async fn conditional(
        &self,
        key: &str,
        expect: Expect,
        write: TxnOp,
        what: &str,
    ) -> TopoResult<u64> {
        let full = self.full_key(key);
        let compares = match expect {
            Expect::Any => vec![Compare::create_revision(
                full.clone(),
                CompareOp::Greater,
                0,
            )],
            Expect::Absent => vec![Compare::create_revision(full.clone(), CompareOp::Equal, 0)],
            // A missing node has mod_revision 0, so also require existence.
            Expect::Version(v) => vec![
                Compare::create_revision(full.clone(), CompareOp::Greater, 0),
                Compare::mod_revision(full.clone(), CompareOp::Equal, v as i64),
            ],
        };
        let txn = Txn::new()
            .when(compares)
            .and_then(vec![write])
            .or_else(vec![TxnOp::get(full, None)]);
        let mut kv = self.client.kv_client();
        let resp = self.call(what, kv.txn(txn)).await?;
        if resp.succeeded() {
            return self.revision_of(what, &resp);
        }
        let current = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g.kvs().first().map(|kv| kv.mod_revision() as u64)),
            _ => None,
        });
        let current =
            current.ok_or_else(|| self.err(what, "transaction answered without its read"))?;
        Err(match (expect, current) {
            (Expect::Absent, _) => TopoError::AlreadyExists(key.to_string()),
            (_, None) => TopoError::NotFound(key.to_string()),
            (Expect::Version(want), Some(found)) => TopoError::BadVersion {
                key: key.to_string(),
                expected: Some(want),
                found: Some(found),
            },
            (Expect::Any, Some(_)) => self.err(what, "condition failed on an existing node"),
        })
    }

    fn versioned(kv: &KeyValue) -> Versioned {
        Versioned {
            value: kv.value().to_vec(),
            version: kv.mod_revision() as u64,
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> TopoResult<Option<Versioned>> {
        check_key(key)?;
        let mut kv = self.client.kv_client();
        let resp = self.call("get", kv.get(self.full_key(key), None)).await?;
        Ok(resp.kvs().first().map(Self::versioned))
    }

    async fn put(&self, key: &str, value: &[u8], expect: Expect) -> TopoResult<u64> {
        check_key(key)?;
        if expect == Expect::Any {
            let mut kv = self.client.kv_client();
            let resp = self
                .call("put", kv.put(self.full_key(key), value.to_vec(), None))
                .await?;
            return resp
                .header()
                .map(|h| h.revision() as u64)
                .ok_or_else(|| self.err("put", "response without a header"));
        }
        let write = TxnOp::put(self.full_key(key), value.to_vec(), None);
        self.conditional(key, expect, write, "put").await
    }

    async fn delete(&self, key: &str, expect: Expect) -> TopoResult<()> {
        check_key(key)?;
        let write = TxnOp::delete(self.full_key(key), None);
        match expect {
            // Deleting requires the node to exist whatever is expected.
            Expect::Any => self.conditional(key, Expect::Any, write, "delete").await,
            Expect::Absent => match self.get(key).await? {
                Some(_) => Err(TopoError::AlreadyExists(key.to_string())),
                None => Err(TopoError::NotFound(key.to_string())),
            },
            Expect::Version(_) => self.conditional(key, expect, write, "delete").await,
        }
        .map(|_| ())
    }

    async fn list(&self, prefix: &str) -> TopoResult<Vec<(String, Versioned)>> {
        check_prefix(prefix)?;
        let range = if prefix.is_empty() {
            format!("{}/", self.root)
        } else {
            self.full_key(prefix)
        };
        let options = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Key, SortOrder::Ascend);
        let mut kv = self.client.kv_client();
        let resp = self.call("list", kv.get(range, Some(options))).await?;
        let mut out: Vec<(String, Versioned)> = resp
            .kvs()
            .iter()
            .map(|kv| (self.strip_root(kv.key()), Self::versioned(kv)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn watch(&self, prefix: &str) -> TopoResult<WatchStream> {
        check_prefix(prefix)?;
        let range = if prefix.is_empty() {
            format!("{}/", self.root)
        } else {
            self.full_key(prefix)
        };
        let mut client = self.client.watch_client();
        let (watcher, stream) = self
            .call(
                "watch",
                client.watch(range, Some(WatchOptions::new().with_prefix())),
            )
            .await?;
        let state = WatchState {
            _watcher: watcher,
            stream,
            pending: VecDeque::new(),
            finished: false,
            store: self.clone(),
        };
        Ok(Box::pin(futures::stream::unfold(state, WatchState::next)))
    }

    async fn lock(
        &self,
        name: &str,
        ttl: Duration,
        wait: Duration,
    ) -> TopoResult<Box<dyn LockGuard>> {
        check_lock(name, ttl)?;
        let deadline = Instant::now() + wait;
        // etcd leases are whole seconds.
        let ttl_secs = (ttl.as_millis().div_ceil(1000) as i64).max(1);
        let mut leases = self.client.lease_client();
        let grant = self
            .call("lock: lease grant", leases.grant(ttl_secs, None))
            .await?;
        let lease = grant.id();
        let renew_every = Duration::from_secs(grant.ttl().clamp(1, ttl_secs) as u64) / 3;
        let keeper = tokio::spawn(keep_lease_alive(self.clone(), lease, renew_every));
        match self.acquire(name, lease, deadline).await {
            Ok(create_revision) => Ok(Box::new(EtcdLock {
                store: self.clone(),
                name: name.to_string(),
                lease,
                create_revision,
                keeper,
                released: false,
            })),
            Err(e) => {
                keeper.abort();
                let _ = self.call("lock: lease revoke", leases.revoke(lease)).await;
                Err(e)
            }
        }
    }
}

impl EtcdStore {
    /// Creates the lock key bound to `lease`, waiting for the current holder
    /// to let go until `deadline`; returns the key's create revision.
    async fn acquire(&self, name: &str, lease: i64, deadline: Instant) -> TopoResult<i64> {
        let key = self.lock_key(name);
        let holder = format!(
            "pid {} on {}",
            std::process::id(),
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string())
        );
        loop {
            let txn = Txn::new()
                .when(vec![Compare::create_revision(
                    key.clone(),
                    CompareOp::Equal,
                    0,
                )])
                .and_then(vec![TxnOp::put(
                    key.clone(),
                    holder.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else(vec![TxnOp::get(key.clone(), None)]);
            let mut kv = self.client.kv_client();
            let resp = self.call("lock", kv.txn(txn)).await?;
            let revision = resp
                .header()
                .map(|h| h.revision())
                .ok_or_else(|| self.err("lock", "response without a header"))?;
            if resp.succeeded() {
                return Ok(revision);
            }
            if Instant::now() >= deadline {
                return Err(TopoError::LockTimeout(name.to_string()));
            }
            // Wait for the holder's key to go, watching from just after the
            // state we saw so a release in between is not missed.
            let released =
                tokio::time::timeout_at(deadline.into(), self.wait_for_delete(&key, revision + 1))
                    .await;
            if let Ok(Ok(false) | Err(_)) = released {
                // The watch broke: fall back to polling, gently.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl EtcdStore {
    /// Waits until `key` is deleted at or after `from_revision`; false when
    /// the watch ended without seeing that.
    async fn wait_for_delete(
        &self,
        key: &str,
        from_revision: i64,
    ) -> Result<bool, etcd_client::Error> {
        let mut client = self.client.watch_client();
        let (_watcher, mut stream) = client
            .watch(
                key,
                Some(WatchOptions::new().with_start_revision(from_revision)),
            )
            .await?;
        while let Some(resp) = stream.message().await? {
            if resp.canceled() {
                return Ok(false);
            }
            if resp
                .events()
                .iter()
                .any(|e| e.event_type() == EventType::Delete)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Renews `lease` until aborted; reconnects the keep-alive stream when it
/// breaks, and stops once etcd says the lease is gone.
async fn keep_lease_alive(store: EtcdStore, lease: i64, every: Duration) {
    let every = every.max(Duration::from_millis(100));
    loop {
        let mut leases = store.client.lease_client();
        let Ok(Ok((mut keeper, mut responses))) =
            tokio::time::timeout(REQUEST_TIMEOUT, leases.keep_alive(lease)).await
        else {
            tokio::time::sleep(every).await;
            continue;
        };
        loop {
            tokio::time::sleep(every).await;
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(REQUEST_TIMEOUT, responses.message()).await {
                Ok(Ok(Some(resp))) if resp.ttl() <= 0 => {
                    tracing::warn!(lease, "etcd lock lease expired before it could be renewed");
                    return;
                }
                Ok(Ok(Some(_))) => {}
                _ => break,
            }
        }
    }
}

struct WatchState {
    /// Kept so the watch stays registered as long as the stream lives.
    _watcher: etcd_client::Watcher,
    stream: etcd_client::WatchStream,
    pending: VecDeque<TopoResult<WatchEvent>>,
    finished: bool,
    store: EtcdStore,
}

impl WatchState {
    async fn next(mut self) -> Option<(TopoResult<WatchEvent>, WatchState)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((event, self));
            }
            if self.finished {
                return None;
            }
            match self.stream.message().await {
                Ok(Some(resp)) => {
                    for event in resp.events() {
                        let Some(kv) = event.kv() else { continue };
                        let key = self.store.strip_root(kv.key());
                        self.pending.push_back(Ok(match event.event_type() {
                            EventType::Put => WatchEvent::Put {
                                key,
                                value: EtcdStore::versioned(kv),
                            },
                            EventType::Delete => WatchEvent::Delete { key },
                        }));
                    }
                    if resp.canceled() {
                        self.finished = true;
                        self.pending.push_back(Err(self.store.err(
                            "watch",
                            format!("cancelled by the server: {}", resp.cancel_reason()),
                        )));
                    }
                }
                Ok(None) => {
                    self.finished = true;
                    self.pending
                        .push_back(Err(self.store.err("watch", "stream ended")));
                }
                Err(e) => {
                    self.finished = true;
                    self.pending.push_back(Err(self.store.err("watch", e)));
                }
            }
        }
    }
}

/// A held etcd lock: the key `{root}/locks/{name}` bound to a kept-alive lease.
struct EtcdLock {
    store: EtcdStore,
    name: String,
    lease: i64,
    create_revision: i64,
    keeper: JoinHandle<()>,
    released: bool,
}

impl EtcdLock {
    /// Deletes the key if it is still ours, then revokes the lease; true when
    /// the key was still ours.
    async fn release(
        store: EtcdStore,
        name: String,
        lease: i64,
        create_revision: i64,
    ) -> TopoResult<bool> {
        let key = store.lock_key(&name);
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                key.clone(),
                CompareOp::Equal,
                create_revision,
            )])
            .and_then(vec![TxnOp::delete(key, None)]);
        let mut kv = store.client.kv_client();
        let deleted = store.call("unlock", kv.txn(txn)).await?.succeeded();
        let mut leases = store.client.lease_client();
        // A lease that already expired cannot be revoked; that is fine.
        let _ = store
            .call("unlock: lease revoke", leases.revoke(lease))
            .await;
        Ok(deleted)
    }
}

#[async_trait]
impl LockGuard for EtcdLock {
    fn name(&self) -> &str {
        &self.name
    }

    async fn unlock(mut self: Box<Self>) -> TopoResult<()> {
        self.keeper.abort();
        self.released = true;
        let ours = Self::release(
            self.store.clone(),
            self.name.clone(),
            self.lease,
            self.create_revision,
        )
        .await?;
        if ours {
            Ok(())
        } else {
            Err(TopoError::Backend(format!(
                "lock {} was lost before unlock: its lease expired",
                self.name
            )))
        }
    }
}

impl Drop for EtcdLock {
    fn drop(&mut self) {
        self.keeper.abort();
        if self.released {
            return;
        }
        // Best effort: without a runtime the lease simply runs out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let release = Self::release(
                self.store.clone(),
                self.name.clone(),
                self.lease,
                self.create_revision,
            );
            runtime.spawn(async move {
                if let Err(e) = release.await {
                    tracing::warn!("releasing a dropped etcd lock failed: {e}");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_root;

    #[test]
    fn roots_are_normalized() {
        assert_eq!(normalize_root("/tessera").unwrap(), "/tessera");
        assert_eq!(normalize_root("/tessera/").unwrap(), "/tessera");
        assert_eq!(normalize_root("tessera").unwrap(), "/tessera");
        assert_eq!(normalize_root("/").unwrap(), "");
        assert_eq!(normalize_root("").unwrap(), "");
        assert!(normalize_root("/a\0").is_err());
    }
}
