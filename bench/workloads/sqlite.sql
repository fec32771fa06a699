-- Insert/select workload for bench/mem_run.sh, run by the sqlite3 shell on
-- a fresh database file, natively and under arca (about 1 s natively).
-- Inserts rows with an index, then runs aggregate, join and range queries;
-- the last line is a checksum that must be the same in both runs. The
-- shell's timer prints "Run Time: real S ..." per statement; their sum is
-- the work time without start-up.
.timer on
PRAGMA cache_size = -65536;
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER NOT NULL, amount INTEGER NOT NULL, note TEXT NOT NULL);
CREATE INDEX orders_customer ON orders (customer);
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, region INTEGER NOT NULL);
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)
INSERT INTO customers SELECT i, 'customer-' || i, i % 17 FROM c;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 250000)
INSERT INTO orders SELECT i, (i * 7919) % 20000 + 1, (i * 104729) % 100000, printf('note %08d %s', i, substr('abcdefghijklmnopqrstuvwxyz', i % 26 + 1)) FROM c;
COMMIT;
CREATE TEMP TABLE per_customer AS
  SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer;
CREATE TEMP TABLE per_region AS
  SELECT c.region, count(*) AS n, sum(o.amount) AS total, max(length(o.note)) AS maxnote
  FROM orders o JOIN customers c ON c.id = o.customer GROUP BY c.region;
CREATE TEMP TABLE ranges AS
  SELECT lo, (SELECT count(*) FROM orders WHERE customer BETWEEN lo AND lo + 99) AS n
  FROM (WITH RECURSIVE r(lo) AS (SELECT 1 UNION ALL SELECT lo + 100 FROM r WHERE lo < 19900) SELECT lo FROM r);
CREATE TEMP TABLE sorted_notes AS SELECT note FROM orders ORDER BY note DESC LIMIT 1000;
SELECT 'checksum', (SELECT sum(n * 31 + total % 1000003) FROM per_customer),
  (SELECT group_concat(region || ':' || n || ':' || total || ':' || maxnote, ',') FROM per_region),
  (SELECT sum(n) FROM ranges), (SELECT count(*) FROM sorted_notes);
