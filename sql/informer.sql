--
-- Informers: delta.schedule_inform, and the internal functions the workers
-- run inform runs with -- delta._schedule_due_informs, delta._claim_inform,
-- delta._apply_inform, delta._finish_inform -- called by hand while no
-- worker runs in this database, so this session plays the worker.
--
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- No worker may claim an inform run behind this test's back: every
-- namespace of this database is paused until the end of the file.
CALL regress_util.pause_all();
SELECT regress_util.no_workers_here();
SELECT count(*) AS inform_runs_before FROM delta.inform_run;

SELECT name FROM delta.create_namespace('regress_inf', max_workers => 0);

-- the controllers belong to a role that is not a superuser
CREATE ROLE regress_informer_owner;
GRANT EXECUTE ON FUNCTION delta.register_controller(text, regprocedure, regprocedure,
    regprocedure, integer, interval, interval, interval, integer, boolean, interval, interval)
    TO regress_informer_owner;
-- who the compare function ran as, and what it compared
CREATE TABLE regress_inf_compared (called_as name, old jsonb, new jsonb);
GRANT INSERT ON regress_inf_compared TO regress_informer_owner;

CREATE FUNCTION regress_inf_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
CREATE FUNCTION regress_inf_inform(options delta.inform_options)
    RETURNS SETOF delta.inform_item
    LANGUAGE sql AS 'SELECT NULL::delta.inform_item WHERE false';
-- compares by "version": NULL when either object has none
CREATE FUNCTION regress_inf_compare(old jsonb, new jsonb) RETURNS integer
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.regress_inf_compared VALUES (current_user, old, new);
    RETURN (new ->> 'version')::integer - (old ->> 'version')::integer;
END
$$;

SET ROLE regress_informer_owner;
SELECT kind, inform, compare, inform_timeout FROM delta.register_controller('regress_inf',
    'regress_inf_work(delta.resource)', inform => 'regress_inf_inform(delta.inform_options)',
    inform_timeout => '5 seconds', max_attempts => 7);
SELECT kind, inform, compare FROM delta.register_controller('regress_inf_cmp',
    'regress_inf_work(delta.resource)', inform => 'regress_inf_inform(delta.inform_options)',
    compare => 'regress_inf_compare(jsonb, jsonb)');
SELECT kind, inform FROM delta.register_controller('regress_inf_none',
    'regress_inf_work(delta.resource)');
RESET ROLE;

CREATE FUNCTION pg_temp.runs()
    RETURNS TABLE (kind text, state text, due text, attempt integer, process_existing boolean,
                   options delta.inform_options, again boolean, held_by_me boolean, errors jsonb)
    LANGUAGE sql AS $$
    SELECT ir.kind, ir.state,
           CASE WHEN ir.due_at <= now() THEN 'now' ELSE 'later' END,
           ir.attempt, ir.process_existing, ir.options, ir.again,
           ir.holder_pid = pg_backend_pid() AND ir.holder_started_at = delta._backend_start(),
           (SELECT jsonb_agg(e - 'at') FROM jsonb_array_elements(ir.errors) AS e)
    FROM delta.inform_run AS ir WHERE ir.kind LIKE 'regress_inf%'
    ORDER BY ir.kind
$$;

--
-- schedule_inform: bad input is refused and nothing is queued
--
SELECT regress_util.try($$SELECT delta.schedule_inform('regress_inf_nosuch')$$);
SELECT regress_util.try($$SELECT delta.schedule_inform('regress_inf_none')$$);
SELECT regress_util.try($$SELECT delta.schedule_inform('regress_inf', options => ROW(NULL, NULL, 0, NULL))$$);
SELECT regress_util.try($$SELECT delta.schedule_inform('regress_inf', options => ROW(NULL, NULL, -5, NULL))$$);
SELECT regress_util.try($$SELECT delta.schedule_inform(NULL)$$);
SELECT regress_util.try($$SELECT delta.schedule_inform('')$$);
SELECT regress_util.try($$SELECT delta.schedule_inform(repeat('k', 64))$$);
SELECT count(*) AS queued FROM delta.inform_run WHERE kind LIKE 'regress_inf%';

