-- Routing: equality and IN on the primary vindex reach one or some shards;
-- anything else scatters to all of them.

-- point select by the hash vindex
SELECT * FROM customer WHERE id = 7

SELECT id, name, city, score, balance, created FROM customer WHERE id = 9223372036854775807

SELECT name FROM customer WHERE id = 2147483648

-- a vindex value with no row
SELECT * FROM customer WHERE id = 424242

SELECT * FROM customer WHERE id IN (1, 2, 3, 4, 5, 500, 65536)

-- ordered
SELECT id, name FROM customer WHERE id IN (9, 8, 7, 99999, 123456) ORDER BY id

-- vindex equality with more conditions
SELECT id, score FROM customer WHERE id = 30 AND score > 10

SELECT id FROM customer WHERE id = 30 AND score < 0

SELECT * FROM customer WHERE id = 4 OR id = 1000

-- orders routed by customer_id (hash), several rows per customer
SELECT * FROM orders WHERE customer_id = 12

SELECT id, sku, qty FROM orders WHERE customer_id IN (12, 13, 777)

-- the xxhash vindex
SELECT * FROM event WHERE id = 14

SELECT * FROM event WHERE id IN (7, 21, 1048576, 8589934592, 6)

-- scatter: conditions on other columns
SELECT * FROM customer WHERE score > 50

SELECT id, name FROM customer WHERE name = 'alice'

SELECT id, city FROM customer WHERE city = 'BERLIN'

SELECT id, city FROM customer WHERE city IN ('munchen', 'ZURICH')

SELECT id FROM customer WHERE score IS NULL

SELECT id, balance FROM customer WHERE balance BETWEEN 100 AND 1000

SELECT id, created FROM customer WHERE created >= '2023-06-01' AND score <> 5

SELECT * FROM orders WHERE qty IS NULL OR price < 5

SELECT id, kind FROM event WHERE kind = 'Click'

SELECT id, kind FROM event WHERE kind IN ('click', 'ärger')

SELECT id, n FROM event WHERE n BETWEEN 10 AND 12 OR kind IS NULL

-- the reference table reads from any one shard
SELECT * FROM product

SELECT title FROM product WHERE price > 30

-- a whole table
SELECT * FROM customer

SELECT * FROM orders

SELECT * FROM event

-- no row anywhere
SELECT * FROM customer WHERE score > 1000

-- qualified names and a table alias
SELECT c.id, c.name FROM customer AS c WHERE c.id = 56

SELECT customer.id, customer.city FROM customer WHERE customer.score = 23
