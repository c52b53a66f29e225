-- ORDER BY merged in the gate: several keys, ASC/DESC, strings in their
-- collation (utf8mb4_general_ci: case and accents fold; utf8mb4_bin: bytes),
-- NULLs first ascending; LIMIT and OFFSET on a total order.

-- ordered
SELECT id FROM customer ORDER BY id

-- ordered
SELECT id, name FROM customer ORDER BY id DESC

-- ordered
SELECT id, name FROM customer ORDER BY name, id

-- ordered
SELECT id, name FROM customer ORDER BY name DESC, id DESC

-- ordered
SELECT id, city FROM customer ORDER BY city, id

-- ordered
SELECT id, city, score FROM customer ORDER BY city DESC, score, id DESC

-- ordered
SELECT id, score FROM customer ORDER BY score, id

-- ordered
SELECT id, score FROM customer ORDER BY score DESC, id

-- ordered
SELECT id, balance, created FROM customer ORDER BY created DESC, balance, id

-- ordered
SELECT id, kind FROM event ORDER BY kind, id

-- ordered
SELECT id, kind, n FROM event ORDER BY kind DESC, n DESC, id

-- ordered
SELECT sku, title FROM product ORDER BY title

-- ordered
SELECT sku, price FROM product ORDER BY price DESC, sku

-- ordered: by a column that is not selected
SELECT id FROM customer ORDER BY score DESC, id

-- ordered: by an expression and by an alias
SELECT id, score*2 AS double_score FROM customer ORDER BY double_score, id

-- ordered
SELECT id, balance FROM customer ORDER BY -balance, id

-- ordered: by position
SELECT name, id FROM customer ORDER BY 1, 2

-- ordered
SELECT id, name FROM customer WHERE score > 20 ORDER BY name, id LIMIT 10

-- ordered
SELECT id FROM customer ORDER BY id LIMIT 5

-- ordered
SELECT id FROM customer ORDER BY id DESC LIMIT 3

-- ordered
SELECT id, score FROM customer ORDER BY score, id LIMIT 10 OFFSET 20

-- ordered
SELECT id, score FROM customer ORDER BY score DESC, id LIMIT 15, 5

-- ordered
SELECT id FROM customer ORDER BY id LIMIT 0

-- ordered: the offset is past the end
SELECT id FROM customer ORDER BY id LIMIT 10 OFFSET 500

-- ordered
SELECT id, price FROM orders ORDER BY price DESC, id LIMIT 7

-- ordered
SELECT id, kind FROM event WHERE n IS NOT NULL ORDER BY kind, n, id LIMIT 12

-- ordered
SELECT id, customer_id, qty FROM orders WHERE customer_id = 12 ORDER BY qty, id

-- ordered
SELECT id, name FROM customer WHERE id IN (1, 2, 3, 4, 5, 6, 7, 8) ORDER BY name DESC, id LIMIT 4

-- ordered
SELECT id, name, city FROM customer ORDER BY city, name, id LIMIT 30
