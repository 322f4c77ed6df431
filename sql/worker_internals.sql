--
-- The internal functions the workers use -- delta._claim, delta._finish,
-- delta._rescue, delta._backoff -- called by hand as the superuser, in a
-- namespace without workers, so this session plays the worker.
--
\set SHOW_CONTEXT never

SELECT name FROM delta.create_namespace('regress_wi', max_workers => 0);
SELECT name FROM delta.create_namespace('regress_wi_other', max_workers => 0);
CREATE FUNCTION regress_wi_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind, max_attempts, backoff_base, backoff_max
FROM delta.register_controller('regress_wi', 'regress_wi_work(delta.resource)',
    max_attempts => 3, backoff_base => '10 seconds', backoff_max => '1 minute');

-- what this session claimed, as the claim returned it (regress_util.finish
-- finishes what is in it)
CREATE TEMP TABLE claimed AS SELECT * FROM delta.resource WITH NO DATA;

CREATE FUNCTION pg_temp.claim(namespace text, max_count integer)
    RETURNS TABLE (object_id text, state delta.resource_state, attempt integer)
    LANGUAGE sql AS $$
    WITH c AS (INSERT INTO claimed SELECT * FROM delta._claim(namespace, max_count) RETURNING *)
    SELECT c.object_id, c.state, c.attempt FROM c ORDER BY c.object_id
$$;

CREATE FUNCTION pg_temp.resources()
    RETURNS TABLE (object_id text, state delta.resource_state, attempt integer,
                   due text, held_by_me boolean, synced boolean, errors jsonb)
    LANGUAGE sql AS $$
    SELECT r.object_id, r.state, r.attempt,
           CASE WHEN r.due_at IS NULL THEN 'never'
                WHEN r.due_at <= now() THEN 'now'
                ELSE 'later' END,
           r.holder_pid = pg_backend_pid(),
           r.synced_at IS NOT NULL,
           (SELECT jsonb_agg(e - 'at') FROM jsonb_array_elements(r.errors) AS e)
    FROM delta.resource AS r WHERE r.kind LIKE 'regress_wi%'
    ORDER BY r.object_id
$$;

--
-- _claim: due resources of the namespace, oldest due first, become pending
-- with attempt + 1, held by the calling process
--
SELECT count(*) FROM delta.inform_many('regress_wi',
    '[{"object_id": "a", "object": {}}, {"object_id": "b", "object": {}},
      {"object_id": "c", "object": {}}, {"object_id": "d", "object": {}}]'::jsonb,
    namespace => 'regress_wi');
SELECT count(*) FROM delta.inform('regress_wi', 'elsewhere', '{}', namespace => 'regress_wi_other');
UPDATE delta.resource SET due_at = now() + CASE object_id
        WHEN 'c' THEN interval '-3 seconds'
        WHEN 'a' THEN interval '-2 seconds'
        WHEN 'd' THEN interval '-1 second'
        WHEN 'b' THEN interval '1 hour' END
WHERE kind = 'regress_wi' AND namespace = 'regress_wi';
SELECT * FROM pg_temp.claim('regress_wi', 1);
SELECT * FROM pg_temp.claim('regress_wi', 1);
-- b is not due yet; "elsewhere" is in another namespace
SELECT * FROM pg_temp.claim('regress_wi', 10);
-- what is claimed is not claimed again
SELECT * FROM pg_temp.claim('regress_wi', 10);
SELECT r.object_id, r.state, r.attempt, r.due_at IS NULL AS not_due,
       r.attempted_at IS NOT NULL AS attempted,
       r.holder_pid = pg_backend_pid() AS holder_pid_is_mine,
       r.holder_started_at = a.backend_start AS holder_started_at_is_mine
FROM delta.resource AS r
LEFT JOIN pg_stat_activity AS a ON a.pid = pg_backend_pid()
WHERE r.kind = 'regress_wi' ORDER BY r.object_id;

