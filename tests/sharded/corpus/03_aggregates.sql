-- Aggregates without GROUP BY: merged across shards into one row.

SELECT COUNT(*) FROM customer

SELECT COUNT(*), COUNT(score), COUNT(name), COUNT(city) FROM customer

SELECT SUM(score), MIN(score), MAX(score) FROM customer

SELECT AVG(score) FROM customer

SELECT AVG(balance), SUM(balance) FROM customer

SELECT MIN(balance), MAX(balance), MIN(created), MAX(created) FROM customer

SELECT MIN(name), MAX(name) FROM customer

SELECT MIN(kind), MAX(kind) FROM event

SELECT COUNT(DISTINCT city) FROM customer


SELECT COUNT(DISTINCT kind) FROM event


SELECT SUM(qty), AVG(qty), SUM(price), AVG(price), MAX(qty * price) FROM orders

SELECT SUM(id), AVG(id) FROM customer

SELECT COUNT(*) AS n, SUM(n) AS total FROM event

SELECT COUNT(*) FROM customer WHERE city = 'berlin'

SELECT COUNT(*), SUM(score) FROM customer WHERE score BETWEEN 0 AND 50


-- aggregates by vindex: one shard
SELECT COUNT(*), SUM(qty), MAX(price) FROM orders WHERE customer_id = 12

SELECT COUNT(*) FROM customer WHERE id IN (1, 2, 3, 4, 5)

-- over no row: COUNT is 0, the others NULL
SELECT COUNT(*), SUM(score), MIN(score), MAX(name), AVG(balance) FROM customer WHERE score > 1000

SELECT COUNT(*), COUNT(DISTINCT kind), SUM(n) FROM event WHERE id = 6

SELECT COUNT(score) FROM customer WHERE score IS NULL

SELECT MAX(id) FROM orders

SELECT MIN(sku), MAX(sku) FROM orders

-- several DISTINCT aggregates over different columns: the shards group by
-- each argument too
SELECT COUNT(DISTINCT name), COUNT(DISTINCT score) FROM customer

SELECT COUNT(DISTINCT customer_id), COUNT(DISTINCT sku), COUNT(*), SUM(qty), MAX(price) FROM orders

SELECT COUNT(DISTINCT city), SUM(DISTINCT score), AVG(balance), MIN(name) FROM customer

SELECT kind, COUNT(DISTINCT n), COUNT(DISTINCT id), COUNT(*) FROM event GROUP BY kind

SELECT COUNT(DISTINCT name), COUNT(DISTINCT score), COUNT(*) FROM customer GROUP BY city

SELECT COUNT(DISTINCT kind), COUNT(DISTINCT n), SUM(n) FROM event WHERE id > 5

SELECT COUNT(DISTINCT name), COUNT(DISTINCT city) FROM customer WHERE score > 1000
