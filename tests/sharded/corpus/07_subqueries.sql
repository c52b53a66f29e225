-- Subqueries: uncorrelated ones evaluated first, co-located ones pushed down,
-- derived tables.

SELECT id, name FROM customer WHERE id IN (SELECT customer_id FROM orders WHERE qty >= 9)

SELECT id FROM customer WHERE id NOT IN (SELECT customer_id FROM orders)

SELECT id FROM orders WHERE sku IN (SELECT sku FROM product WHERE price > 40)

SELECT id, n FROM event WHERE n IN (SELECT score FROM customer WHERE city = 'oslo')

SELECT id FROM customer WHERE score > (SELECT AVG(score) FROM customer)

SELECT id FROM customer WHERE id = (SELECT MAX(customer_id) FROM orders WHERE customer_id < 100)

SELECT id, name FROM customer c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.qty > 8)

-- derived tables