--
-- schedule_inform queues one run per kind, due now
--
SELECT delta.schedule_inform('regress_inf');
SELECT * FROM pg_temp.runs();
-- again: still one row; process_existing is ORed in, options replaced
UPDATE delta.inform_run SET due_at = now() + interval '1 hour' WHERE kind = 'regress_inf';
SELECT delta.schedule_inform('regress_inf', process_existing => true,
    options => ROW('2020-01-01', '{"team": "a"}', 10, 'created_at'));
SELECT * FROM pg_temp.runs();
SELECT delta.schedule_inform('regress_inf', process_existing => false);
SELECT * FROM pg_temp.runs();
SELECT delta.schedule_inform('regress_inf', process_existing => NULL,
    options => ROW(NULL, NULL, 5, NULL));
SELECT * FROM pg_temp.runs();
DELETE FROM delta.inform_run WHERE kind = 'regress_inf';
-- a NULL process_existing is false
SELECT delta.schedule_inform('regress_inf', process_existing => NULL);
SELECT * FROM pg_temp.runs();

--
-- _claim_inform: the run due first becomes running, held by the caller,
-- with what is needed to run it; "after" defaults to the cursor
--
UPDATE delta.controller SET last_inform_time = '2021-06-01 12:00:00+00' WHERE kind = 'regress_inf';
SELECT kind, inform::regprocedure, owner::regrole, timeout_ms, process_existing, options, attempt
FROM delta._claim_inform();
SELECT * FROM pg_temp.runs();
-- a running run is not claimed again
SELECT count(*) AS claimed FROM delta._claim_inform();

-- schedule_inform while it runs: asked for again after it, not made due
SELECT delta.schedule_inform('regress_inf');
SELECT * FROM pg_temp.runs();
SELECT delta.schedule_inform('regress_inf', process_existing => true);
SELECT * FROM pg_temp.runs();

-- _finish_inform, success with "again": queued again, due now, attempt reset
SELECT delta._finish_inform('regress_inf', NULL);
SELECT * FROM pg_temp.runs();
-- claimed again, now with process_existing; the cursor is still "after"
SELECT kind, process_existing, options, attempt FROM delta._claim_inform();
-- success without "again": the run is gone
SELECT delta._finish_inform('regress_inf', NULL);
SELECT * FROM pg_temp.runs();

-- options given override the cursor; the fields not given stay NULL, and
-- "after" given as NULL still defaults to the cursor
SELECT delta.schedule_inform('regress_inf',
    options => ROW('2019-01-01 00:00:00+00', '{"team": "b"}', 50, 'id'));
SELECT kind, options FROM delta._claim_inform();
SELECT delta._finish_inform('regress_inf', NULL);
SELECT delta.schedule_inform('regress_inf', options => ROW(NULL, '{"team": "c"}', NULL, NULL));
SELECT kind, options FROM delta._claim_inform();
SELECT delta._finish_inform('regress_inf', NULL);
-- everything, whatever the cursor
SELECT delta.schedule_inform('regress_inf', options => ROW('-infinity', NULL, NULL, NULL));
SELECT kind, options FROM delta._claim_inform();
SELECT delta._finish_inform('regress_inf', NULL);
-- without a cursor, "after" is NULL
SELECT delta.schedule_inform('regress_inf_cmp');
SELECT kind, inform::regprocedure, timeout_ms, options, attempt FROM delta._claim_inform();
SELECT delta._finish_inform('regress_inf_cmp', NULL);

