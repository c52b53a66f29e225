-- GROUP BY merged in the gate, with HAVING and ORDER BY on aggregates.

SELECT score, COUNT(*) FROM customer GROUP BY score

SELECT name, COUNT(*), SUM(score) FROM customer GROUP BY name

SELECT kind, COUNT(*), SUM(n), MIN(n), MAX(n) FROM event GROUP BY kind

SELECT kind, AVG(n) FROM event GROUP BY kind

SELECT sku, COUNT(*), SUM(qty), AVG(price) FROM orders GROUP BY sku

SELECT customer_id, COUNT(*), SUM(price) FROM orders GROUP BY customer_id

SELECT YEAR(created), COUNT(*) FROM customer GROUP BY YEAR(created)

-- a case-insensitive key: counts per group, the group's spelling not shown
SELECT COUNT(*) FROM customer GROUP BY city

SELECT LOWER(city), COUNT(*), MAX(score) FROM customer GROUP BY city

SELECT COUNT(DISTINCT city), name FROM customer GROUP BY name

-- two keys
SELECT sku, qty, COUNT(*) FROM orders GROUP BY sku, qty

SELECT name, score, COUNT(*) FROM customer GROUP BY name, score

SELECT kind, n, COUNT(*) FROM event GROUP BY n, kind

-- ordered
SELECT score, COUNT(*) FROM customer GROUP BY score ORDER BY score

-- ordered
SELECT name, COUNT(*) FROM customer GROUP BY name ORDER BY COUNT(*) DESC, name

-- ordered
SELECT sku, SUM(qty) AS total FROM orders GROUP BY sku ORDER BY total DESC, sku

-- ordered
SELECT kind, COUNT(*) FROM event GROUP BY kind ORDER BY kind DESC

-- ordered
SELECT customer_id, SUM(price) FROM orders GROUP BY customer_id ORDER BY SUM(price) DESC, customer_id LIMIT 5

-- ordered
SELECT name, AVG(score) FROM customer GROUP BY name ORDER BY AVG(score), name LIMIT 5 OFFSET 3

-- ordered
SELECT sku, qty, COUNT(*) FROM orders GROUP BY sku, qty ORDER BY sku, qty DESC LIMIT 20

SELECT name, COUNT(*) FROM customer GROUP BY name HAVING COUNT(*) > 4

SELECT sku, SUM(qty) FROM orders GROUP BY sku HAVING SUM(qty) >= 50 AND COUNT(*) > 2

SELECT kind FROM event GROUP BY kind HAVING MAX(n) > 45

SELECT score, COUNT(*) AS c FROM customer GROUP BY score HAVING c > 1

-- ordered
SELECT name, COUNT(*) FROM customer WHERE score > 0 GROUP BY name HAVING COUNT(*) >= 2 ORDER BY name

-- by vindex: one shard
SELECT customer_id, COUNT(*) FROM orders WHERE customer_id = 12 GROUP BY customer_id

SELECT sku, COUNT(*) FROM orders WHERE customer_id IN (12, 13, 14) GROUP BY sku

-- an empty grouped result has no row
SELECT name, COUNT(*) FROM customer WHERE score > 1000 GROUP BY name

-- grouped by the vindex column (each group lives in one shard)
SELECT id, COUNT(*) FROM customer GROUP BY id

-- HAVING without GROUP BY or aggregates filters rows one by one.
SELECT name, score FROM customer HAVING score > 40

SELECT id, score AS s FROM customer HAVING s < 10 ORDER BY id

SELECT COUNT(*) FROM customer HAVING COUNT(*) > 3

SELECT 1 AS one FROM customer HAVING MAX(score) > 10
