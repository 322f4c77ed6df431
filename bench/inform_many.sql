-- delta.inform_many with 10,000 new objects per call.
\set base random(1, 2000000000)
SELECT count(*) FROM delta.inform_many('noop',
    ARRAY(SELECT ROW('m' || :base::bigint || '_' || g, jsonb_build_object('n', g),
                     NULL, NULL, NULL, NULL, NULL)::delta.inform_item
          FROM generate_series(1, 10000) AS g));
