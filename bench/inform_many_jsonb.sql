-- delta.inform_many with 10,000 new objects per call, given as jsonb.
\set base random(1, 2000000000)
SELECT count(*) FROM delta.inform_many('noop',
    (SELECT jsonb_agg(jsonb_build_object('object_id', 'j' || :base::bigint || '_' || g,
                                         'object', jsonb_build_object('n', g)))
     FROM generate_series(1, 10000) AS g));