-- runs that are not due yet are not claimed; the one due first is
SELECT delta.schedule_inform('regress_inf');
SELECT delta.schedule_inform('regress_inf_cmp');
UPDATE delta.inform_run SET due_at = now() + interval '1 hour' WHERE kind = 'regress_inf';
UPDATE delta.inform_run SET due_at = now() + interval '2 hours' WHERE kind = 'regress_inf_cmp';
SELECT count(*) AS claimed FROM delta._claim_inform();
UPDATE delta.inform_run SET due_at = now() - interval '1 minute' WHERE kind = 'regress_inf';
UPDATE delta.inform_run SET due_at = now() - interval '2 minutes' WHERE kind = 'regress_inf_cmp';
SELECT kind FROM delta._claim_inform();
SELECT kind FROM delta._claim_inform();
SELECT count(*) AS claimed FROM delta._claim_inform();
SELECT delta._finish_inform('regress_inf', NULL);
SELECT delta._finish_inform('regress_inf_cmp', NULL);

-- a run queued before its controller lost the inform function is not
-- claimed, and does not hold back the runs due after it
SELECT delta.schedule_inform('regress_inf_cmp');
UPDATE delta.inform_run SET due_at = now() - interval '1 hour' WHERE kind = 'regress_inf_cmp';
SELECT delta.schedule_inform('regress_inf');
SET ROLE regress_informer_owner;
SELECT kind, inform FROM delta.register_controller('regress_inf_cmp',
    'regress_inf_work(delta.resource)', compare => 'regress_inf_compare(jsonb, jsonb)', replace => true);
RESET ROLE;
SELECT kind FROM delta._claim_inform();
SELECT count(*) AS claimed FROM delta._claim_inform();
SELECT * FROM pg_temp.runs();
SELECT delta._finish_inform('regress_inf', NULL);
-- with an inform function again, the queued run is claimed
SET ROLE regress_informer_owner;
SELECT kind, inform FROM delta.register_controller('regress_inf_cmp',
    'regress_inf_work(delta.resource)', inform => 'regress_inf_inform(delta.inform_options)',
    compare => 'regress_inf_compare(jsonb, jsonb)', replace => true);
RESET ROLE;
SELECT kind FROM delta._claim_inform();
SELECT delta._finish_inform('regress_inf_cmp', NULL);

--
-- _finish_inform, failure: failed, due after the back-off, the error
-- recorded, the attempt kept; a later success clears the run
--
SELECT delta.schedule_inform('regress_inf');
SELECT kind, attempt FROM delta._claim_inform();
SELECT last_inform_time AS cursor_before FROM delta.controller WHERE kind = 'regress_inf' \gset
-- in one transaction, so now() is the time of the outcome
BEGIN;
SELECT delta._finish_inform('regress_inf', '{"at": "x", "attempt": 1, "error": "source unreachable", "sqlstate": "P0001"}');
SELECT * FROM pg_temp.runs();
SELECT due_at - now() BETWEEN interval '0.75 seconds' AND interval '1.25 seconds' AS backoff_in_bounds
FROM delta.inform_run WHERE kind = 'regress_inf';
COMMIT;
SELECT last_inform_time = :'cursor_before' AS cursor_unchanged FROM delta.controller WHERE kind = 'regress_inf';
-- not due before the back-off has passed
SELECT count(*) AS claimed FROM delta._claim_inform();
UPDATE delta.inform_run SET due_at = now() WHERE kind = 'regress_inf';
SELECT kind, attempt FROM delta._claim_inform();
BEGIN;
SELECT delta._finish_inform('regress_inf', '{"attempt": 2, "error": "still unreachable"}');
SELECT * FROM pg_temp.runs();
SELECT due_at - now() BETWEEN interval '1.5 seconds' AND interval '2.5 seconds' AS backoff_in_bounds
FROM delta.inform_run WHERE kind = 'regress_inf';
COMMIT;
-- schedule_inform makes a failed run due now, its attempts counted anew
SELECT delta.schedule_inform('regress_inf');
SELECT * FROM pg_temp.runs();
SELECT kind, attempt FROM delta._claim_inform();
SELECT delta._finish_inform('regress_inf', NULL);
SELECT * FROM pg_temp.runs();

