--
-- Operator functions: delta.retry and delta.retry_all, and the guard that
-- keeps a controller's functions from being dropped.  The resources live
-- in a namespace without workers; the test sets their states as a worker
-- would have.
--
\set SHOW_CONTEXT never

CREATE FUNCTION regress_op_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_op', 'regress_op_work(delta.resource)');
SELECT name FROM delta.create_namespace('regress_op', max_workers => 0);
SELECT count(*) FROM delta.inform_many('regress_op', '[
    {"object_id": "degraded", "object": {"v": 1}, "metadata": {"m": 1}, "tags": ["tag"]},
    {"object_id": "failed", "object": {}},
    {"object_id": "deleted", "object": {}},
    {"object_id": "synced", "object": {}},
    {"object_id": "pending", "object": {}},
    {"object_id": "degraded2", "object": {}}]'::jsonb, namespace => 'regress_op');
UPDATE delta.resource SET state = object_id::delta.resource_state, attempt = 3, due_at = NULL,
    errors = '[{"error": "it broke"}]'
WHERE kind = 'regress_op' AND object_id <> 'degraded2';
UPDATE delta.resource SET state = 'degraded', attempt = 10, due_at = NULL WHERE object_id = 'degraded2';
UPDATE delta.resource SET due_at = now() + interval '1 hour' WHERE object_id = 'failed';

CREATE FUNCTION pg_temp.resources() RETURNS TABLE (object_id text, state delta.resource_state,
    attempt integer, due_now boolean, namespace text, object jsonb, metadata jsonb, tags text[], errors jsonb)
    LANGUAGE sql AS $$
    SELECT object_id, state, attempt, due_at <= now(), namespace, object, metadata, tags, errors
    FROM delta.resource WHERE kind = 'regress_op' ORDER BY object_id
$$;

-- one resource: scheduled, attempt 0, due now; object, namespace, metadata,
-- tags and errors kept
SELECT object_id, state, attempt FROM delta.retry('regress_op', 'degraded');
SELECT object_id, state, attempt FROM delta.retry('regress_op', 'failed');
SELECT object_id, state, attempt FROM delta.retry('regress_op', 'deleted');
SELECT * FROM pg_temp.resources();

-- refused: running, current, unknown, bad names; nothing changes
SELECT regress_util.try($$SELECT delta.retry('regress_op', 'pending')$$);
SELECT regress_util.try($$SELECT delta.retry('regress_op', 'synced')$$);
SELECT regress_util.try($$SELECT delta.retry('regress_op', 'nope')$$);
SELECT regress_util.try($$SELECT delta.retry('regress_nokind', 'x')$$);
SELECT regress_util.try($$SELECT delta.retry('regress_op', NULL)$$);
SELECT regress_util.try($$SELECT delta.retry(NULL, 'x')$$);

-- the set form: every degraded resource of the kind by default
SELECT delta.retry_all('regress_op');
SELECT object_id, state, attempt FROM pg_temp.resources() WHERE object_id = 'degraded2';
SELECT delta.retry_all('regress_op', '{degraded, failed}');
SELECT regress_util.try($$SELECT delta.retry_all('regress_op', '{synced}')$$);
SELECT regress_util.try($$SELECT delta.retry_all('regress_op', '{pending, failed}')$$);
SELECT regress_util.try($$SELECT delta.retry_all('regress_op', NULL)$$);
SELECT regress_util.try($$SELECT delta.retry_all('regress_op', '{NULL}')$$);
SELECT regress_util.try($$SELECT delta.retry_all('regress_nokind')$$);
SELECT * FROM pg_temp.resources();

-- cancel: a scheduled or failed resource ends failed, never due, with the
-- cancel error appended; so does a pending one whose worker exited (and
-- its run is in the history, failed); everything else is refused and
-- nothing changes.  (A pending resource of a live worker: t/060_cancel.pl.)
SELECT count(*) FROM delta.inform_many('regress_op', '[
    {"object_id": "c_scheduled", "object": {}}, {"object_id": "c_failed", "object": {}},
    {"object_id": "c_pending", "object": {}}, {"object_id": "c_synced", "object": {}},
    {"object_id": "c_degraded", "object": {}}, {"object_id": "c_deleted", "object": {}},
    {"object_id": "c_expired", "object": {}}, {"object_id": "c_pending_gone", "object": {}}]'::jsonb,
    namespace => 'regress_op');
UPDATE delta.resource SET state = split_part(substr(object_id, 3), '_', 1)::delta.resource_state, attempt = 2
WHERE kind = 'regress_op' AND object_id LIKE 'c\_%' AND object_id <> 'c_scheduled';
UPDATE delta.resource SET errors = '[{"error": "it broke"}]', due_at = now() + interval '1 hour'
WHERE kind = 'regress_op' AND object_id = 'c_failed';
-- c_pending is held by this session, a live process that is no delta worker;
-- c_pending_gone by a process that no longer runs
UPDATE delta.resource SET holder_pid = pg_backend_pid(), holder_started_at = delta._backend_start(),
    attempted_at = now() - interval '1 minute'
