-- DISTINCT, UNION and UNION ALL.

SELECT DISTINCT score FROM customer

SELECT DISTINCT name FROM customer

SELECT DISTINCT kind FROM event

SELECT DISTINCT sku, qty FROM orders


SELECT DISTINCT customer_id FROM orders WHERE qty > 5

-- ordered
SELECT DISTINCT name FROM customer ORDER BY name

-- ordered
SELECT DISTINCT kind FROM event ORDER BY kind DESC

-- ordered
SELECT DISTINCT score FROM customer ORDER BY score LIMIT 10


SELECT id FROM customer WHERE score > 90 UNION SELECT id FROM customer WHERE score < -5

SELECT name FROM customer WHERE id < 20 UNION SELECT name FROM customer WHERE id > 100

SELECT name FROM customer WHERE id < 20 UNION ALL SELECT name FROM customer WHERE id > 100

SELECT score FROM customer UNION ALL SELECT n FROM event

SELECT score FROM customer UNION SELECT n FROM event

SELECT kind FROM event UNION SELECT kind FROM event


SELECT id, name FROM customer WHERE id = 7 UNION ALL SELECT id, name FROM customer WHERE id = 7

-- ordered
SELECT id FROM customer WHERE score > 80 UNION SELECT id FROM orders WHERE qty = 10 ORDER BY id

-- ordered
SELECT id FROM customer UNION ALL SELECT id FROM event ORDER BY id DESC LIMIT 10
