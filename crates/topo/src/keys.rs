//! Checks on the keys, prefixes and lock names callers hand to a store, shared
//! by every backend so that bad input fails the same way everywhere.

use std::time::Duration;

use crate::{TopoError, TopoResult};

/// Keys are absolute `/`-separated paths; rejecting anything else keeps an
/// etcd root prefix and the key from running into each other.
pub(crate) fn check_key(key: &str) -> TopoResult<()> {
    if key.is_empty() || !key.starts_with('/') {
        return Err(TopoError::Backend(format!(
            "bad topology key {key:?}: keys are paths starting with '/'"
        )));
    }
    if key.contains('\0') {
        return Err(TopoError::Backend(format!(
            "bad topology key {key:?}: NUL bytes are not allowed"
        )));
    }
    Ok(())
}

/// A prefix is either empty (everything) or the start of a key.
pub(crate) fn check_prefix(prefix: &str) -> TopoResult<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_key(prefix)
}

pub(crate) fn check_lock(name: &str, ttl: Duration) -> TopoResult<()> {
    if name.is_empty() || name.contains('\0') {
        return Err(TopoError::Backend(format!("bad lock name {name:?}")));
    }
    if ttl.is_zero() {
        return Err(TopoError::Backend(format!(
            "lock {name}: ttl must be greater than zero"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_relative_and_empty_keys() {
        assert!(check_key("/global/x").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("global/x").is_err());
        assert!(check_key("/a\0b").is_err());
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("x").is_err());
        assert!(check_lock("", Duration::from_secs(1)).is_err());
        assert!(check_lock("a", Duration::ZERO).is_err());
    }
}
