//! Errors of the topology store.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TopoError {
    #[error("topology node not found: {0}")]
    NotFound(String),
    #[error("topology node already exists: {0}")]
    AlreadyExists(String),
    /// A compare-and-swap lost: someone else wrote the node since it was read.
    #[error(
        "topology node {key} changed concurrently (expected version {expected:?}, found {found:?})"
    )]
    BadVersion {
        key: String,
        expected: Option<u64>,
        found: Option<u64>,
    },
    #[error("lock {0} is held by someone else and was not released in time")]
    LockTimeout(String),
    #[error("bad topology record at {key}: {message}")]
    Decode { key: String, message: String },
    #[error("topology backend error: {0}")]
    Backend(String),
}

pub type TopoResult<T> = Result<T, TopoError>;
