-- Joins: co-located on the vindex (customer.id = orders.customer_id, both
-- hash) and with the reference table push down whole; others run in the gate.

SELECT c.id, c.name, o.id, o.sku FROM customer c JOIN orders o ON c.id = o.customer_id

SELECT c.name, o.qty FROM customer c JOIN orders o ON o.customer_id = c.id WHERE c.id = 12

SELECT c.id, o.id FROM customer c JOIN orders o ON c.id = o.customer_id WHERE o.qty > 8

SELECT c.id, o.id FROM customer c, orders o WHERE c.id = o.customer_id AND c.score > 60

SELECT c.id, o.id FROM customer c LEFT JOIN orders o ON c.id = o.customer_id

SELECT c.id FROM customer c LEFT JOIN orders o ON c.id = o.customer_id WHERE o.id IS NULL

-- ordered
SELECT c.id, c.name, o.id, o.price FROM customer c JOIN orders o ON c.id = o.customer_id ORDER BY c.name, o.price DESC, o.id LIMIT 25

-- ordered
SELECT c.id, o.id FROM customer c JOIN orders o ON c.id = o.customer_id WHERE c.id IN (12, 13, 14) ORDER BY o.id

SELECT c.name, COUNT(*), SUM(o.qty) FROM customer c JOIN orders o ON c.id = o.customer_id GROUP BY c.name

-- ordered
SELECT c.id, COUNT(o.id) AS n_orders FROM customer c LEFT JOIN orders o ON c.id = o.customer_id GROUP BY c.id ORDER BY n_orders DESC, c.id LIMIT 10

SELECT COUNT(*) FROM customer c JOIN orders o ON c.id = o.customer_id

-- with the reference table
SELECT o.id, p.title, p.price FROM orders o JOIN product p ON o.sku = p.sku

SELECT o.id, o.sku, p.title FROM orders o LEFT JOIN product p ON o.sku = p.sku WHERE p.sku IS NULL

SELECT p.title, SUM(o.qty) FROM orders o JOIN product p ON p.sku = o.sku GROUP BY p.title

SELECT c.name, p.title FROM customer c JOIN orders o ON c.id = o.customer_id JOIN product p ON p.sku = o.sku WHERE c.id = 12

-- ordered
SELECT o.id, p.title FROM product p JOIN orders o ON o.sku = p.sku WHERE p.price < 20 ORDER BY o.id

-- not co-located: run in the gate
SELECT c1.id, c2.id FROM customer c1 JOIN customer c2 ON c1.city = c2.city WHERE c1.id < 10 AND c2.id < 10

SELECT c.id, e.id FROM customer c JOIN event e ON c.score = e.n WHERE c.id < 30

SELECT o.id, e.kind FROM orders o JOIN event e ON o.qty = e.n WHERE o.customer_id = 12

SELECT c.name, o.id FROM customer c JOIN orders o ON c.score = o.qty


-- ordered
SELECT c.id, e.id, e.kind FROM customer c JOIN event e ON c.id = e.id ORDER BY c.id