WHERE kind = 'regress_op' AND object_id = 'c_pending';
UPDATE delta.resource SET holder_pid = 999999, holder_started_at = now() - interval '1 hour',
    attempted_at = now() - interval '1 minute'
WHERE kind = 'regress_op' AND object_id = 'c_pending_gone';
SELECT object_id, state, attempt, due_at FROM delta.cancel('regress_op', 'c_scheduled');
SELECT object_id, state, attempt, due_at FROM delta.cancel('regress_op', 'c_failed');
SELECT object_id, jsonb_path_query_array(errors, '$[*].error') AS errors,
       errors -> -1 ->> 'sqlstate' AS sqlstate, errors -> -1 ->> 'attempt' AS attempt,
       (errors -> -1 ->> 'at')::timestamptz <= now() AS at_known
FROM delta.resource WHERE kind = 'regress_op' AND object_id IN ('c_scheduled', 'c_failed') ORDER BY object_id;
SELECT object_id, state, attempt, due_at, holder_pid, holder_started_at,
       errors -> -1 ->> 'error' AS error, errors -> -1 ->> 'sqlstate' AS sqlstate
FROM delta.cancel('regress_op', 'c_pending_gone');
SELECT object_id, attempt, outcome, pid, sqlstate, error, started_at < ended_at AS timed
FROM delta.run WHERE kind = 'regress_op' AND object_id = 'c_pending_gone';
SELECT regress_util.try($$SELECT delta.cancel('regress_op', 'c_pending_gone')$$);
-- explain names the cancel
SELECT delta.explain('regress_op', 'c_scheduled');
-- a cancelled resource is cancelled already; retry starts it over
SELECT regress_util.try($$SELECT delta.cancel('regress_op', 'c_failed')$$);
SELECT object_id, state, attempt, due_at <= now() AS due FROM delta.retry('regress_op', 'c_failed');
CREATE TEMP TABLE before_cancel AS SELECT * FROM delta.resource WHERE kind = 'regress_op';
SELECT regress_util.try($$SELECT delta.cancel('regress_op', 'c_pending')$$, '(?<=process )\d+');
SELECT regress_util.try($$SELECT delta.cancel('regress_op', 'c_synced')$$);
SELECT regress_util.try($$SELECT delta.cancel('regress_op', 'c_degraded')$$);
SELECT regress_util.try($$SELECT delta.cancel('regress_op', 'c_deleted')$$);
SELECT regress_util.try($$SELECT delta.cancel('regress_op', 'c_expired')$$);
SELECT regress_util.try($$SELECT delta.cancel('regress_op', 'nope')$$);
SELECT regress_util.try($$SELECT delta.cancel('regress_nokind', 'x')$$);
SELECT regress_util.try($$SELECT delta.cancel('regress_op', NULL)$$);
SELECT regress_util.try($$SELECT delta.cancel(NULL, 'x')$$);
SELECT count(*) AS changed FROM (
    (SELECT * FROM delta.resource WHERE kind = 'regress_op' EXCEPT SELECT * FROM before_cancel)
    UNION ALL (SELECT * FROM before_cancel EXCEPT SELECT * FROM delta.resource WHERE kind = 'regress_op')) AS d;
DROP TABLE before_cancel;
DELETE FROM delta.resource WHERE kind = 'regress_op' AND object_id LIKE 'c\_%';

-- cancel of an external worker's claim (delta.claim): its run ends at once,
-- failed, not due, in the history; the claim is gone and its token refused.
-- Informed during the claim's run, the resource runs again for the newer
-- object.
\set uuid '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
SELECT kind FROM delta.register_controller('regress_op_ext', NULL);
SELECT count(*) FROM delta.inform_many('regress_op_ext',
    '[{"object_id": "e1", "object": {}}, {"object_id": "e2", "object": {}}]'::jsonb, namespace => 'regress_op');
SELECT object_id, attempt FROM delta.claim('regress_op', 2, kinds => '{regress_op_ext}') ORDER BY object_id;
SELECT c.token AS token_e1 FROM delta.external_claim AS c
JOIN delta.resource AS r ON r.id = c.resource_id WHERE r.object_id = 'e1' \gset
SELECT count(*) FROM delta.inform('regress_op_ext', 'e2', '{"v": 2}', namespace => 'regress_op');
SELECT object_id, state, attempt, due_at, holder_pid,
       errors -> -1 ->> 'error' AS error, errors -> -1 ->> 'sqlstate' AS sqlstate
