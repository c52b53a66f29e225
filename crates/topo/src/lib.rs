//! Topology: the versioned records that describe a Tessera cluster, the store
//! trait they live in, and its backends (embedded redb and etcd v3).

pub mod error;
pub mod records;
pub mod store;
pub mod topo;

pub use error::{TopoError, TopoResult};
pub use records::*;
pub use store::{Expect, LockGuard, Store, Versioned, WatchEvent, WatchStream};
pub use topo::Topo;