--
-- _finish: each outcome.  In one transaction, so now() is the time of the
-- outcome and the back-off can be checked exactly.
--
BEGIN;
SELECT regress_util.finish('c', 'synced');
SELECT regress_util.finish('a', 'failed', '{"error": "boom", "sqlstate": "P0001"}');
SELECT regress_util.finish('d', 'deleted', '{"error": "gone"}');
SELECT * FROM pg_temp.resources();
-- failed after attempt 1: due after the controller's back-off, 10 s +- 25 %
SELECT due_at - now() BETWEEN interval '7.5 seconds' AND interval '12.5 seconds' AS backoff_in_bounds
FROM delta.resource WHERE kind = 'regress_wi' AND object_id = 'a';
COMMIT;

-- snoozed: scheduled after the delay, and the attempt does not count
UPDATE delta.resource SET due_at = now() WHERE kind = 'regress_wi' AND object_id = 'b';
SELECT * FROM pg_temp.claim('regress_wi', 10);
BEGIN;
SELECT regress_util.finish('b', 'snoozed', NULL, '1 hour');
SELECT object_id, state, attempt, due_at - now() AS due_in
FROM delta.resource WHERE kind = 'regress_wi' AND object_id = 'b';
COMMIT;

-- failed on the last attempt: degraded, never due again
UPDATE delta.resource SET due_at = now() WHERE kind = 'regress_wi' AND object_id = 'a';
SELECT * FROM pg_temp.claim('regress_wi', 10);
BEGIN;
SELECT regress_util.finish('a', 'failed', '{"error": "boom again"}');
SELECT due_at - now() BETWEEN interval '15 seconds' AND interval '25 seconds' AS backoff_in_bounds
FROM delta.resource WHERE kind = 'regress_wi' AND object_id = 'a';
COMMIT;
UPDATE delta.resource SET due_at = now() WHERE kind = 'regress_wi' AND object_id = 'a';
SELECT * FROM pg_temp.claim('regress_wi', 10);
SELECT regress_util.finish('a', 'failed', '{"error": "boom for good"}');
SELECT * FROM pg_temp.resources() WHERE object_id = 'a';

-- a resource informed during its run (generation moved) goes back to
-- scheduled with the new object, whatever the run's outcome
SELECT count(*) FROM delta.inform_many('regress_wi',
    '[{"object_id": "g1", "object": {"v": 1}}, {"object_id": "g2", "object": {"v": 1}}]'::jsonb,
    namespace => 'regress_wi');
SELECT * FROM pg_temp.claim('regress_wi', 10);
SELECT object_id, state, attempt, object, already_exists
FROM delta.inform_many('regress_wi',
    '[{"object_id": "g1", "object": {"v": 2}}, {"object_id": "g2", "object": {"v": 2}}]'::jsonb,
    namespace => 'regress_wi')
ORDER BY object_id;
-- while pending it stays pending, and not due: one run at a time
SELECT * FROM pg_temp.resources() WHERE object_id IN ('g1', 'g2');
SELECT regress_util.finish('g1', 'synced');
SELECT regress_util.finish('g2', 'failed', '{"error": "stale run failed"}');
SELECT r.object_id, r.state, r.attempt, r.object, r.generation, r.synced_at IS NOT NULL AS synced,
       r.due_at <= now() AS due_now
FROM delta.resource AS r WHERE r.kind = 'regress_wi' AND r.object_id IN ('g1', 'g2')
ORDER BY r.object_id;

-- _finish touches only rows still pending and held by the caller
SELECT * FROM pg_temp.claim('regress_wi', 10);
UPDATE delta.resource SET holder_pid = pg_backend_pid() + 1
WHERE kind = 'regress_wi' AND object_id = 'g1';
SELECT regress_util.finish('g1', 'synced');
SELECT object_id, state, attempt, holder_pid = pg_backend_pid() + 1 AS held_by_other
FROM delta.resource WHERE kind = 'regress_wi' AND object_id = 'g1';
-- back to this session, which finishes it
UPDATE delta.resource SET holder_pid = pg_backend_pid()
WHERE kind = 'regress_wi' AND object_id = 'g1';
INSERT INTO claimed SELECT * FROM delta.resource WHERE kind = 'regress_wi' AND object_id = 'g1';
SELECT regress_util.finish('g1', 'synced');
SELECT object_id, state, attempt FROM delta.resource WHERE kind = 'regress_wi' AND object_id = 'g1';
-- a finished resource is not finished again
SELECT id AS g2_id, generation AS g2_generation FROM claimed WHERE object_id = 'g2' \gset
SELECT regress_util.finish('g2', 'synced');
SELECT delta._finish(ARRAY[:g2_id]::bigint[], ARRAY[:g2_generation]::bigint[], '{failed}', '{"{\"error\": \"late\"}"}', '{NULL}',
                     ARRAY[now()], ARRAY[now()]);