FROM delta.cancel('regress_op_ext', 'e1');
SELECT object_id, state, attempt, due_at <= clock_timestamp() AS due, jsonb_array_length(errors) AS errors
FROM delta.cancel('regress_op_ext', 'e2');
SELECT count(*) AS claims FROM delta.external_claim AS c
JOIN delta.resource AS r ON r.id = c.resource_id WHERE r.kind = 'regress_op_ext';
SELECT object_id, outcome, attempt, sqlstate, error FROM delta.run
WHERE kind = 'regress_op_ext' ORDER BY object_id;
SELECT regress_util.try(format($$SELECT delta.complete(%L)$$, :'token_e1'), :'uuid');
SELECT object_id, state FROM delta.resource WHERE kind = 'regress_op_ext' ORDER BY object_id;
DELETE FROM delta.resource WHERE kind = 'regress_op_ext';
SELECT delta.unregister_controller('regress_op_ext');

-- alter_controller changes only what it is given, keeps the owner
CREATE ROLE regress_op_owner;
CREATE ROLE regress_op_other;
GRANT EXECUTE ON FUNCTION delta.register_controller, delta.alter_controller TO regress_op_owner, regress_op_other;
GRANT EXECUTE ON FUNCTION regress_op_work(delta.resource) TO regress_op_owner;
CREATE FUNCTION pg_temp.ctl() RETURNS TABLE (work regprocedure, parallelism integer, inform_interval interval,
    work_timeout interval, max_attempts integer, backoff_base interval, backoff_max interval, owner regrole)
    LANGUAGE sql AS $$
    SELECT work, parallelism, inform_interval, work_timeout, max_attempts, backoff_base, backoff_max, owner
    FROM delta.controller WHERE kind = 'regress_op_alt'
$$;
SET ROLE regress_op_owner;
SELECT kind FROM delta.register_controller('regress_op_alt', 'regress_op_work(delta.resource)',
    parallelism => 3, work_timeout => '5 s', max_attempts => 4, backoff_base => '2 s', backoff_max => '1 min');
RESET ROLE;
SELECT * FROM pg_temp.ctl();
SELECT kind, max_attempts FROM delta.alter_controller('regress_op_alt', max_attempts => 7);
SELECT * FROM pg_temp.ctl();
SELECT kind, parallelism, work_timeout FROM delta.alter_controller('regress_op_alt', reset => '{parallelism, work_timeout}',
    backoff_max => '2 min');
SELECT * FROM pg_temp.ctl();
-- refused, nothing changes
SELECT regress_util.try($$SELECT delta.alter_controller('regress_op_alt', reset => '{max_attempts}')$$);
SELECT regress_util.try($$SELECT delta.alter_controller('regress_op_alt', reset => '{NULL}')$$);
SELECT regress_util.try($$SELECT delta.alter_controller('regress_op_alt', reset => NULL)$$);
SELECT regress_util.try($$SELECT delta.alter_controller('regress_op_alt', backoff_max => '1 s')$$);
SELECT regress_util.try($$SELECT delta.alter_controller('regress_op_alt', max_attempts => 0)$$);
SELECT regress_util.try($$SELECT delta.alter_controller('regress_op_alt', work => 'regress_util.try(text, text)')$$);
SELECT regress_util.try($$SELECT delta.alter_controller('regress_nokind', max_attempts => 2)$$);
SELECT regress_util.try($$SELECT delta.alter_controller(NULL)$$);
SET ROLE regress_op_other;
SELECT regress_util.try($$SELECT delta.alter_controller('regress_op_alt', max_attempts => 2)$$);
RESET ROLE;
SELECT * FROM pg_temp.ctl();
SELECT delta.unregister_controller('regress_op_alt');
REVOKE ALL ON FUNCTION regress_op_work(delta.resource) FROM regress_op_owner;
REVOKE ALL ON FUNCTION delta.register_controller, delta.alter_controller FROM regress_op_owner, regress_op_other;
DROP ROLE regress_op_owner, regress_op_other;

-- pause_kind / resume_kind: the flag, and unknown kinds
SELECT kind, paused FROM delta.pause_kind('regress_op');
SELECT kind, paused FROM delta.pause_kind('regress_op');
SELECT kind, paused FROM delta.resume_kind('regress_op');
SELECT regress_util.try($$SELECT delta.pause_kind('regress_nokind')$$);
SELECT regress_util.try($$SELECT delta.resume_kind(NULL)$$);

-- explain: why a resource is or is not running (times and ages masked)
CREATE FUNCTION pg_temp.explain(object_id text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(delta.explain('regress_op', object_id),
        '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d(:\d\d)?', 'T', 'g'), 'in \d+ s', 'in N s', 'g')
