-- debian/sqlite3: an in-memory database of @rows generated rows, indexed, then
-- aggregated, joined and sorted.  Run as:
--   sqlite3 :memory: ".parameter set @rows N" ".read sqlite-bench.sql"
PRAGMA cache_size = -262144;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, grp INTEGER, v REAL, s TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < @rows)
INSERT INTO t
  SELECT i, (i * 2654435761) % 1000003, i % 1000, (i * 7919) % 10007 / 7.0,
         printf('%08x-%d', (i * 40503) % 65536, i)
  FROM c;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_s ON t(s);
SELECT grp, count(*), avg(v), max(s) FROM t GROUP BY grp ORDER BY 3 DESC LIMIT 3;
SELECT count(*) FROM t a JOIN t b ON a.k = b.id WHERE a.v > b.v;
SELECT s FROM t ORDER BY v, s LIMIT 1 OFFSET @rows / 2;
SELECT count(DISTINCT substr(s, 1, 6)) FROM t;
