-- volume_sql_2.sql: the second sqlite3 run of test_volumes.sh, a new
-- process over the same database: it must read back exactly what the first
-- committed (the same lines as the first run's queries).
SELECT 'row', k, v FROM kv WHERE k IN ('a', 'b', 'c') ORDER BY k;
SELECT 'count', count(*), sum(length(v)) FROM kv;
SELECT 'digest', group_concat(k || '=' || v, ';') FROM (SELECT k, v FROM kv ORDER BY k);
PRAGMA integrity_check;
