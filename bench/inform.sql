-- One delta.inform per transaction.  :kind is set with pgbench -D.
\set id random(1, 2000000000)
SELECT id FROM delta.inform(:kind, 'o' || :id::bigint, jsonb_build_object('n', :id::bigint));