-- _finish_inform touches only a run held by the caller
SELECT delta.schedule_inform('regress_inf');
SELECT kind FROM delta._claim_inform();
UPDATE delta.inform_run SET holder_pid = pg_backend_pid() + 1 WHERE kind = 'regress_inf';
SELECT delta._finish_inform('regress_inf', NULL);
SELECT delta._finish_inform('regress_inf', '{"error": "not mine"}');
SELECT kind, state, attempt, errors FROM delta.inform_run WHERE kind = 'regress_inf';
DELETE FROM delta.inform_run WHERE kind = 'regress_inf';

--
-- _schedule_due_informs: one run, due within the jitter, for each
-- controller with an inform function whose inform_interval has passed since
-- its last successful run; never a second run of a kind
--
SET ROLE regress_informer_owner;
SELECT kind FROM delta.register_controller('regress_inf_recent', 'regress_inf_work(delta.resource)',
    inform => 'regress_inf_inform(delta.inform_options)', inform_interval => '1 hour');
SELECT kind FROM delta.register_controller('regress_inf_old', 'regress_inf_work(delta.resource)',
    inform => 'regress_inf_inform(delta.inform_options)', inform_interval => '1 hour');
RESET ROLE;
UPDATE delta.controller SET last_inform_run_at = now() - interval '30 minutes' WHERE kind = 'regress_inf_recent';
UPDATE delta.controller SET last_inform_run_at = now() - interval '2 hours' WHERE kind = 'regress_inf_old';
-- regress_inf never ran (NULL: due), regress_inf_cmp already has a queued run
UPDATE delta.controller SET last_inform_run_at = NULL WHERE kind IN ('regress_inf', 'regress_inf_cmp');
SELECT delta.schedule_inform('regress_inf_cmp', process_existing => true);
UPDATE delta.inform_run SET due_at = now() + interval '5 hours' WHERE kind = 'regress_inf_cmp';
SELECT delta._schedule_due_informs('0') AS queued;
SELECT * FROM pg_temp.runs();
SELECT delta._schedule_due_informs('0') AS queued;
-- the jitter spreads the due times over [now, now + jitter)
DELETE FROM delta.inform_run WHERE kind IN ('regress_inf', 'regress_inf_old');
SELECT delta._schedule_due_informs('1 hour') AS queued;
SELECT kind, due_at >= now() AND due_at < now() + interval '1 hour' AS due_within_jitter
FROM delta.inform_run WHERE kind IN ('regress_inf', 'regress_inf_old') ORDER BY kind;
DELETE FROM delta.inform_run WHERE kind LIKE 'regress_inf%';
SELECT delta.unregister_controller('regress_inf_recent');
SELECT delta.unregister_controller('regress_inf_old');

--
-- _apply_inform: what an inform run returned, applied
--
CREATE FUNCTION pg_temp.resources(kind text)
    RETURNS TABLE (object_id text, state delta.resource_state, attempt integer, due text,
                   generation bigint, namespace text, object jsonb, metadata jsonb, tags text[],
                   max_attempts integer, external_created_at timestamptz)
    LANGUAGE sql AS $$
    SELECT r.object_id, r.state, r.attempt,
           CASE WHEN r.due_at IS NULL THEN 'never' WHEN r.due_at <= now() THEN 'now' ELSE 'later' END,
           r.generation, r.namespace, r.object, r.metadata, r.tags, r.max_attempts,
           r.external_created_at
    FROM delta.resource AS r WHERE r.kind = resources.kind
    ORDER BY r.object_id
$$;
CREATE FUNCTION pg_temp.cursor(kind text)
    RETURNS TABLE (last_inform_time timestamptz, last_inform_run_at timestamptz)
    LANGUAGE sql AS $$
    SELECT c.last_inform_time, c.last_inform_run_at FROM delta.controller AS c WHERE c.kind = cursor.kind
