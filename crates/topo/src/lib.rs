//! Topology: the versioned records that describe a Tessera cluster, the store
//! trait they live in, and its backends (embedded redb and etcd v3).

pub mod conformance;
pub mod error;
pub mod etcd;
mod keys;
pub mod local;
pub mod records;
pub mod store;
pub mod testutil;
pub mod topo;
pub mod vschema;

use std::path::Path;
use std::sync::Arc;

pub use error::{TopoError, TopoResult};
pub use etcd::EtcdStore;
pub use local::LocalStore;
pub use records::*;
pub use store::{Expect, LockGuard, Store, Versioned, WatchEvent, WatchStream};
pub use topo::Topo;

/// The etcd root used when a spec names none.
pub const DEFAULT_ETCD_ROOT: &str = "/tessera";

const SPEC_HELP: &str =
    "expected local:/path/topo.redb or etcd:http://host:port[,http://host:port...][?root=/prefix]";

/// Opens the store a `--topo` flag names: `local:/path/topo.redb`, or
/// `etcd:http://127.0.0.1:2379[,http://...][?root=/tessera]`.
pub async fn open_store(spec: &str) -> TopoResult<Arc<dyn Store>> {
    let bad =
        |why: &str| TopoError::Backend(format!("bad topology spec {spec:?}: {why}; {SPEC_HELP}"));
    if let Some(path) = spec.strip_prefix("local:") {
        if path.is_empty() {
            return Err(bad("no file path"));
        }
        return Ok(Arc::new(LocalStore::open(Path::new(path))?));
    }
    if let Some(rest) = spec.strip_prefix("etcd:") {
        let (endpoints, query) = match rest.split_once('?') {
            Some((endpoints, query)) => (endpoints, Some(query)),
            None => (rest, None),
        };
        let mut root = DEFAULT_ETCD_ROOT.to_string();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some(("root", value)) => root = value.to_string(),
                _ => {
                    return Err(bad(&format!(
                        "unknown option {pair:?} (only root=... is known)"
                    )));
                }
            }
        }
        let endpoints: Vec<String> = endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        if endpoints.is_empty() {
            return Err(bad("no etcd endpoints"));
        }
        return Ok(Arc::new(EtcdStore::connect(&endpoints, &root).await?));
    }
    Err(bad("unknown kind of store"))
}