SELECT object_id, state, attempt, errors FROM delta.resource WHERE kind = 'regress_wi' AND object_id = 'g2';

--
-- parallelism: _claim never has more pending resources of a capped kind
-- than its parallelism, while other kinds are claimed as usual
--
SELECT kind, parallelism FROM delta.register_controller('regress_wi_capped',
    'regress_wi_work(delta.resource)', parallelism => 2);
SELECT count(*) FROM delta.inform_many('regress_wi_capped',
    (SELECT jsonb_agg(jsonb_build_object('object_id', 'cap' || i, 'object', '{}'::jsonb))
     FROM generate_series(1, 5) AS i),
    namespace => 'regress_wi');
SELECT count(*) FROM delta.inform('regress_wi', 'free', '{}', namespace => 'regress_wi');
CREATE TEMP TABLE capped_claims (round integer, kind text, n bigint);
INSERT INTO capped_claims SELECT 1, kind, count(*) FROM delta._claim('regress_wi', 10) GROUP BY kind;
INSERT INTO capped_claims SELECT 2, kind, count(*) FROM delta._claim('regress_wi', 10) GROUP BY kind;
SELECT * FROM capped_claims ORDER BY round, kind;
SELECT count(*) AS pending_capped FROM delta.resource WHERE kind = 'regress_wi_capped' AND state = 'pending';
-- one run ends: one more may start
SELECT delta._finish(ARRAY[id], ARRAY[generation], '{synced}', '{NULL}', '{NULL}', ARRAY[now()], ARRAY[now()])
FROM (SELECT id, generation FROM delta.resource
      WHERE kind = 'regress_wi_capped' AND state = 'pending' ORDER BY object_id LIMIT 1) AS one;
INSERT INTO capped_claims SELECT 3, kind, count(*) FROM delta._claim('regress_wi', 10) GROUP BY kind;
INSERT INTO capped_claims SELECT 4, kind, count(*) FROM delta._claim('regress_wi', 10) GROUP BY kind;
SELECT * FROM capped_claims WHERE round > 2 ORDER BY round, kind;
SELECT state, count(*) FROM delta.resource WHERE kind = 'regress_wi_capped' GROUP BY state ORDER BY state;

--
-- _rescue: pending resources whose holder is gone go back to failed (the
-- attempt counts), or degraded after their last attempt; live holders are
-- left alone
--
SELECT count(*) FROM delta.inform_many('regress_wi',
    '[{"object_id": "r1", "object": {}}, {"object_id": "r2", "object": {}, "max_attempts": 1},
      {"object_id": "r3", "object": {}}]'::jsonb,
    namespace => 'regress_wi');
SELECT count(*) FROM delta.inform('regress_wi', 'elsewhere', '{}', namespace => 'regress_wi_other');
SELECT * FROM pg_temp.claim('regress_wi', 10);
SELECT * FROM pg_temp.claim('regress_wi_other', 10);
-- nothing to rescue while this session, the holder, lives
SELECT delta._rescue('regress_wi') AS rescued;
SELECT delta._rescue('regress_wi_other') AS rescued;
BEGIN;
-- r1, r2 and "elsewhere" were held by a process that has exited
UPDATE delta.resource SET holder_pid = 999999, holder_started_at = now()
WHERE kind = 'regress_wi' AND object_id IN ('r1', 'r2', 'elsewhere');
SELECT delta._rescue('regress_wi') AS rescued;
SELECT object_id, state, attempt, holder_pid = pg_backend_pid() AS held_by_me,
       holder_started_at IS NOT NULL AS has_holder_started_at,
       errors -> -1 ->> 'error' AS error, errors -> -1 ->> 'sqlstate' AS sqlstate,
       errors -> -1 ->> 'attempt' AS error_attempt,
       due_at - now() BETWEEN interval '7.5 seconds' AND interval '12.5 seconds' AS retried_after_backoff