$$;
-- existing resources in every state an inform run can meet
SELECT count(*) FROM delta.inform_many('regress_inf',
    '[{"object_id": "synced_same", "object": {"v": 1}},
      {"object_id": "synced_changed", "object": {"v": 1}},
      {"object_id": "failed_same", "object": {"v": 1}},
      {"object_id": "deleted_same", "object": {"v": 1}},
      {"object_id": "deleted_changed", "object": {"v": 1}},
      {"object_id": "pending_same", "object": {"v": 1}}]'::jsonb,
    namespace => 'regress_inf');
UPDATE delta.resource SET state = 'synced', due_at = NULL, synced_at = now()
WHERE kind = 'regress_inf' AND object_id LIKE 'synced%';
UPDATE delta.resource SET state = 'failed', attempt = 2, due_at = now() + interval '1 hour'
WHERE kind = 'regress_inf' AND object_id = 'failed_same';
UPDATE delta.resource SET state = 'deleted', due_at = NULL
WHERE kind = 'regress_inf' AND object_id LIKE 'deleted%';
UPDATE delta.resource SET state = 'pending', attempt = 1, due_at = NULL
WHERE kind = 'regress_inf' AND object_id = 'pending_same';
UPDATE delta.controller SET last_inform_time = NULL, last_inform_run_at = NULL WHERE kind = 'regress_inf';

-- new: inserted scheduled, with the item's namespace, metadata, tags and
-- max_attempts, else the defaults ('default', {}, {}, the controller's);
-- deleted: skipped; unchanged and synced: skipped; synced but changed, or
-- not synced: rescheduled (a pending one stays pending, its generation moves)
SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "new_full", "object": {"v": 1}, "namespace": "regress_inf",
       "metadata": {"source": "crm"}, "tags": ["blue", "big-one"], "max_attempts": 3,
       "external_created_at": "2022-01-01 00:00:00+00"},
      {"object_id": "new_defaults", "object": {"v": 1}},
      {"object_id": "synced_same", "object": {"v": 1}, "namespace": "regress_inf"},
      {"object_id": "synced_changed", "object": {"v": 2}, "namespace": "regress_inf"},
      {"object_id": "failed_same", "object": {"v": 1}, "namespace": "regress_inf"},
      {"object_id": "deleted_same", "object": {"v": 1}, "namespace": "regress_inf"},
      {"object_id": "deleted_changed", "object": {"v": 2}, "namespace": "regress_inf"},
      {"object_id": "pending_same", "object": {"v": 1}, "namespace": "regress_inf",
       "external_created_at": "2022-03-01 00:00:00+00"}]',
    false, '2023-01-01 00:00:00+00') AS applied;
SELECT * FROM pg_temp.resources('regress_inf');
-- the cursor moved to the newest external_created_at returned
SELECT * FROM pg_temp.cursor('regress_inf');

-- process_existing: unchanged synced resources are rescheduled too (deleted
-- ones still skipped), and the cursor stays where it is
UPDATE delta.resource SET state = 'synced', attempt = 1, due_at = NULL, synced_at = now()
WHERE kind = 'regress_inf' AND state IN ('scheduled', 'pending');
SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "synced_same", "object": {"v": 1}, "namespace": "regress_inf"},
      {"object_id": "deleted_same", "object": {"v": 1}, "namespace": "regress_inf",
       "external_created_at": "2030-01-01 00:00:00+00"}]',
    true, '2024-01-01 00:00:00+00') AS applied;
SELECT object_id, state, attempt, due, generation FROM pg_temp.resources('regress_inf')
WHERE object_id IN ('synced_same', 'deleted_same');
SELECT * FROM pg_temp.cursor('regress_inf');
-- the same without process_existing: skipped
UPDATE delta.resource SET state = 'synced', attempt = 1, due_at = NULL WHERE kind = 'regress_inf' AND object_id = 'synced_same';
SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "synced_same", "object": {"v": 1}, "namespace": "regress_inf"}]',
    false, '2024-02-01 00:00:00+00') AS applied;
