-- SELECT without tables, expressions in the select list, literals, column
-- names as written.

SELECT 1+1

SELECT 1, 'a', NULL, 2.50, 'NULL'

SELECT CONCAT('x', 'y') AS xy, UPPER('émile'), 7 DIV 2, 7 / 2

SELECT id, score*2, score + 1, -score FROM customer

SELECT id, CONCAT(name, 'x'), UPPER(name), LOWER(kind) FROM customer, (SELECT 'K' AS kind) AS k WHERE id < 20

SELECT id, CONCAT(name, 'x') FROM customer

SELECT id, LENGTH(name), CHAR_LENGTH(name) FROM customer

SELECT id, balance * 2, balance / 3 FROM customer

SELECT id, YEAR(created), DATE_ADD(created, INTERVAL 1 MONTH) FROM customer

SELECT id, COALESCE(score, -1), IFNULL(city, 'none') FROM customer

SELECT id, CASE WHEN score > 50 THEN 'high' WHEN score IS NULL THEN 'none' ELSE 'low' END AS band FROM customer

SELECT id, qty * price AS amount FROM orders

SELECT id AS customer_number, name AS who FROM customer WHERE score > 70

SELECT id, kind = 'click' FROM event

SELECT id, 'literal' AS tag, 42 FROM event WHERE id < 100

-- ordered
SELECT id, score*2 FROM customer ORDER BY id LIMIT 10

-- an unknown table and column: the same errors
SELECT * FROM no_such_table

SELECT no_such_column FROM customer
