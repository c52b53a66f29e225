//! Tracks the table schemas (columns, types, collations) of every keyspace,
//! read from the tablets, so the planner can expand `SELECT *` and plan joins.