SELECT object_id, state, attempt, due, generation FROM pg_temp.resources('regress_inf')
WHERE object_id = 'synced_same';
-- no external_created_at returned: the cursor moves to the run's start
SELECT * FROM pg_temp.cursor('regress_inf');
-- nothing returned: likewise
SELECT delta._apply_inform('regress_inf', '[]', false, '2024-03-01 00:00:00+00') AS applied;
SELECT * FROM pg_temp.cursor('regress_inf');

-- a bad item: an error, nothing written (not even the good items before
-- it), the cursor unchanged
SELECT count(*) AS resources_before FROM delta.resource WHERE kind = 'regress_inf' \gset
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "good", "object": {}}, {"object": {}}]', false, now())$$);
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "good", "object": {}}, {"object_id": "", "object": {}}]', false, now())$$);
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "good", "object": {}}, {"object_id": "bad", "object": [1, 2]}]', false, now())$$);
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "good", "object": {}}, {"object_id": "bad"}]', false, now())$$);
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "good", "object": {}}, {"object_id": "bad", "object": {}, "tags": ["-bad"]}]', false, now())$$);
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "good", "object": {}}, {"object_id": "bad", "object": {}, "namespace": "regress_inf_nosuch"}]', false, now())$$);
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "good", "object": {}}, {"object_id": "bad", "object": {}, "max_attempts": 0}]', false, now())$$);
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "good", "object": {}}, {"object_id": "bad", "object": {}, "metadata": "x"}]', false, now())$$);
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf',
    '[{"object_id": "good", "object": {}}, {"object_id": "good", "object": {"v": 2}}]', false, now())$$);
SELECT regress_util.try($$SELECT delta._apply_inform('regress_inf_nosuch', '[]', false, now())$$);
SELECT count(*) = :resources_before AS nothing_written,
       count(*) FILTER (WHERE object_id IN ('good', 'bad')) AS good_or_bad
FROM delta.resource WHERE kind = 'regress_inf';
SELECT * FROM pg_temp.cursor('regress_inf');

--
-- _apply_inform with a compare function: it decides whether a synced
-- resource changed (0: unchanged, even when the hash differs; NULL: the hash
-- decides; anything else: changed), and runs as the controller's owner
--
SELECT count(*) FROM delta.inform_many('regress_inf_cmp',
    '[{"object_id": "same_version", "object": {"version": 1, "note": "a"}},
      {"object_id": "newer_version", "object": {"version": 1}},
      {"object_id": "older_version", "object": {"version": 5}},
      {"object_id": "no_version_same", "object": {"note": "a"}},
      {"object_id": "no_version_changed", "object": {"note": "a"}}]'::jsonb,
    namespace => 'regress_inf');
UPDATE delta.resource SET state = 'synced', due_at = NULL, synced_at = now() WHERE kind = 'regress_inf_cmp';
SELECT delta._apply_inform('regress_inf_cmp',
    '[{"object_id": "same_version", "object": {"version": 1, "note": "b"}, "namespace": "regress_inf"},
      {"object_id": "newer_version", "object": {"version": 2}, "namespace": "regress_inf"},
      {"object_id": "older_version", "object": {"version": 4}, "namespace": "regress_inf"},
      {"object_id": "no_version_same", "object": {"note": "a"}, "namespace": "regress_inf"},
      {"object_id": "no_version_changed", "object": {"note": "b"}, "namespace": "regress_inf"}]',
    false, now()) AS applied;
SELECT object_id, state, due, generation, object FROM pg_temp.resources('regress_inf_cmp');
SELECT DISTINCT called_as FROM regress_inf_compared;
SELECT old, new FROM regress_inf_compared ORDER BY new::text;
SELECT delta.unregister_controller('regress_inf');
SELECT delta.unregister_controller('regress_inf_cmp');
SELECT delta.unregister_controller('regress_inf_none');
SELECT count(*) AS resources_left FROM delta.resource WHERE kind LIKE 'regress_inf%';

