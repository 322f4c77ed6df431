-- Producers of the held-xmin figure: 100 new objects per call, as fast as
-- the server takes them.
\set base random(1, 2000000000)
SELECT count(*) FROM delta.inform_many('noop',
    ARRAY(SELECT ROW('h' || :base::bigint || '_' || g, jsonb_build_object('n', g),
                     NULL, NULL, NULL, NULL, NULL)::delta.inform_item
          FROM generate_series(1, 100) AS g));
