-- delta.inform_many with 10,000 new objects of about 10 kB each per call
-- (100 MB of items: the size that made issue 10's upserts slow).
\set base random(1, 2000000000)
SELECT count(*) FROM delta.inform_many('noop',
    ARRAY(SELECT ROW('b' || :base::bigint || '_' || g,
                     jsonb_build_object('n', g, 'pad', repeat(md5(g::text), 320)),
                     NULL, NULL, NULL, NULL, NULL)::delta.inform_item
          FROM generate_series(1, 10000) AS g));
