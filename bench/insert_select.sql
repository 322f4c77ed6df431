-- Baseline of inform_many.sql: a plain INSERT ... SELECT of 10,000 rows into
-- bench.bulk, with delta.resource's columns and indexes.
\set base random(1, 2000000000)
INSERT INTO bench.bulk (state, max_attempts, object_id, kind, namespace, object, hash, due_at)
SELECT 'scheduled', 10, 'm' || :base::bigint || '_' || g, 'noop', 'default', o,
       sha256(convert_to(o::text, 'UTF8')), now()
FROM generate_series(1, 10000) AS g, LATERAL jsonb_build_object('n', g) AS o;
