-- Constructs the sharded planner does not support yet: each must be refused
-- with ERROR 1235 naming it (never answered wrongly). When one becomes
-- supported, move its case back to the file of its kind.

-- a locking read the gate would have to answer over gathered rows
-- error 1235
SELECT SUM(c.score + e.n) FROM customer c JOIN event e ON c.id = e.id FOR UPDATE

-- SELECT ... INTO over several shards
-- error 1235
SELECT COUNT(*) INTO @customers FROM customer
