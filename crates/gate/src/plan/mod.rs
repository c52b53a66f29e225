//! The planner for sharded keyspaces: resolves tables against the VSchema,
//! decides which shards a statement needs, and what the gate must do with
//! their answers.
