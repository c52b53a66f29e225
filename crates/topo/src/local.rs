//! The embedded topology store: one redb file, in-process watches and locks.
//! It is what `tessera local up` runs on, where every component lives in one
//! process, so watches and locks only have to work inside that process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::keys::{check_key, check_lock, check_prefix};
use crate::{Expect, LockGuard, Store, TopoError, TopoResult, Versioned, WatchEvent, WatchStream};

/// key -> (version, value).
const NODES: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("nodes");
/// Store-wide counters; `revision` is the last version handed out.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";

/// How long `open` keeps retrying while a previous handle on the same file is
/// still being closed by another task.
const REOPEN_PATIENCE: Duration = Duration::from_secs(5);

/// A topology store in one redb file. Clones share the file, the watchers and
/// the lock table; opening the same path twice in one process also returns
/// the same store, because redb allows one handle per file.
#[derive(Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: Database,
    /// Held across each write's commit and the delivery of its event, so
    /// watchers see commits in the order they happened.
    watchers: Mutex<Vec<Watcher>>,
    locks: Mutex<HashMap<String, LockHolder>>,
    lock_released: Notify,
    next_lock_token: AtomicU64,
}

struct Watcher {
    prefix: String,
    events: mpsc::UnboundedSender<TopoResult<WatchEvent>>,
}

struct LockHolder {
    token: u64,
    expires: Instant,
}

enum Write<'a> {
    Put(&'a [u8]),
    Delete,
}

/// Stores opened in this process, by canonical path.
fn open_stores() -> &'static Mutex<HashMap<PathBuf, Weak<Inner>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// A poisoned mutex only means another thread panicked mid-update of plain
/// data that stays consistent, so carry on with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LocalStore {
    /// Opens the store at `path`, creating the file (and its directory) if
    /// needed.
    pub fn open(path: &Path) -> TopoResult<LocalStore> {
        let path = canonical(path)?;
        let mut open = lock(open_stores());
        if let Some(inner) = open.get(&path).and_then(Weak::upgrade) {
            return Ok(LocalStore { inner });
        }
        let db = open_database(&path)?;
        let inner = Arc::new(Inner {
            path: path.clone(),
            db,
            watchers: Mutex::new(Vec::new()),
            locks: Mutex::new(HashMap::new()),
            lock_released: Notify::new(),
            next_lock_token: AtomicU64::new(1),
        });
        inner.init_tables()?;
        open.retain(|_, weak| weak.strong_count() > 0);
        open.insert(path, Arc::downgrade(&inner));
        Ok(LocalStore { inner })
    }

    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn blocking<T, F>(&self, job: F) -> TopoResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> TopoResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || job(&inner))
            .await
            .map_err(|e| TopoError::Backend(format!("local topology task failed: {e}")))?
    }
}

