//! Vitess-style sequences: ids handed out from a sequence table in an
//! unsharded keyspace, reserved in cached blocks.
