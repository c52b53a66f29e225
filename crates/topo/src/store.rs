//! The store trait every topology backend implements. Keys are `/`-separated
//! paths; values are opaque bytes; every node carries a version that changes on
//! each write, so every update can be a compare-and-swap.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;

use crate::TopoResult;

/// A node's value with the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    /// Changes on every write of the node; never 0 for an existing node.
    pub version: u64,
}

/// The condition a write requires of the node's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there.
    Any,
    /// The node must not exist (create).
    Absent,
    /// The node must exist at exactly this version.
    Version(u64),
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Put { key: String, value: Versioned },
    Delete { key: String },
}

pub type WatchStream = Pin<Box<dyn Stream<Item = TopoResult<WatchEvent>> + Send>>;

/// A held lock. The lease is kept alive in the background until `unlock` is
/// called or the guard is dropped (drop releases it best-effort).
#[async_trait]
pub trait LockGuard: Send + Sync {
    /// The lock's name, as given to `Store::lock`.
    fn name(&self) -> &str;
    /// Releases the lock.
    async fn unlock(self: Box<Self>) -> TopoResult<()>;
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> TopoResult<Option<Versioned>>;
    /// Writes `value` if `expect` holds; returns the new version.
    /// Fails with `AlreadyExists` (Absent), `NotFound` (Version on a missing
    /// node) or `BadVersion` (Version mismatch).
    async fn put(&self, key: &str, value: &[u8], expect: Expect) -> TopoResult<u64>;
    /// Deletes the node if `expect` holds; `NotFound` when it does not exist.
    async fn delete(&self, key: &str, expect: Expect) -> TopoResult<()>;
    /// Every node whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> TopoResult<Vec<(String, Versioned)>>;
    /// Changes to nodes under `prefix` from now on, in the order they happened.
    async fn watch(&self, prefix: &str) -> TopoResult<WatchStream>;
    /// Takes an exclusive, named lock whose lease expires `ttl` after its
    /// holder dies; waits until `wait` for the current holder to release it.
    async fn lock(
        &self,
        name: &str,
        ttl: Duration,
        wait: Duration,
    ) -> TopoResult<Box<dyn LockGuard>>;
}