/// The path made absolute, so two spellings of one file share one handle.
fn canonical(path: &Path) -> TopoResult<PathBuf> {
    let file_name = path.file_name().ok_or_else(|| {
        TopoError::Backend(format!(
            "local topology path {} does not name a file",
            path.display()
        ))
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| {
        TopoError::Backend(format!(
            "cannot create directory {} for the local topology: {e}",
            parent.display()
        ))
    })?;
    let parent = parent
        .canonicalize()
        .map_err(|e| TopoError::Backend(format!("cannot resolve {}: {e}", parent.display())))?;
    Ok(parent.join(file_name))
}

fn open_database(path: &Path) -> TopoResult<Database> {
    let started = Instant::now();
    loop {
        match Database::create(path) {
            Ok(db) => return Ok(db),
            // The last handle of this process may still be closing on another
            // thread; a handle held by another process never goes away.
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if started.elapsed() < REOPEN_PATIENCE =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(TopoError::Backend(format!(
                    "local topology {} is in use by another process",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(TopoError::Backend(format!(
                    "cannot open local topology {}: {e}",
                    path.display()
                )));
            }
        }
    }
}

impl Inner {
    fn err(&self, e: impl std::fmt::Display) -> TopoError {
        TopoError::Backend(format!("local topology {}: {e}", self.path.display()))
    }

    fn init_tables(&self) -> TopoResult<()> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.open_table(NODES).map_err(|e| self.err(e))?;
        txn.open_table(META).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    fn get(&self, key: &str) -> TopoResult<Option<Versioned>> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let nodes = txn.open_table(NODES).map_err(|e| self.err(e))?;
        let found = nodes.get(key).map_err(|e| self.err(e))?;
        Ok(found.map(|g| {
            let (version, value) = g.value();
            Versioned {
                value: value.to_vec(),
                version,
            }
        }))
    }

    fn list(&self, prefix: &str) -> TopoResult<Vec<(String, Versioned)>> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let nodes = txn.open_table(NODES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in nodes.range(prefix..).map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            let (version, value) = v.value();
            out.push((
                key.to_string(),
                Versioned {
                    value: value.to_vec(),
                    version,
                },
            ));
        }
        Ok(out)
    }

    /// Applies one write if `expect` holds, and tells the watchers.
    fn write(&self, key: &str, write: Write<'_>, expect: Expect) -> TopoResult<u64> {
        let mut watchers = lock(&self.watchers);
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let applied = (|| {
            let mut nodes = txn.open_table(NODES).map_err(|e| self.err(e))?;
            let current = nodes
                .get(key)
                .map_err(|e| self.err(e))?
                .map(|g| g.value().0);
            check_expect(key, expect, current, &write)?;
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let last = meta
                .get(REVISION)
                .map_err(|e| self.err(e))?
                .map(|g| g.value())
                .unwrap_or(0);
            let revision = last + 1;
            meta.insert(REVISION, revision).map_err(|e| self.err(e))?;
            let event = match write {
                Write::Put(value) => {
                    nodes
                        .insert(key, (revision, value))
                        .map_err(|e| self.err(e))?;
                    WatchEvent::Put {
                        key: key.to_string(),
                        value: Versioned {
                            value: value.to_vec(),
                            version: revision,
                        },
                    }
                }
                Write::Delete => {
                    nodes.remove(key).map_err(|e| self.err(e))?;
                    WatchEvent::Delete {
                        key: key.to_string(),
                    }
                }
            };
            Ok((revision, event))
        })();
        let (revision, event) = match applied {
            Ok(done) => done,
            Err(e) => {
                txn.abort().map_err(|abort| self.err(abort))?;
                return Err(e);
            }
        };
        txn.commit().map_err(|e| self.err(e))?;
        watchers
            .retain(|w| !key.starts_with(&w.prefix) || w.events.send(Ok(event.clone())).is_ok());
        Ok(revision)
    }

    fn add_watcher(&self, prefix: String) -> mpsc::UnboundedReceiver<TopoResult<WatchEvent>> {
        let (events, receiver) = mpsc::unbounded_channel();
        let mut watchers = lock(&self.watchers);
        watchers.retain(|w| !w.events.is_closed());
        watchers.push(Watcher { prefix, events });
        receiver
    }
}

fn check_expect(
    key: &str,
    expect: Expect,
    current: Option<u64>,
    write: &Write<'_>,
) -> TopoResult<()> {
    match (expect, current) {
        (_, None) if matches!(write, Write::Delete) => Err(TopoError::NotFound(key.to_string())),
        (Expect::Any, _) => Ok(()),
        (Expect::Absent, None) => Ok(()),
        (Expect::Absent, Some(_)) => Err(TopoError::AlreadyExists(key.to_string())),
        (Expect::Version(_), None) => Err(TopoError::NotFound(key.to_string())),
        (Expect::Version(want), Some(found)) if want == found => Ok(()),
        (Expect::Version(want), Some(found)) => Err(TopoError::BadVersion {
            key: key.to_string(),
            expected: Some(want),
            found: Some(found),
        }),
    }
}

#[async_trait]
impl Store for LocalStore {
    async fn get(&self, key: &str) -> TopoResult<Option<Versioned>> {
        check_key(key)?;
        let key = key.to_string();
        self.blocking(move |inner| inner.get(&key)).await
    }

    async fn put(&self, key: &str, value: &[u8], expect: Expect) -> TopoResult<u64> {
        check_key(key)?;
        let key = key.to_string();
        let value = value.to_vec();
        self.blocking(move |inner| inner.write(&key, Write::Put(&value), expect))
            .await
    }

    async fn delete(&self, key: &str, expect: Expect) -> TopoResult<()> {
        check_key(key)?;
        let key = key.to_string();
        self.blocking(move |inner| inner.write(&key, Write::Delete, expect).map(|_| ()))
            .await
    }

    async fn list(&self, prefix: &str) -> TopoResult<Vec<(String, Versioned)>> {
        check_prefix(prefix)?;
        let prefix = prefix.to_string();
        self.blocking(move |inner| inner.list(&prefix)).await
    }

    async fn watch(&self, prefix: &str) -> TopoResult<WatchStream> {
        check_prefix(prefix)?;
        let prefix = prefix.to_string();
        let receiver = self
            .blocking(move |inner| Ok(inner.add_watcher(prefix)))
            .await?;
        Ok(Box::pin(UnboundedReceiverStream::new(receiver)))
    }

    async fn lock(
        &self,
        name: &str,
        ttl: Duration,
        wait: Duration,
    ) -> TopoResult<Box<dyn LockGuard>> {
        check_lock(name, ttl)?;
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking at the table, so a release between the
            // look and the wait still wakes us.
            let released = self.inner.lock_released.notified();
            tokio::pin!(released);
            released.as_mut().enable();

            let holder_expires = {
                let mut locks = lock(&self.inner.locks);
                let now = Instant::now();
                match locks.get(name) {
                    Some(holder) if holder.expires > now => holder.expires,
                    _ => {
                        let token = self.inner.next_lock_token.fetch_add(1, Ordering::Relaxed);
                        locks.insert(
                            name.to_string(),
                            LockHolder {
                                token,
                                expires: now + ttl,
                            },
                        );
                        return Ok(Box::new(LocalLock::new(&self.inner, name, token, ttl)));
                    }
                }
            };
            if Instant::now() >= deadline {
                return Err(TopoError::LockTimeout(name.to_string()));
            }
            let wake = deadline.min(holder_expires);
            let _ = tokio::time::timeout_at(wake.into(), released).await;
        }
    }
}

