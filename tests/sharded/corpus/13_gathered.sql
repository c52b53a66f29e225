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

-- expressions around aggregates the merge does not evaluate, over a join
SELECT COALESCE(MAX(score), -1), IFNULL(SUM(qty), 0) FROM customer JOIN orders ON customer.id = orders.customer_id WHERE orders.qty > 1

-- joins the gate's nested loop does not answer: both tables' rows gathered
SELECT SUM(c.score + e.n) FROM customer c JOIN event e ON c.id = e.id

SELECT CONCAT(c.name, e.kind), COUNT(*) FROM customer c JOIN event e ON c.score = e.n GROUP BY CONCAT(c.name, e.kind)

SELECT DISTINCT * FROM customer c JOIN event e ON c.score = e.n

SELECT e.kind FROM customer c JOIN event e ON c.score = e.n HAVING e.kind = 'click'

SELECT d.id FROM (SELECT id FROM customer) AS d JOIN orders o ON o.customer_id = d.id

SELECT c.id FROM customer c LEFT JOIN event e ON c.score = e.n WHERE c.id < e.id OR e.id IS NULL

SELECT c.id FROM customer c LEFT JOIN event e ON c.score = e.n AND c.id < e.id

SELECT c.id, e.id FROM (customer c LEFT JOIN event e ON c.score = e.n)

SELECT c.id, e.id FROM customer c JOIN event e ON c.score < e.n WHERE c.id < 40 AND e.kind = 'view' AND e.n > 90

SELECT COUNT(DISTINCT o.sku), SUM(o.qty * p.price) FROM customer c JOIN orders o ON o.customer_id = c.id JOIN event e ON e.n = o.qty JOIN product p ON p.sku = o.sku WHERE e.kind <> 'view' GROUP BY c.city

SELECT t.city, t.n, e.kind FROM (SELECT city, COUNT(*) AS n FROM customer GROUP BY city) AS t JOIN event e ON e.n = t.n

-- UNIONs the merge does not answer: each branch's rows gathered
SELECT sku FROM orders WHERE customer_id = 12 UNION SELECT sku FROM product WHERE price > 40

-- ordered
SELECT sku FROM orders WHERE qty > 5 UNION ALL SELECT sku FROM product ORDER BY sku LIMIT 12

SELECT city, COUNT(*) FROM customer GROUP BY city UNION SELECT kind, SUM(n) FROM event GROUP BY kind

SELECT score FROM customer INTERSECT SELECT n FROM event

SELECT score FROM customer EXCEPT SELECT n FROM event

SELECT id FROM customer WHERE score > 90 UNION ALL SELECT id FROM event WHERE n > 90 UNION SELECT customer_id FROM orders WHERE qty > 9

-- ordered
(SELECT id, score FROM customer ORDER BY score DESC, id LIMIT 3) UNION ALL (SELECT id, n FROM event ORDER BY n, id LIMIT 2) ORDER BY 2, 1

-- subqueries the gate cannot run first (correlated, or outside WHERE and
-- not co-located): every sharded table's rows gathered
SELECT c.id FROM customer c WHERE EXISTS (SELECT 1 FROM event e WHERE e.n = c.score)

SELECT c.id, (SELECT COUNT(*) FROM event e WHERE e.n = c.score) FROM customer c

SELECT c.id, c.score FROM customer c WHERE c.id < 60 AND c.score > (SELECT AVG(o.qty) * 10 FROM orders o WHERE o.customer_id <> c.id)

SELECT o.sku, (SELECT MAX(p.price) FROM product p WHERE p.sku = o.sku) AS top, (SELECT COUNT(*) FROM event e WHERE e.n = o.qty) AS events FROM orders o WHERE o.qty > 8

SELECT d.n FROM (SELECT COUNT(*) AS n FROM customer) AS d WHERE d.n > (SELECT COUNT(*) FROM event WHERE kind = 'view')

-- columns named by the items as written, literals included
SELECT c.id, (SELECT COUNT(*) FROM event e WHERE e.n = c.score AND e.n > 5) FROM customer c WHERE c.id < 20

SELECT IFNULL(SUM(score), 'none'), COUNT(*)   DIV   2 FROM customer WHERE city = 'Oslo' AND score > -3

-- common table expressions: evaluated over the sharded tables' rows, gathered
WITH big AS (SELECT id, score FROM customer WHERE score > 50) SELECT COUNT(*) FROM big

-- ordered
WITH per_city AS (SELECT city, COUNT(*) AS n FROM customer GROUP BY city), kinds AS (SELECT n, COUNT(*) AS k FROM event GROUP BY n) SELECT p.n, k.k FROM per_city p JOIN kinds k ON k.n = p.n ORDER BY p.n, k.k

WITH RECURSIVE up(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM up WHERE i < 5) SELECT up.i, COUNT(c.id) FROM up LEFT JOIN customer c ON c.score = up.i GROUP BY up.i

-- a derived table whose own query is answered over gathered rows
SELECT COUNT(*), SUM(d.s) FROM (SELECT IFNULL(SUM(score), 0) AS s, COUNT(*) DIV 2 AS half FROM customer GROUP BY city) AS d WHERE d.half >= 0

-- a derived table over a join the gate runs itself: its tables gathered
SELECT COUNT(*), SUM(j.n) FROM (SELECT c.id, e.n FROM customer c JOIN event e ON c.score = e.n) AS j

SELECT j.kind, COUNT(*) FROM (SELECT e.kind FROM customer c LEFT JOIN event e ON c.score = e.n WHERE c.id < 50) AS j WHERE j.kind = 'view' GROUP BY j.kind

-- a UNION branch that is a join the gate runs itself
SELECT c.id FROM customer c JOIN event e ON c.score = e.n WHERE e.kind = 'buy' UNION SELECT id FROM customer WHERE score > 100

-- ordered
SELECT c.name, e.kind FROM customer c JOIN event e ON c.score = e.n WHERE c.id < 30 UNION ALL SELECT sku, title FROM product ORDER BY 1, 2