$$;
INSERT INTO delta.resource (kind, object_id, namespace, object, hash, max_attempts, state, attempt, due_at,
    holder_pid, holder_started_at, attempted_at, synced_at, errors)
VALUES ('regress_op', 'x_backoff', 'regress_op', '{}', '', 5, 'failed', 2, now() + interval '1 hour',
        NULL, NULL, now(), NULL, '[{"attempt": 2, "sqlstate": "22023", "error": "bad value"}]'),
       ('regress_op', 'x_due', 'regress_op', '{}', '', 5, 'scheduled', 0, now(), NULL, NULL, NULL, NULL, '[]'),
       ('regress_op', 'x_degraded', 'regress_op', '{}', '', 3, 'degraded', 3, NULL,
        NULL, NULL, now(), NULL, '[{"attempt": 3, "sqlstate": "P0001", "error": "it broke"}]'),
       ('regress_op', 'x_synced', 'regress_op', '{}', '', 3, 'synced', 1, NULL, NULL, NULL, now(), now(), '[]'),
       ('regress_op', 'x_dead_holder', 'regress_op', '{}', '', 3, 'pending', 1, NULL,
        2147483647, now(), now(), NULL, '[]'),
       ('regress_op', 'x_own_holder', 'regress_op', '{}', '', 3, 'pending', 1, NULL,
        pg_backend_pid(), delta._backend_start(), now(), NULL, '[]');
SELECT pg_temp.explain('x_backoff');
SELECT pg_temp.explain('x_due');
SELECT pg_temp.explain('x_degraded');
SELECT pg_temp.explain('x_synced');
SELECT regexp_replace(pg_temp.explain('x_own_holder'), 'process \d+', 'process P');
SELECT pg_temp.explain('x_dead_holder');
-- what stands in the way: a paused kind and namespace, a parallelism cap
-- reached, no workers at all
SELECT kind FROM delta.pause_kind('regress_op');
SELECT paused FROM delta.alter_namespace('regress_op', paused => true);
SELECT parallelism FROM delta.alter_controller('regress_op', parallelism => 2);
SELECT pg_temp.explain('x_due');
SELECT kind FROM delta.resume_kind('regress_op');
SELECT paused FROM delta.alter_namespace('regress_op', paused => false);
SELECT parallelism FROM delta.alter_controller('regress_op', reset => '{parallelism}');
SELECT regress_util.try($$SELECT delta.explain('regress_op', 'nope')$$);
SELECT regress_util.try($$SELECT delta.explain('regress_op', NULL)$$);
SELECT regress_util.try($$SELECT delta.explain(NULL, 'x')$$);
DELETE FROM delta.resource WHERE kind = 'regress_op' AND object_id LIKE 'x\_%';

-- not for PUBLIC
CREATE ROLE regress_op_nobody;
SET ROLE regress_op_nobody;
SELECT regress_util.try($$SELECT delta.retry('regress_op', 'degraded')$$);
SELECT regress_util.try($$SELECT delta.retry_all('regress_op')$$);
SELECT regress_util.try($$SELECT delta.cancel('regress_op', 'degraded')$$);
SELECT regress_util.try($$SELECT delta.pause_kind('regress_op')$$);
SELECT regress_util.try($$SELECT delta.explain('regress_op', 'degraded')$$);
RESET ROLE;
DROP ROLE regress_op_nobody;

--
-- a function a controller uses cannot be dropped, by any route; once the
-- controller is unregistered it can
--
CREATE SCHEMA regress_op_fns;
CREATE FUNCTION regress_op_fns.inform(options delta.inform_options) RETURNS SETOF delta.inform_item
    LANGUAGE sql AS 'SELECT NULL::delta.inform_item WHERE false';
CREATE FUNCTION regress_op_fns.unused(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x';
SELECT kind FROM delta.register_controller('regress_op_guarded', 'regress_op_work(delta.resource)',
    inform => 'regress_op_fns.inform(delta.inform_options)');
SELECT regress_util.try($$DROP FUNCTION regress_op_work(delta.resource)$$);
SELECT regress_util.try($$DROP FUNCTION regress_op_fns.inform(delta.inform_options)$$);
SELECT regress_util.try($$DROP SCHEMA regress_op_fns CASCADE$$);
SELECT count(*) AS still_there FROM pg_proc WHERE proname IN ('inform', 'unused')
    AND pronamespace = 'regress_op_fns'::regnamespace;
-- others drop as usual
DROP FUNCTION regress_op_fns.unused(integer);
SELECT delta.unregister_controller('regress_op_guarded');
DROP SCHEMA regress_op_fns CASCADE;

SELECT delta.drop_namespace('regress_op', force => true);
SELECT regress_util.try($$DROP FUNCTION regress_op_work(delta.resource)$$);
SELECT delta.unregister_controller('regress_op');
DROP FUNCTION regress_op_work(delta.resource);