/// A held in-process lock; a background task pushes its expiry forward.
struct LocalLock {
    inner: Arc<Inner>,
    name: String,
    token: u64,
    renewer: JoinHandle<()>,
    released: bool,
}

impl LocalLock {
    fn new(inner: &Arc<Inner>, name: &str, token: u64, ttl: Duration) -> Self {
        let weak = Arc::downgrade(inner);
        let key = name.to_string();
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                let Some(inner) = weak.upgrade() else { return };
                let mut locks = lock(&inner.locks);
                match locks.get_mut(&key) {
                    Some(holder) if holder.token == token => holder.expires = Instant::now() + ttl,
                    // Expired and taken by someone else: nothing left to renew.
                    _ => return,
                }
            }
        });
        Self {
            inner: inner.clone(),
            name: name.to_string(),
            token,
            renewer,
            released: false,
        }
    }

    /// Frees the lock; false when it had already expired and moved on.
    fn release(&mut self) -> bool {
        self.renewer.abort();
        self.released = true;
        let mut locks = lock(&self.inner.locks);
        let held = matches!(locks.get(&self.name), Some(h) if h.token == self.token);
        if held {
            locks.remove(&self.name);
        }
        drop(locks);
        self.inner.lock_released.notify_waiters();
        held
    }
}

#[async_trait]
impl LockGuard for LocalLock {
    fn name(&self) -> &str {
        &self.name
    }

    async fn unlock(mut self: Box<Self>) -> TopoResult<()> {
        if self.release() {
            Ok(())
        } else {
            Err(TopoError::Backend(format!(
                "lock {} was lost before unlock: its lease expired",
                self.name
            )))
        }
    }
}

impl Drop for LocalLock {
    fn drop(&mut self) {
        if !self.released {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lock_of_a_dead_holder_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("t.redb")).unwrap();
        // A holder that stopped renewing: an entry with no renewer behind it.
        lock(&store.inner.locks).insert(
            "shard".to_string(),
            LockHolder {
                token: 0,
                expires: Instant::now() + Duration::from_millis(500),
            },
        );
        let ttl = Duration::from_secs(5);
        assert!(matches!(
            store.lock("shard", ttl, Duration::from_millis(50)).await,
            Err(TopoError::LockTimeout(_))
        ));
        let guard = store
            .lock("shard", ttl, Duration::from_secs(10))
            .await
            .expect("the stale holder expires");
        guard.unlock().await.unwrap();
    }

    #[tokio::test]
    async fn unlock_after_losing_the_lock_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("t.redb")).unwrap();
        let guard = store
            .lock("shard", Duration::from_secs(5), Duration::ZERO)
            .await
            .unwrap();
        // As if the lease had run out and someone else took the lock.
        lock(&store.inner.locks).get_mut("shard").unwrap().token = u64::MAX;
        let err = guard.unlock().await.unwrap_err();
        assert!(err.to_string().contains("lost"), "{err}");
        assert!(
            lock(&store.inner.locks).contains_key("shard"),
            "the new holder keeps the lock"
        );
    }
}
