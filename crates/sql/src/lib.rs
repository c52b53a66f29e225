//! SQL text handling for the gate: a fast lexer-based statement classifier,
//! statement splitting and the rewrites the gate needs on the query path.

mod classify;
mod keyword;
pub mod lexer;
mod rewrite;

pub use classify::{Classified, Flags, StatementKind, classify, split_statements, use_target};
pub use rewrite::rewrite_last_insert_id;
