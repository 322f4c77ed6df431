--
-- The run history (delta.run), the run counters and delta.metrics: this
-- session plays the worker (delta._claim, delta._finish, delta._rescue)
-- while every namespace is paused.
--
\set SHOW_CONTEXT never

CALL regress_util.pause_all();
SELECT regress_util.no_workers_here();

SELECT name FROM delta.create_namespace('regress_hi', max_workers => 0);
CREATE FUNCTION regress_hi_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_hi', 'regress_hi_work(delta.resource)', max_attempts => 2);

CREATE TEMP TABLE claimed AS SELECT * FROM delta.resource WITH NO DATA;
CREATE FUNCTION pg_temp.claim() RETURNS bigint
    LANGUAGE sql AS $$
    WITH c AS (INSERT INTO claimed SELECT * FROM delta._claim('regress_hi', 100) RETURNING *)
    SELECT count(*) FROM c
$$;
-- the runs of kind regress_hi since the last call: what the history says
CREATE TEMP TABLE seen (id bigint);
CREATE FUNCTION pg_temp.runs()
    RETURNS TABLE (object_id text, attempt integer, outcome text, duration interval,
                   my_pid boolean, sqlstate text, error text)
    LANGUAGE sql AS $$
    WITH new AS (INSERT INTO seen SELECT h.id FROM delta.run AS h
                 WHERE h.kind = 'regress_hi' AND h.id NOT IN (SELECT id FROM seen) RETURNING id)
    SELECT h.object_id, h.attempt, h.outcome, h.duration, h.pid = pg_backend_pid(), h.sqlstate, h.error
    FROM delta.run AS h JOIN new USING (id)
    ORDER BY h.id
$$;
CREATE TEMP TABLE counted AS SELECT outcome, runs FROM delta._run_counters();
-- the counters' growth since the last call
CREATE FUNCTION pg_temp.counted() RETURNS TABLE (outcome text, runs bigint)
    LANGUAGE sql AS $$
    WITH now AS (SELECT c.outcome, c.runs FROM delta._run_counters() AS c),
         grown AS (SELECT now.outcome, now.runs - counted.runs AS runs FROM now JOIN counted USING (outcome)),
         kept AS (UPDATE counted SET runs = now.runs FROM now WHERE now.outcome = counted.outcome)
    SELECT grown.outcome, grown.runs FROM grown WHERE grown.runs <> 0 ORDER BY grown.outcome
$$;

-- every outcome a run can have, each with its row
SELECT count(*) FROM delta.inform_many('regress_hi',
    '[{"object_id": "ok", "object": {}}, {"object_id": "bad", "object": {}},
      {"object_id": "gone", "object": {}}, {"object_id": "later", "object": {}},
      {"object_id": "moved", "object": {}}]'::jsonb,
    namespace => 'regress_hi');
SELECT pg_temp.claim();
SELECT count(*) FROM delta.inform('regress_hi', 'moved', '{"v": 2}', namespace => 'regress_hi');
SELECT delta._finish(array_agg(c.id ORDER BY c.id), array_agg(c.generation ORDER BY c.id),
    array_agg(CASE c.object_id WHEN 'ok' THEN 'synced' WHEN 'bad' THEN 'failed' WHEN 'gone' THEN 'deleted'
                               WHEN 'later' THEN 'snoozed' ELSE 'synced' END ORDER BY c.id),
    array_agg(CASE c.object_id WHEN 'bad' THEN '{"error": "boom", "sqlstate": "P0001"}'::jsonb
                               WHEN 'gone' THEN '{"error": "not needed", "sqlstate": "00000"}'::jsonb END
              ORDER BY c.id),
    array_agg(CASE c.object_id WHEN 'later' THEN interval '1 hour' END ORDER BY c.id),
    array_agg(now() - interval '2 seconds' ORDER BY c.id), array_agg(now() ORDER BY c.id))
FROM claimed AS c;
TRUNCATE claimed;
SELECT * FROM pg_temp.runs();
SELECT * FROM pg_temp.counted();
-- the resources went on as before
SELECT object_id, state, attempt FROM delta.resource WHERE kind = 'regress_hi' ORDER BY object_id;

-- the last attempt of a failed run: degraded
UPDATE delta.resource SET due_at = now() WHERE kind = 'regress_hi' AND object_id = 'bad';
SELECT pg_temp.claim();
SELECT regress_util.finish('bad', 'failed', '{"error": "boom again", "sqlstate": "P0001"}');
SELECT * FROM pg_temp.runs();
SELECT * FROM pg_temp.counted();

-- a run whose worker exited ("moved", claimed again with "bad"): the rescue
-- ends it as crashed, from the start of the run, with the dead worker's pid
UPDATE delta.resource SET holder_pid = 999999, attempted_at = now() - interval '3 seconds'
WHERE kind = 'regress_hi' AND state = 'pending';
SELECT delta._rescue('regress_hi') AS rescued;
TRUNCATE claimed;
SELECT object_id, attempt, outcome, duration >= interval '3 seconds' AS from_run_start,
       sqlstate, error FROM pg_temp.runs();
SELECT h.pid FROM delta.run AS h WHERE h.kind = 'regress_hi' AND h.outcome = 'crashed';
SELECT * FROM pg_temp.counted();
-- crashed on its last attempt: degraded
UPDATE delta.resource SET due_at = now() WHERE kind = 'regress_hi' AND object_id = 'moved';
SELECT pg_temp.claim();
UPDATE delta.resource SET holder_pid = 999999 WHERE kind = 'regress_hi' AND state = 'pending';
SELECT delta._rescue('regress_hi') AS rescued;
TRUNCATE claimed;
SELECT object_id, attempt, outcome, sqlstate FROM pg_temp.runs();
SELECT * FROM pg_temp.counted();

