-- LEFT JOINs of tables not joined on their vindex, run in the gate: every
-- left row stays, with the right side NULL when no right row matches.

SELECT c.id, e.id, e.kind FROM customer c LEFT JOIN event e ON c.score = e.n

SELECT c.id, c.score, o.id, o.qty FROM customer c LEFT JOIN orders o ON c.score = o.qty

SELECT o.id, e.id FROM orders o LEFT OUTER JOIN event e ON o.qty = e.n

SELECT c.id, e.id, e.n FROM customer c LEFT JOIN event e ON c.id = e.id

-- a NULL key matches nothing: its row stays, NULL-extended
SELECT c.id, c.score, e.id FROM customer c LEFT JOIN event e ON c.score = e.n WHERE c.score IS NULL

-- a self join on a column that is not the vindex
SELECT c1.id, c2.id FROM customer c1 LEFT JOIN customer c2 ON c1.city = c2.city AND c2.id < 20 WHERE c1.id < 40

-- the anti-join
SELECT c.id FROM customer c LEFT JOIN event e ON c.score = e.n WHERE e.id IS NULL

SELECT o.id, o.qty FROM orders o LEFT JOIN event e ON o.qty = e.n WHERE e.n IS NULL

-- WHERE over the right table holds or not after NULL extension
SELECT c.id, e.kind FROM customer c LEFT JOIN event e ON c.score = e.n WHERE e.kind = 'click'

SELECT c.id, e.kind FROM customer c LEFT JOIN event e ON c.score = e.n WHERE e.kind IS NULL OR e.kind = 'view'

SELECT c.id, e.id FROM customer c LEFT JOIN event e ON c.id = e.id WHERE COALESCE(e.n, -1) < 10 AND c.id < 60

-- ON conditions over the right table decide which rows match
SELECT c.id, e.id, e.kind FROM customer c LEFT JOIN event e ON c.score = e.n AND e.kind = 'click'

SELECT c.id, o.id FROM customer c LEFT JOIN orders o ON c.score = o.qty AND o.price > 100

-- ON conditions over the left table: a row for which they are false stays, unmatched
SELECT c.id, c.balance, o.id FROM customer c LEFT JOIN orders o ON c.score = o.qty AND c.balance > 2000

SELECT c.id, e.id FROM customer c LEFT JOIN event e ON c.id = e.id AND c.city IS NOT NULL AND e.n > 3

SELECT c.id, e.id FROM customer c LEFT JOIN event e ON c.score = e.n AND c.name

-- two keys
SELECT c.id, e.id, e.kind FROM customer c LEFT JOIN event e ON c.id = e.id AND c.score = e.n

-- no key: every right row the ON conditions allow matches
SELECT c.id, e.id FROM customer c LEFT JOIN event e ON e.kind = 'Buy' AND c.score > 60 WHERE c.id < 40

-- a constant ON condition
SELECT c.id, e.id FROM customer c LEFT JOIN event e ON c.id = e.id AND 1 = 0

-- WHERE over the left table filters left rows
SELECT c.id, o.id FROM customer c LEFT JOIN orders o ON c.score = o.qty WHERE c.id BETWEEN 10 AND 40

SELECT c.id, e.n FROM customer c LEFT JOIN event e USING (id)

-- RIGHT JOIN keeps every row of the right table
SELECT c.id, e.id FROM customer c RIGHT JOIN event e ON c.score = e.n

SELECT e.id, c.name FROM event e RIGHT OUTER JOIN customer c ON c.id = e.id WHERE e.id IS NULL

SELECT c.id AS cid, e.kind AS k FROM customer c LEFT JOIN event e ON c.score = e.n WHERE c.id < 30

-- ORDER BY and LIMIT: NULLs first ascending
-- ordered
SELECT c.id, e.id FROM customer c LEFT JOIN event e ON c.score = e.n ORDER BY e.id, c.id

-- ordered
SELECT c.id, e.id, e.n FROM customer c LEFT JOIN event e ON c.score = e.n ORDER BY e.n DESC, c.id, e.id LIMIT 20

-- ordered
SELECT c.id, o.id FROM customer c LEFT JOIN orders o ON c.score = o.qty ORDER BY c.id, o.id LIMIT 10 OFFSET 5

-- aggregates: COUNT of a right column counts the matched rows
SELECT COUNT(*), COUNT(e.id), COUNT(e.kind) FROM customer c LEFT JOIN event e ON c.score = e.n

SELECT COUNT(*), SUM(e.n), MIN(e.kind), MAX(e.id), AVG(e.n) FROM customer c LEFT JOIN event e ON c.id = e.id

-- ordered
SELECT c.id, COUNT(o.id) AS n FROM customer c LEFT JOIN orders o ON c.score = o.qty GROUP BY c.id ORDER BY n DESC, c.id LIMIT 15

SELECT e.kind, COUNT(*), COUNT(c.id) FROM event e LEFT JOIN customer c ON e.n = c.score GROUP BY e.kind

-- grouped by a right column: the NULL-extended rows are one group
SELECT e.n, COUNT(*) FROM customer c LEFT JOIN event e ON c.score = e.n GROUP BY e.n

SELECT c.name, SUM(o.price), MAX(o.sku) FROM customer c LEFT JOIN orders o ON c.score = o.qty GROUP BY c.name HAVING COUNT(o.id) = 0

SELECT DISTINCT e.kind FROM customer c LEFT JOIN event e ON c.score = e.n

SELECT COUNT(DISTINCT e.kind), COUNT(DISTINCT e.n) FROM customer c LEFT JOIN event e ON c.score = e.n

-- expressions over the NULL row have the server's values
SELECT COALESCE(e.n, -1) AS k, COUNT(*), COUNT(e.kind) FROM customer c LEFT JOIN event e ON c.score = e.n GROUP BY COALESCE(e.n, -1)

SELECT SUM(COALESCE(o.qty, 0)), COUNT(*), COUNT(o.qty) FROM customer c LEFT JOIN orders o ON c.score = o.qty AND o.price > 300

SELECT e.kind, COUNT(*) FROM customer c LEFT JOIN event e ON c.score = e.n WHERE e.id IS NULL OR e.n > 50 GROUP BY e.kind

SELECT c.name, COUNT(*), COUNT(e.id), SUM(e.n) FROM event e RIGHT JOIN customer c ON c.score = e.n GROUP BY c.name

-- ordered
SELECT c.id, MAX(o.price) AS top FROM customer c LEFT JOIN orders o ON c.score = o.qty AND c.balance > 3000 WHERE c.id < 50 GROUP BY c.id ORDER BY top DESC, c.id

-- no left row: no joined row
SELECT COUNT(*), COUNT(e.id) FROM customer c LEFT JOIN event e ON c.score = e.n WHERE c.id < 0

SELECT c.id, e.id FROM customer c LEFT JOIN event e ON c.score = e.n WHERE c.id < 0
