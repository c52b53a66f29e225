-- Constructs the sharded planner does not support yet: each must be refused
-- with ERROR 1235 naming it (never answered wrongly). When one becomes
-- supported, move its case back to the file of its kind.

-- expressions around aggregates the gate does not evaluate
-- error 1235
SELECT IFNULL(SUM(score), 0) FROM customer

-- error 1235
SELECT COUNT(*) DIV 2, COUNT(*) % 2 FROM customer

-- error 1235
SELECT city, UPPER(CONCAT(city, COUNT(*))) FROM customer GROUP BY city

-- error 1235
SELECT COUNT(DISTINCT city) + 1 FROM customer

-- error 1235
SELECT DISTINCT LOWER(city) FROM customer

-- error 1235
SELECT COUNT(*) FROM (SELECT DISTINCT name FROM customer) AS names

-- error 1235
SELECT sku FROM orders WHERE customer_id = 12 UNION SELECT sku FROM product WHERE price > 40

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

-- error 1235
SELECT t.name, t.n FROM (SELECT name, COUNT(*) AS n FROM customer GROUP BY name) AS t WHERE t.n > 3

-- derived tables whose rows on one shard need other shards' rows
-- error 1235
SELECT COUNT(*) FROM (SELECT id FROM customer ORDER BY id LIMIT 5) AS firsts

-- error 1235
SELECT d.city, d.n FROM (SELECT city, COUNT(*) AS n FROM customer GROUP BY city) AS d

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
