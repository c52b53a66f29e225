-- Derived tables (subqueries in FROM) over sharded tables: the whole query on
-- one shard when the derived table's query routes to one; scattered, with the
-- outer query merged in the gate, when each shard's part of the derived table
-- is complete (no LIMIT; aggregates and DISTINCT keyed by the vindex column).

-- ordered
SELECT x.id, x.score FROM (SELECT id, score FROM customer WHERE id = 30) AS x ORDER BY x.id

SELECT d.n, d.total FROM (SELECT COUNT(*) AS n, SUM(qty) AS total FROM orders WHERE customer_id = 12) AS d

SELECT * FROM (SELECT id, name FROM customer WHERE id IN (7, 30, 2)) AS d

SELECT x.id FROM (SELECT id, score FROM customer WHERE score > 90) AS x

SELECT x.id, x.score FROM (SELECT id, score FROM customer WHERE score > 50) AS x WHERE x.score < 80

SELECT COUNT(*) FROM (SELECT id FROM event WHERE kind = 'view') AS v

SELECT MAX(t.total), MIN(t.total), COUNT(*) FROM (SELECT customer_id, SUM(price) AS total FROM orders GROUP BY customer_id) AS t

-- ordered
SELECT t.customer_id, t.total FROM (SELECT customer_id, SUM(price) AS total FROM orders GROUP BY customer_id) AS t ORDER BY t.total DESC, t.customer_id LIMIT 5

SELECT t.n, COUNT(*) FROM (SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id) AS t GROUP BY t.n

SELECT AVG(t.n), SUM(t.n) / COUNT(*) FROM (SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id HAVING COUNT(*) > 1) AS t

SELECT COUNT(*), SUM(d.score) FROM (SELECT DISTINCT id, score FROM customer WHERE score IS NOT NULL) AS d

SELECT j.id, j.qty FROM (SELECT c.id, o.qty FROM customer c JOIN orders o ON c.id = o.customer_id WHERE o.qty > 5) AS j

SELECT COUNT(*) FROM (SELECT c.id, COUNT(o.id) AS n FROM customer c JOIN orders o ON c.id = o.customer_id GROUP BY c.id) AS per

SELECT COUNT(*) FROM (SELECT p.sku FROM product p WHERE p.price > 10) AS cheap

SELECT d.id FROM (SELECT id FROM customer WHERE id = 424242) AS d
