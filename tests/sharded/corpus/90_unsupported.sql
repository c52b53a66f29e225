-- Constructs the sharded planner does not support yet: each must be refused
-- with ERROR 1235 naming it (never answered wrongly). When one becomes
-- supported, move its case back to the file of its kind.

-- error 1235
SELECT sku FROM orders WHERE customer_id = 12 UNION SELECT sku FROM product WHERE price > 40

-- expressions around aggregates the merge does not evaluate, over a join
-- error 1235
SELECT COALESCE(MAX(score), -1), IFNULL(SUM(qty), 0) FROM customer JOIN orders ON customer.id = orders.customer_id WHERE orders.qty > 1

-- aggregates over a cross-shard join whose argument reads both tables
-- error 1235
SELECT SUM(c.score + e.n) FROM customer c JOIN event e ON c.id = e.id

-- error 1235
SELECT c.name, e.kind, COUNT(*) FROM customer c JOIN event e ON c.score = e.n GROUP BY CONCAT(c.name, e.kind)

-- error 1235
SELECT DISTINCT * FROM customer c JOIN event e ON c.score = e.n

-- HAVING filtering rows of a join that does not aggregate
-- error 1235
SELECT e.kind FROM customer c JOIN event e ON c.score = e.n HAVING e.kind = 'click'

-- a derived table over sharded tables joined to a sharded table
-- error 1235
SELECT d.id FROM (SELECT id FROM customer) AS d JOIN orders o ON o.customer_id = d.id

-- a LEFT JOIN run in the gate whose WHERE reads both tables after NULL extension
-- error 1235
SELECT c.id FROM customer c LEFT JOIN event e ON c.score = e.n WHERE c.id < e.id OR e.id IS NULL

-- a LEFT JOIN run in the gate whose ON compares the tables other than by equality
-- error 1235
SELECT c.id FROM customer c LEFT JOIN event e ON c.score = e.n AND c.id < e.id

-- an outer join run in the gate, in parentheses
-- error 1235
SELECT c.id, e.id FROM (customer c LEFT JOIN event e ON c.score = e.n)
