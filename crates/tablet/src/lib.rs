//! The tablet agent: runs beside one mysqld, initialises, starts, watches and
//! restarts it, configures replication, and reports health. Control plane
//! only: queries go from the gate straight to mysqld.

pub mod agent;
pub mod api;
pub mod health;
mod http;
pub mod mysqld;
pub mod replication;

pub use agent::{TabletAgent, TabletConfig, run_tablet_process};
pub use api::AgentClient;
pub use mysqld::{Credentials, Mysqld, MysqldConfig};
