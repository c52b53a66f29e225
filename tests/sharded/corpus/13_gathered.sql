-- Queries the shards cannot answer in parts, answered over rows the gate
-- gathers first and one shard evaluates (see crates/gate/src/plan/materialize.rs).

-- derived tables whose rows on one shard need other shards' rows
SELECT COUNT(*) FROM (SELECT DISTINCT name FROM customer) AS names

SELECT t.name, t.n FROM (SELECT name, COUNT(*) AS n FROM customer GROUP BY name) AS t WHERE t.n > 3

SELECT COUNT(*) FROM (SELECT id FROM customer ORDER BY id LIMIT 5) AS firsts

-- ordered
SELECT firsts.id, firsts.score FROM (SELECT id, score FROM customer ORDER BY id DESC LIMIT 7) AS firsts ORDER BY firsts.score, firsts.id

SELECT d.city, d.n FROM (SELECT city, COUNT(*) AS n FROM customer GROUP BY city) AS d

SELECT d.city, d.n, d.total FROM (SELECT city, COUNT(*) AS n, SUM(balance) AS total, MAX(created) AS latest FROM customer GROUP BY city) AS d WHERE d.latest > '2020-06-01'

SELECT d.kind, COUNT(*) FROM (SELECT DISTINCT kind, n FROM event) AS d GROUP BY d.kind

SELECT MAX(d.n) FROM (SELECT city, COUNT(*) AS n FROM customer WHERE score > 20 GROUP BY city HAVING COUNT(*) > 1) AS d

-- ordered
SELECT d.city, p.title FROM (SELECT city, MAX(score) AS top FROM customer GROUP BY city) AS d JOIN product p ON p.price = d.top ORDER BY d.city, p.title

SELECT u.sku, u.total FROM (SELECT sku, SUM(qty) AS total FROM orders GROUP BY sku ORDER BY total DESC LIMIT 3) AS u

SELECT COUNT(*) FROM (SELECT id FROM customer WHERE id > 1000000) AS nothing

-- expressions around aggregates the merge does not evaluate
SELECT IFNULL(SUM(score), 0) FROM customer

SELECT COUNT(*) DIV 2, COUNT(*) % 2 FROM customer

SELECT city, UPPER(CONCAT(city, COUNT(*))) FROM customer GROUP BY city

SELECT COUNT(DISTINCT city) + 1 FROM customer

SELECT DISTINCT LOWER(city) FROM customer

SELECT city, IF(COUNT(*) > 3, 'many', 'few') AS size FROM customer WHERE score IS NOT NULL GROUP BY city

SELECT COUNT(*), GROUP_CONCAT(name ORDER BY name SEPARATOR '|') FROM customer WHERE score > 50 GROUP BY city

SELECT kind, CAST(SUM(n) AS CHAR) FROM event GROUP BY kind

-- ordered
SELECT id, score, RANK() OVER (ORDER BY score DESC, id) AS r FROM customer WHERE score IS NOT NULL ORDER BY r LIMIT 10

SELECT COUNT(*), ROUND(STDDEV_POP(balance), 4) FROM customer
