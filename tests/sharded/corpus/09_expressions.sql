-- Expressions around aggregates on several shards: the shards compute partial
-- aggregates, the gate the expression over the merged ones (AVG inside an
-- expression as SUM / COUNT divided as MariaDB divides: 9-digit words,
-- truncated, then shown at the expression's scale).

SELECT SUM(score) * 2, COUNT(*) + 1 FROM customer

SELECT SUM(score) / COUNT(*) FROM customer

SELECT SUM(balance) / COUNT(*), AVG(balance) FROM customer

SELECT ROUND(AVG(score), 2), ROUND(AVG(balance), 1), ROUND(AVG(balance)) FROM customer

SELECT MAX(score) - MIN(score), MAX(balance) - MIN(balance) FROM customer

SELECT CONCAT('n=', COUNT(*)), CONCAT(COUNT(*), '/', SUM(balance)) AS ratio FROM customer

SELECT CONCAT('avg=', AVG(balance)), CONCAT(AVG(score)) FROM customer

SELECT COUNT(*) - COUNT(score), -SUM(score), AVG(score) * 3 FROM customer

SELECT AVG(balance) * 1000000, AVG(score) * 7 FROM customer

SELECT COUNT(*) * 1.5, SUM(score) / 7.0, SUM(balance) / 3 FROM customer

SELECT ROUND(SUM(balance), -2), ROUND(SUM(score) / 3, 3) FROM customer

SELECT SUM(score) / COUNT(*), CONCAT('x', MAX(name)) FROM customer WHERE score > 1000

SELECT COUNT(*) + 1, SUM(score) / COUNT(*) FROM customer WHERE id = 7

SELECT COUNT(*) + 1 FROM customer WHERE id IN (7, 30, 2)

SELECT city, COUNT(*) + 1, SUM(score) / COUNT(*) FROM customer GROUP BY city

SELECT customer_id, ROUND(AVG(price), 2), SUM(qty * price) / SUM(qty) FROM orders GROUP BY customer_id

SELECT kind, COUNT(*) * 10 + SUM(n), MAX(n) - MIN(n) FROM event GROUP BY kind

SELECT score + COUNT(*) FROM customer WHERE score IS NOT NULL GROUP BY score

SELECT city, MAX(score) - MIN(score) AS spread FROM customer GROUP BY city HAVING spread > 10

SELECT city FROM customer GROUP BY city HAVING AVG(score) > 20

SELECT city, COUNT(*) FROM customer GROUP BY city HAVING SUM(balance) / COUNT(*) > 2500

SELECT kind, COUNT(*) FROM event GROUP BY kind HAVING COUNT(*) / 2 > 1

-- ordered
SELECT city, SUM(balance) / COUNT(*) AS mean FROM customer GROUP BY city ORDER BY mean DESC, city

-- ordered
SELECT city, COUNT(*) FROM customer GROUP BY city ORDER BY COUNT(*) * 2 + MAX(score) DESC, city

-- ordered
SELECT city, COUNT(*) FROM customer GROUP BY city ORDER BY AVG(balance), city

-- ordered
SELECT customer_id, SUM(qty) FROM orders GROUP BY customer_id ORDER BY SUM(qty * price) / SUM(qty) DESC, customer_id LIMIT 5