-- a run the worker could not record (_end_runs with its error): failed
SELECT count(*) FROM delta.inform('regress_hi', 'lost', '{}', namespace => 'regress_hi');
SELECT pg_temp.claim();
SELECT delta._end_runs(array_agg(id), 'the worker could not record the outcome of this run: no', '23514')
FROM claimed;
TRUNCATE claimed;
SELECT object_id, attempt, outcome, my_pid, sqlstate, regexp_replace(error, 'pid \d+', 'pid N') AS error
FROM pg_temp.runs();

-- delta.run_history = off: nothing is written, the counters still count
SET delta.run_history = off;
UPDATE delta.resource SET due_at = now() WHERE kind = 'regress_hi' AND object_id = 'lost';
SELECT pg_temp.claim();
SELECT regress_util.finish('lost', 'synced');
SELECT * FROM pg_temp.runs();
SELECT * FROM pg_temp.counted();
RESET delta.run_history;
-- only superusers may switch it
CREATE ROLE regress_hi_user;
SET ROLE regress_hi_user;
SELECT regress_util.try($$SET delta.run_history = off$$);
RESET ROLE;
DROP ROLE regress_hi_user;

--
-- delta.metrics
--
SELECT metric, state, outcome, value FROM delta.metrics
WHERE namespace = 'regress_hi' AND kind = 'regress_hi' AND metric IN ('delta_resources', 'delta_runs_failed_last_minute')
ORDER BY metric, state, outcome;
-- every namespace × kind × state but synced, zeros included
SELECT (SELECT count(*) FROM delta.metrics WHERE metric = 'delta_resources')
     = (SELECT count(*) * (SELECT count(*) FROM delta.controller) * 7 FROM delta.namespace) AS every_cell;
SELECT metric, value FROM delta.metrics WHERE namespace = 'regress_hi' AND metric = 'delta_oldest_due_age_seconds';
UPDATE delta.resource SET due_at = now() - interval '1 minute' WHERE kind = 'regress_hi' AND object_id = 'moved';
SELECT metric, value >= 60 AS a_minute FROM delta.metrics
WHERE namespace = 'regress_hi' AND metric = 'delta_oldest_due_age_seconds';
-- the counters, every outcome
SELECT metric, outcome, value >= 0 AS counted FROM delta.metrics WHERE metric = 'delta_runs_total' ORDER BY outcome;
-- durations of the last five minutes (the first runs took 2 s, the crashed
-- one more than 3 s)
SELECT metric, value > 1 AS over_1s, value >= 3 AS at_least_3s FROM delta.metrics
WHERE namespace = 'regress_hi' AND kind = 'regress_hi' AND metric LIKE 'delta_run_duration_%' ORDER BY metric;
-- a kind of a resource whose controller is gone still has its row
INSERT INTO delta.resource (max_attempts, object_id, kind, namespace, object, hash, due_at)
VALUES (1, 'orphan', 'regress_hi_gone', 'regress_hi', '{}', '\x00', now());
SELECT metric, namespace, kind, state, value FROM delta.metrics WHERE kind = 'regress_hi_gone';
DELETE FROM delta.resource WHERE kind = 'regress_hi_gone';

-- synced rows are never read: with many of them (and statistics that say
-- so), no scan of delta.resource but through the partial indexes
INSERT INTO delta.resource (state, max_attempts, object_id, kind, namespace, object, hash, synced_at)
SELECT 'synced', 1, 's' || i, 'regress_hi', 'regress_hi', '{}', '\x00', now()
FROM generate_series(1, 20000) AS i;
ANALYZE delta.resource;
CREATE FUNCTION pg_temp.plan_scans(query text) RETURNS SETOF text
    LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        IF line ~ 'Scan.* on resource' THEN
            RETURN NEXT regexp_replace(line, '^[ ->]*', '');
        END IF;
    END LOOP;
END
$$;
SELECT DISTINCT regexp_replace(s, ' r(_\d+)?$', '') AS scan
FROM pg_temp.plan_scans('SELECT * FROM delta.metrics') AS s ORDER BY 1;
DELETE FROM delta.resource WHERE kind = 'regress_hi' AND object_id LIKE 's%';

--
-- _clean_runs: rows past the retention go, oldest first, at most max_count
--
UPDATE delta.run SET ended_at = now() - interval '4 days' - id * interval '1 second'
WHERE kind = 'regress_hi' AND object_id IN ('ok', 'gone');
SELECT delta._clean_runs(1, '3 days') AS cleaned;
SELECT object_id FROM delta.run WHERE kind = 'regress_hi' AND ended_at < now() - interval '3 days';
SELECT delta._clean_runs(10000, '3 days') AS cleaned;
SELECT delta._clean_runs(10000, '3 days') AS cleaned;
SELECT count(*) > 0 AS newer_kept FROM delta.run WHERE kind = 'regress_hi';

-- the defaults
SHOW delta.run_history;
SHOW delta.run_history_retention;

SELECT delta.unregister_controller('regress_hi');
SELECT delta.drop_namespace('regress_hi', force => true);
DELETE FROM delta.run WHERE kind = 'regress_hi';
CALL regress_util.restore_all();
SELECT regress_util.workers_back();