--
-- the whole way, by a worker: a namespace with a worker runs the due
-- inform run as the controller's owner and informs what it returns
--
CREATE TABLE regress_inf_source (id text, body jsonb, created timestamptz);
GRANT SELECT ON regress_inf_source TO regress_informer_owner;
INSERT INTO regress_inf_source VALUES
    ('s1', '{"n": 1}', '2025-01-01 00:00:00+00'),
    ('s2', '{"n": 2}', '2025-02-01 00:00:00+00');
CREATE FUNCTION regress_inf_from_source(options delta.inform_options)
    RETURNS SETOF delta.inform_item
    LANGUAGE sql AS $$
    SELECT s.id, s.body || jsonb_build_object('informed_as', current_user), s.created,
           'regress_inf_live', NULL::jsonb, NULL::text[], NULL::integer
    FROM public.regress_inf_source AS s
    WHERE (options)."after" IS NULL OR s.created > (options)."after"
    ORDER BY s.created
$$;
SET ROLE regress_informer_owner;
SELECT kind FROM delta.register_controller('regress_inf_live', 'regress_inf_work(delta.resource)',
    inform => 'regress_inf_from_source(delta.inform_options)');
RESET ROLE;
SELECT name FROM delta.create_namespace('regress_inf_live', max_workers => 1);
SELECT delta.schedule_inform('regress_inf_live');
SELECT regress_util.wait_for($$SELECT NOT EXISTS (SELECT FROM delta.inform_run WHERE kind = 'regress_inf_live')
                               AND (SELECT count(*) = 2 FROM delta.resource
                                    WHERE kind = 'regress_inf_live' AND state = 'synced')$$) AS informed_and_synced;
SELECT object_id, state, object, namespace, external_created_at
FROM delta.resource WHERE kind = 'regress_inf_live' ORDER BY object_id;
SELECT last_inform_time FROM delta.controller WHERE kind = 'regress_inf_live';
-- the next run gets only what is newer than the cursor
INSERT INTO regress_inf_source VALUES ('s3', '{"n": 3}', '2025-03-01 00:00:00+00');
UPDATE regress_inf_source SET body = '{"n": 20}' WHERE id = 's2';
SELECT delta.schedule_inform('regress_inf_live');
SELECT regress_util.wait_for($$SELECT NOT EXISTS (SELECT FROM delta.inform_run WHERE kind = 'regress_inf_live')
                               AND (SELECT count(*) = 3 FROM delta.resource
                                    WHERE kind = 'regress_inf_live' AND state = 'synced')$$) AS informed_and_synced;
SELECT object_id, state, object FROM delta.resource WHERE kind = 'regress_inf_live' ORDER BY object_id;
SELECT last_inform_time FROM delta.controller WHERE kind = 'regress_inf_live';
SELECT max_workers FROM delta.alter_namespace('regress_inf_live', max_workers => 0);
SELECT regress_util.no_workers_here();

-- clean up
SELECT delta.unregister_controller('regress_inf_live');
SELECT count(*) AS inform_runs_left FROM delta.inform_run WHERE kind LIKE 'regress_inf%';
SELECT delta.drop_namespace('regress_inf');
SELECT delta.drop_namespace('regress_inf_live');
DROP TABLE regress_inf_compared, regress_inf_source;
DROP FUNCTION regress_inf_work(delta.resource), regress_inf_inform(delta.inform_options),
    regress_inf_compare(jsonb, jsonb), regress_inf_from_source(delta.inform_options);
REVOKE EXECUTE ON FUNCTION delta.register_controller(text, regprocedure, regprocedure,
    regprocedure, integer, interval, interval, interval, integer, boolean, interval, interval)
    FROM regress_informer_owner;
DROP ROLE regress_informer_owner;
-- the namespaces as they were, and their workers back, one of them leading
CALL regress_util.restore_all();
SELECT regress_util.workers_back();
