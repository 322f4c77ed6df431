-- Baseline of inform_many_big.sql with its input: the same 10,000 items of
-- about 10 kB built into one delta.inform_item[] and inserted into
-- bench.bulk from it, so that building and reading the array (which
-- delta.inform_many's caller pays, and insert_select_big.sql does not) is
-- on both sides.
\set base random(1, 2000000000)
INSERT INTO bench.bulk (state, max_attempts, object_id, kind, namespace, object, hash, due_at)
SELECT 'scheduled', 10, t.object_id, 'noop', 'default', t.object,
       sha256(convert_to(t.object::text, 'UTF8')), now()
FROM unnest(ARRAY(SELECT ROW('b' || :base::bigint || '_' || g,
                             jsonb_build_object('n', g, 'pad', repeat(md5(g::text), 320)),
                             NULL, NULL, NULL, NULL, NULL)::delta.inform_item
                  FROM generate_series(1, 10000) AS g)) AS t;
