-- Baseline of inform_many_big.sql: a plain INSERT ... SELECT of the same
-- 10,000 rows of about 10 kB into bench.bulk.
\set base random(1, 2000000000)
INSERT INTO bench.bulk (state, max_attempts, object_id, kind, namespace, object, hash, due_at)
SELECT 'scheduled', 10, 'b' || :base::bigint || '_' || g, 'noop', 'default', o,
       sha256(convert_to(o::text, 'UTF8')), now()
FROM generate_series(1, 10000) AS g,
     LATERAL jsonb_build_object('n', g, 'pad', repeat(md5(g::text), 320)) AS o;
