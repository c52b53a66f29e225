-- Constructs the sharded planner does not support yet: each must be refused
-- with ERROR 1235 naming it (never answered wrongly). When one becomes
-- supported, move its case back to the file of its kind.

-- a subquery correlated to a sharded table it is not co-located with
-- error 1235
SELECT c.id FROM customer c WHERE EXISTS (SELECT 1 FROM event e WHERE e.n = c.score)

-- error 1235
SELECT c.id, (SELECT COUNT(*) FROM event e WHERE e.n = c.score) FROM customer c

-- a locking read the gate would have to answer over gathered rows
-- error 1235
SELECT SUM(c.score + e.n) FROM customer c JOIN event e ON c.id = e.id FOR UPDATE
