//! The tablet agent: runs beside one mysqld, initialises, starts, watches and
//! restarts it, configures replication, and reports health. Control plane
//! only: queries go from the gate straight to mysqld.

pub mod api;
pub mod mysqld;

pub use mysqld::{Credentials, Mysqld, MysqldConfig};
