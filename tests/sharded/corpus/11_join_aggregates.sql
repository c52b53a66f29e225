-- Aggregates, GROUP BY, HAVING and DISTINCT over joins the gate runs itself
-- (the tables are not joined on their vindex): the gate aggregates the joined
-- rows as a scatter merge of raw rows.

-- COUNT, SUM, MIN, MAX, AVG without GROUP BY
SELECT COUNT(*) FROM customer c JOIN event e ON c.id = e.id

SELECT COUNT(*), COUNT(c.score), COUNT(e.kind), COUNT(c.city) FROM customer c JOIN event e ON c.score = e.n

SELECT SUM(c.score), SUM(e.n), MIN(c.balance), MAX(c.balance), MIN(e.kind), MAX(e.kind) FROM customer c JOIN event e ON c.score = e.n

SELECT AVG(c.score), AVG(c.balance), AVG(e.n), AVG(e.id) FROM customer c JOIN event e ON c.score = e.n

SELECT SUM(o.price), AVG(o.price), SUM(o.qty * o.price), MIN(c.created), MAX(c.name) FROM customer c JOIN orders o ON c.score = o.qty

SELECT COUNT(DISTINCT e.kind), COUNT(DISTINCT c.id), SUM(DISTINCT e.n) FROM customer c JOIN event e ON c.score = e.n

SELECT COUNT(*) AS n, SUM(c.balance) AS total, MIN(c.name) AS first_name FROM customer c JOIN customer c2 ON c.score = c2.score WHERE c.id < 50 AND c2.id > 20

-- over no joined row: one row, COUNT 0 and the others NULL
SELECT COUNT(*), SUM(c.score), AVG(e.n), MIN(e.kind), MAX(c.name) FROM customer c JOIN event e ON c.score = e.n WHERE c.score > 1000

SELECT COUNT(*), SUM(e.n) FROM customer c JOIN event e ON c.id = e.id WHERE e.n IS NULL AND e.n IS NOT NULL

-- conditions on each side and the join
SELECT COUNT(*), SUM(o.qty) FROM customer c JOIN orders o ON c.score = o.qty WHERE c.balance > 100 AND o.price < 200

SELECT COUNT(*), MAX(o.id) FROM orders o, event e WHERE o.qty = e.n AND e.kind IN ('click', 'view')

-- GROUP BY either side
SELECT e.kind, COUNT(*), SUM(c.score) FROM customer c JOIN event e ON c.score = e.n GROUP BY e.kind

SELECT c.name, COUNT(*), AVG(o.price), MAX(o.sku) FROM customer c JOIN orders o ON c.score = o.qty GROUP BY c.name

SELECT o.qty, COUNT(c.id), COUNT(DISTINCT c.name), MIN(c.balance) FROM customer c JOIN orders o ON c.score = o.qty GROUP BY o.qty

SELECT c.score, e.kind, COUNT(*) FROM customer c JOIN event e ON c.score = e.n GROUP BY c.score, e.kind

-- a group key not selected
SELECT COUNT(*), SUM(e.n) FROM customer c JOIN event e ON c.score = e.n GROUP BY e.kind

SELECT SUM(o.qty) AS q FROM customer c JOIN orders o ON c.score = o.qty GROUP BY c.id

-- GROUP BY an alias, a position, an expression of one side
SELECT e.kind AS k, COUNT(*) AS n FROM customer c JOIN event e ON c.score = e.n GROUP BY k

SELECT e.kind, COUNT(*) FROM customer c JOIN event e ON c.score = e.n GROUP BY 1

SELECT YEAR(c.created) AS y, COUNT(*), SUM(o.price) FROM customer c JOIN orders o ON c.score = o.qty GROUP BY YEAR(c.created)

-- HAVING
SELECT e.kind, COUNT(*) FROM customer c JOIN event e ON c.score = e.n GROUP BY e.kind HAVING COUNT(*) > 2

SELECT c.name, SUM(o.price) AS total FROM customer c JOIN orders o ON c.score = o.qty GROUP BY c.name HAVING total > 500 AND MIN(o.qty) < 5

SELECT o.qty, AVG(c.score) FROM customer c JOIN orders o ON c.score = o.qty GROUP BY o.qty HAVING AVG(c.score) >= 5 OR o.qty = 1

SELECT e.kind, COUNT(*) FROM customer c JOIN event e ON c.score = e.n GROUP BY e.kind HAVING e.kind IS NOT NULL AND MAX(c.balance) > 0

-- ORDER BY aggregates and aliases, LIMIT
-- ordered
SELECT c.name, COUNT(*) AS n FROM customer c JOIN orders o ON c.score = o.qty GROUP BY c.name ORDER BY n DESC, c.name LIMIT 5

-- ordered
SELECT e.kind, SUM(c.score) FROM customer c JOIN event e ON c.score = e.n GROUP BY e.kind ORDER BY SUM(c.score), e.kind

