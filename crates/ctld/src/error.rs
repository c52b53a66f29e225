//! Errors of ctld operations, classified so the HTTP API can tell a caller's
//! mistake (4xx) from a failure of the cluster (5xx).

use thiserror::Error;

/// Raised by `ops` inside an `anyhow::Error`; the HTTP layer downcasts it to
/// pick the status code. Anything else becomes a 500.
#[derive(Debug, Error)]
pub enum CtldError {
    /// The request itself is wrong (bad alias, bad JSON, wrong shard).
    #[error("{0}")]
    BadRequest(String),
    /// A keyspace, shard or tablet the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The cluster is not in a state that allows the request (no primary,
    /// shard locked by someone else).
    #[error("{0}")]
    Conflict(String),
    /// A tablet agent the request needs did not answer or refused.
    #[error("{0}")]
    Tablet(String),
    /// The ctld was started read-only.
    #[error("{0}")]
    Forbidden(String),
}

pub fn bad_request(msg: impl Into<String>) -> anyhow::Error {
    CtldError::BadRequest(msg.into()).into()
}

pub fn not_found(msg: impl Into<String>) -> anyhow::Error {
    CtldError::NotFound(msg.into()).into()
}

pub fn conflict(msg: impl Into<String>) -> anyhow::Error {
    CtldError::Conflict(msg.into()).into()
}

pub fn tablet_failed(msg: impl Into<String>) -> anyhow::Error {
    CtldError::Tablet(msg.into()).into()
}
