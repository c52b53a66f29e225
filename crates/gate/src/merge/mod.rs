//! Combines the results several shards returned for one scattered query into
//! the result a single MariaDB would have given: grouping and aggregates,
//! HAVING, DISTINCT, ORDER BY with each column's collation, LIMIT/OFFSET.