-- ordered
SELECT o.qty, COUNT(*) FROM customer c JOIN orders o ON c.score = o.qty GROUP BY o.qty ORDER BY MAX(c.balance) DESC, o.qty LIMIT 3 OFFSET 1

-- ordered
SELECT o.qty, AVG(o.price) AS a FROM customer c JOIN orders o ON c.score = o.qty GROUP BY o.qty ORDER BY a, o.qty

-- ordered
SELECT c.score, COUNT(*) FROM customer c JOIN event e ON c.score = e.n GROUP BY c.score ORDER BY 2 DESC, 1 LIMIT 4

-- expressions around aggregates the merge computes
SELECT e.kind, SUM(c.score) + 1, COUNT(*) * 2, SUM(c.balance) / COUNT(*) FROM customer c JOIN event e ON c.score = e.n GROUP BY e.kind

-- ordered
SELECT o.qty, ROUND(AVG(c.balance), 1) AS r FROM customer c JOIN orders o ON c.score = o.qty GROUP BY o.qty ORDER BY r, o.qty

-- SELECT DISTINCT
SELECT DISTINCT e.kind FROM customer c JOIN event e ON c.score = e.n

SELECT DISTINCT c.score, e.kind FROM customer c JOIN event e ON c.score = e.n

SELECT DISTINCT o.sku FROM customer c JOIN orders o ON c.score = o.qty WHERE c.balance < 0

-- ordered
SELECT DISTINCT o.qty FROM customer c JOIN orders o ON c.score = o.qty ORDER BY o.qty DESC LIMIT 4

-- ordered
SELECT DISTINCT c.name AS who FROM customer c JOIN orders o ON c.score = o.qty ORDER BY who LIMIT 6

SELECT DISTINCT e.kind, COUNT(*) FROM customer c JOIN event e ON c.score = e.n GROUP BY e.kind, c.score

-- self join, joined on a column that is not the vindex
SELECT c1.name, COUNT(c2.id) FROM customer c1 JOIN customer c2 ON c1.score = c2.score WHERE c1.id < 40 GROUP BY c1.name

-- an unqualified column the schema places in one table
SELECT kind, COUNT(*), SUM(balance) FROM customer c JOIN event e ON c.score = e.n GROUP BY kind

-- COUNT(DISTINCT) compares with the column's collation (cities differ only in case)
SELECT COUNT(DISTINCT c.city), COUNT(DISTINCT e.kind) FROM customer c JOIN event e ON c.score = e.n

SELECT e.kind, COUNT(DISTINCT c.city), AVG(c.score), SUM(DISTINCT c.score) FROM customer c JOIN event e ON c.score = e.n GROUP BY e.kind

-- DOUBLE values the gate adds exactly
SELECT SUM(e.n * 1e0), AVG(c.score * 1e0) FROM customer c JOIN event e ON c.score = e.n

-- constants and COUNT of a constant
SELECT 'all' AS label, 7, COUNT(1), COUNT(NULL), SUM(2) FROM customer c JOIN event e ON c.score = e.n

-- the left side on one shard, or on none
SELECT COUNT(*), SUM(o.qty) FROM customer c JOIN orders o ON c.score = o.qty WHERE c.id = 12

SELECT o.sku, COUNT(*) FROM customer c JOIN orders o ON c.score = o.qty WHERE c.id IN (12, 13, 99999) GROUP BY o.sku

SELECT e.kind, COUNT(*) FROM customer c JOIN event e ON c.score = e.n WHERE c.id = -1 GROUP BY e.kind

SELECT DISTINCT e.kind FROM customer c JOIN event e ON c.score = e.n WHERE c.id = -1

-- the join written with a comma, the right table first
SELECT e.kind, MAX(c.balance) FROM event e, customer c WHERE e.n = c.score AND c.city = 'berlin' GROUP BY e.kind

-- ordered
SELECT o.qty, COUNT(*) FROM customer c JOIN orders o ON c.score = o.qty GROUP BY o.qty ORDER BY AVG(c.balance), o.qty

SELECT o.qty, COUNT(*) FROM customer c JOIN orders o ON c.score = o.qty GROUP BY o.qty HAVING AVG(c.balance) > 2000

-- over no joined row, constants keep their values
SELECT 'all' AS label, 7, COUNT(*), SUM(c.score), c.name, COUNT(e.n) + 1, AVG(e.n) FROM customer c JOIN event e ON c.score = e.n WHERE c.score > 1000

SELECT 'all', COUNT(*) FROM customer c JOIN event e ON c.score = e.n WHERE c.score > 1000 GROUP BY e.kind

SELECT COUNT(*) FROM customer c JOIN event e ON c.score = e.n WHERE c.score > 1000 HAVING COUNT(*) = 0

-- plain columns of a gate-side join: an alias names the column
SELECT c.id AS who, e.kind AS k, e.id FROM customer c JOIN event e ON c.id = e.id

-- HAVING with an aggregate and no GROUP BY: one group
SELECT e.kind FROM customer c JOIN event e ON c.score = e.n WHERE e.kind = 'click' HAVING COUNT(*) > 0
