-- Baseline of inform.sql: the same upsert, by hand, into bench.upsert, a
-- plain table with delta.resource's columns and indexes.
\set id random(1, 2000000000)
INSERT INTO bench.upsert AS r (state, max_attempts, object_id, kind, namespace,
    object, hash, due_at)
VALUES ('scheduled', 10, 'o' || :id::bigint, 'noop', 'default', jsonb_build_object('n', :id::bigint),
    sha256(convert_to(jsonb_build_object('n', :id::bigint)::text, 'UTF8')), now())
ON CONFLICT (kind, object_id) DO UPDATE SET
    object = EXCLUDED.object, hash = EXCLUDED.hash,
    generation = r.generation + 1, state = 'scheduled', attempt = 0, due_at = now()
RETURNING id;
