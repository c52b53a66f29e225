-- Changes, run in order after every SELECT file: each is applied to the
-- reference and to every keyspace, then checked by a SELECT.

-- multi-row INSERT spanning shards
INSERT INTO customer (id, name, city, score, balance, created) VALUES (2001, 'Nina', 'Oslo', 5, 10.00, '2024-01-01'), (2002, 'otto', 'berlin', NULL, 20.50, '2024-01-02'), (2003, 'Ümit', NULL, 77, -3.25, '2024-01-03'), (2004, 'Pia', 'Paris', 0, 0.00, '2024-01-04'), (2005, 'Quirin', 'Zürich', 12, 99.99, '2024-01-05')

-- ordered
SELECT * FROM customer WHERE id BETWEEN 2001 AND 2005 ORDER BY id

INSERT INTO orders (id, customer_id, sku, qty, price) VALUES (3001, 2001, 'apple-01', 1, 1.00), (3002, 2002, 'Fig-06', 2, 2.00), (3003, 2003, 'kiwi-09', 3, 3.00), (3004, 2001, 'Yuzu-20', 4, 4.00)

INSERT INTO event (id, kind, n) VALUES (4001, 'click', 1)

INSERT INTO event (id, kind, n) VALUES (4002, 'View', NULL), (4003, NULL, 3)

SELECT COUNT(*), SUM(qty) FROM orders WHERE id > 3000

SELECT * FROM event WHERE id > 4000

-- UPDATE by vindex
UPDATE customer SET score = 99 WHERE id = 2001

UPDATE orders SET qty = qty + 10 WHERE customer_id = 2001

SELECT id, score FROM customer WHERE id = 2001

SELECT id, qty FROM orders WHERE customer_id = 2001

-- UPDATE with IN on the vindex
UPDATE customer SET city = 'Oslo' WHERE id IN (2002, 2003, 2004)

-- UPDATE that scatters
UPDATE customer SET balance = balance + 1 WHERE city = 'paris'

UPDATE event SET n = n * 2 WHERE kind = 'Click'

-- scatter, no row matches
UPDATE customer SET score = 0 WHERE score > 1000

SELECT id, city, balance FROM customer WHERE city IN ('oslo', 'PARIS')

SELECT id, n FROM event WHERE kind = 'Click'

-- changing the primary vindex column is refused (Vitess: unsupported, 1235)
-- error 1235
UPDATE customer SET id = 2999 WHERE id = 2001

-- error 1235
UPDATE orders SET customer_id = 12 WHERE id = 3001

SELECT id FROM customer WHERE id IN (2001, 2999)

SELECT id, customer_id FROM orders WHERE id = 3001

-- DELETE by vindex
DELETE FROM customer WHERE id = 2005

DELETE FROM orders WHERE customer_id IN (2002, 2003)

-- DELETE that scatters
DELETE FROM event WHERE n IS NULL

DELETE FROM orders WHERE qty > 10

SELECT COUNT(*) FROM customer

SELECT COUNT(*), SUM(qty) FROM orders

SELECT COUNT(*), SUM(n) FROM event

SELECT * FROM customer WHERE id > 2000

SELECT * FROM orders WHERE id > 3000

-- aggregates after the changes
SELECT city, COUNT(*) FROM customer WHERE city = 'oslo' GROUP BY city

SELECT COUNT(DISTINCT city), AVG(score), SUM(balance) FROM customer

-- negative vindex values: inserted to their shard, found there by a point
-- select (the text's literal `-5` is one parameter, not `-?`)
INSERT INTO customer (id, name, city, score, balance, created) VALUES (-5, 'Neg', 'Oslo', -5, -5.00, '2024-02-01'), (-1, 'Minus', 'Paris', 1, 1.00, '2024-02-02'), (-9223372036854775808, 'Min', NULL, NULL, 0.00, '2024-02-03')

INSERT INTO event (id, kind, n) VALUES (-7, 'neg', -7), (-70000, 'neg', 1)

SELECT * FROM customer WHERE id = -5

SELECT id, name FROM customer WHERE id = - 1

SELECT id FROM customer WHERE id = -9223372036854775808

SELECT id, name FROM customer WHERE id IN (-1, 2, -5, -6)

SELECT * FROM event WHERE id IN (-7, -70000, 14)

SELECT id, score FROM customer WHERE id = -5 AND score = -5

SELECT COUNT(*), SUM(balance) FROM customer WHERE id IN (-5, -1)

UPDATE customer SET score = score - -1 WHERE id = -5

SELECT id, score FROM customer WHERE id = -5

DELETE FROM customer WHERE id IN (-5, -1, -9223372036854775808)

DELETE FROM event WHERE id = -7 OR id = -70000

SELECT COUNT(*) FROM customer WHERE id < 0

-- INSERT ... SELECT: the SELECT's rows gathered by the gate, then inserted
-- split by vindex
INSERT INTO event (id, kind, n) SELECT id + 5000, city, score FROM customer WHERE id BETWEEN 10 AND 30

INSERT INTO orders (id, customer_id, sku, qty, price) SELECT e.id + 7000, c.id, 'joined', e.n, c.balance FROM customer c JOIN event e ON c.id = e.id WHERE c.score > 10

INSERT INTO customer SELECT id + 9000, name, city, score, balance, created FROM customer WHERE score > 95 ORDER BY id LIMIT 3

INSERT INTO event (id, kind, n) SELECT 6000 + COUNT(*), 'total', SUM(n) FROM event WHERE id < 5000

-- nothing to insert
INSERT INTO event (id, kind, n) SELECT id, kind, n FROM event WHERE id < -1000000

SELECT COUNT(*), SUM(n), COUNT(kind) FROM event WHERE id > 5000

SELECT * FROM event WHERE id > 5000

SELECT COUNT(*), SUM(qty), SUM(price) FROM orders WHERE id > 7000

SELECT * FROM customer WHERE id > 9000

-- a duplicate key from the SELECT's rows is MariaDB's error
-- error 1062
INSERT INTO event (id, kind, n) SELECT id, kind, n FROM event WHERE id BETWEEN 5010 AND 5012