FROM delta.resource WHERE kind = 'regress_wi' AND object_id IN ('r1', 'r2', 'r3', 'elsewhere')
ORDER BY object_id;
-- without a namespace: every namespace
SELECT delta._rescue() >= 1 AS rescued;
SELECT object_id, state FROM delta.resource WHERE kind = 'regress_wi' AND object_id = 'elsewhere';
COMMIT;
SELECT delta._rescue('regress_wi') AS rescued;

--
-- _backoff: min(backoff_max, backoff_base * 2^(attempt - 1)) * [0.75, 1.25)
--
SELECT min(b) >= interval '0.75 seconds' AS at_least, max(b) < interval '1.25 seconds' AS less_than
FROM (SELECT delta._backoff(1, '1 second', '1 hour') AS b FROM generate_series(1, 200)) AS s;
SELECT min(b) >= interval '3 seconds' AS at_least, max(b) < interval '5 seconds' AS less_than
FROM (SELECT delta._backoff(3, '1 second', '1 hour') AS b FROM generate_series(1, 200)) AS s;
-- capped by backoff_max (times the jitter), also for huge attempts
SELECT min(b) >= interval '45 minutes' AS at_least, max(b) < interval '75 minutes' AS less_than
FROM (SELECT delta._backoff(a, '1 second', '1 hour') AS b
      FROM generate_series(13, 212) AS a) AS s;
SELECT delta._backoff(2147483647, '1 second', '1 hour') < interval '75 minutes' AS capped;
-- attempts below 1 count as 1
SELECT min(b) >= interval '0.75 seconds' AS at_least, max(b) < interval '1.25 seconds' AS less_than
FROM (SELECT delta._backoff(a, '1 second', '1 hour') AS b FROM generate_series(-100, 1) AS a) AS s;
-- the jitter is random
SELECT count(DISTINCT delta._backoff(1, '1 second', '1 hour')) > 1 AS jittered FROM generate_series(1, 20);

-- a resource whose last attempt ended with its worker exiting may crash the
-- worker again: it is claimed alone, and a batch stops before it
DELETE FROM delta.resource WHERE namespace = 'regress_wi';
SELECT count(*) FROM delta.inform_many('regress_wi',
    ARRAY[ROW('s1', '{}', NULL, NULL, NULL, NULL, NULL), ROW('s2', '{}', NULL, NULL, NULL, NULL, NULL),
          ROW('s3', '{}', NULL, NULL, NULL, NULL, NULL), ROW('s4', '{}', NULL, NULL, NULL, NULL, NULL)]::delta.inform_item[],
    namespace => 'regress_wi');
UPDATE delta.resource SET due_at = now() - interval '1 minute' * (10 - right(object_id, 1)::integer),
    errors = CASE WHEN object_id = 's3' THEN '[{"sqlstate": "57P01"}]'::jsonb ELSE '[]'::jsonb END
WHERE namespace = 'regress_wi';
SELECT object_id FROM delta._claim('regress_wi', 10) ORDER BY object_id;  -- s1, s2: not s3, nor s4 behind it
SELECT object_id FROM delta._claim('regress_wi', 10) ORDER BY object_id;  -- s3 alone
SELECT object_id FROM delta._claim('regress_wi', 10) ORDER BY object_id;  -- s4

-- clean up
SELECT delta.unregister_controller('regress_wi');
SELECT delta.unregister_controller('regress_wi_capped');
SELECT delta.drop_namespace('regress_wi');
SELECT delta.drop_namespace('regress_wi_other');
DROP FUNCTION regress_wi_work(delta.resource);
