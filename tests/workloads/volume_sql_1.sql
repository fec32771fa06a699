-- volume_sql_1.sql: the first sqlite3 run of test_volumes.sh (natively and
-- under arca in a data volume): inserts, updates, a transaction rolled
-- back, and a few hundred rows so that the database spans many blocks.
CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT);
INSERT INTO kv VALUES ('a', 'alpha-marker'), ('b', 'beta');
UPDATE kv SET v = 'beta-updated' WHERE k = 'b';
BEGIN;
INSERT INTO kv VALUES ('c', 'gamma-rolled-back');
UPDATE kv SET v = 'alpha-changed-in-rollback' WHERE k = 'a';
ROLLBACK;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 400)
INSERT INTO kv SELECT printf('row%04d', x), printf('%0300d', x * 7919) FROM n;
BEGIN;
UPDATE kv SET v = 'row-updated-' || k WHERE k LIKE 'row01%';
DELETE FROM kv WHERE k LIKE 'row02%';
COMMIT;
SELECT 'row', k, v FROM kv WHERE k IN ('a', 'b', 'c') ORDER BY k;
SELECT 'count', count(*), sum(length(v)) FROM kv;
SELECT 'digest', group_concat(k || '=' || v, ';') FROM (SELECT k, v FROM kv ORDER BY k);
PRAGMA integrity_check;
