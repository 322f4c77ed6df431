-- delta.inform_many with 10,000 new objects per call, given as jsonb: the
-- JSON text a client would send, parsed by the server (built here with
-- string_agg; jsonb_agg of jsonb_build_object would cost the statement
-- 2.7 times as much as building the array form's items, and measure that).
\set base random(1, 2000000000)
SELECT count(*) FROM delta.inform_many('noop',
    (SELECT ('[' || string_agg('{"object_id": "j' || :base::bigint || '_' || g
                               || '", "object": {"n": ' || g || '}}', ', ') || ']')::jsonb
     FROM generate_series(1, 10000) AS g));
