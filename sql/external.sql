--
-- External workers: delta.claim and the functions that end a claim's run.
-- The namespace has no server workers (max_workers 0), so every run here
-- is the test's own; the kinds are external (no work function) or not.
--
\set SHOW_CONTEXT never
-- claim tokens are random: errors show them as N
\set uuid '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

SELECT name, max_workers FROM delta.create_namespace('regress_ext', max_workers => 0);
SELECT kind, work IS NULL AS external
FROM delta.register_controller('regress_ext', NULL, max_attempts => 2, backoff_base => '1 hour',
                               backoff_max => '2 hours');
SELECT kind, work IS NULL AS external
FROM delta.register_controller('regress_ext_other', NULL);

CREATE FUNCTION pg_temp.resource(object_id text) RETURNS TABLE (state delta.resource_state,
    attempt integer, due text, generation bigint, claims bigint, last_error text)
    LANGUAGE sql AS $$
    SELECT r.state, r.attempt,
           CASE WHEN r.due_at IS NULL THEN 'never' WHEN r.due_at <= clock_timestamp() THEN 'now'
                ELSE 'later' END,
           r.generation,
           (SELECT count(*) FROM delta.external_claim AS c WHERE c.resource_id = r.id),
           regexp_replace(((r.errors -> -1) - 'at')::text, 'pid [0-9]+', 'pid N')
    FROM delta.resource AS r
    WHERE r.kind IN ('regress_ext', 'regress_ext_other') AND r.object_id = resource.object_id
$$;

--
-- bad arguments: a clean error, nothing claimed
--
SELECT count(*) FROM delta.inform('regress_ext', 'a', '{"v": 1}', namespace => 'regress_ext');
SELECT regress_util.try($$SELECT * FROM delta.claim(NULL)$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_no_such_namespace')$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext', 0)$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext', NULL)$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext', 1001)$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext', 1, ARRAY[NULL]::text[])$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext', 1, wait => '-1 second')$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext', 1, wait => NULL)$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext', 1, wait => '2 hours')$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext', 1, lease => '0.5 seconds')$$);
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext', 1, lease => '2 days')$$);
-- inside a transaction block the claim would not be committed before the work
BEGIN;
SELECT regress_util.try($$SELECT * FROM delta.claim('regress_ext')$$);
ROLLBACK;
SELECT * FROM pg_temp.resource('a');

--
-- claim, then complete: synced, the claim gone; the token is refused after
--
SELECT kind, object_id, object, attempt, max_attempts, lease_until IS NULL AS session_held,
       token IS NOT NULL AS has_token
FROM delta.claim('regress_ext', 10);
SELECT * FROM pg_temp.resource('a');
SELECT c.token AS token_a FROM delta.external_claim AS c
JOIN delta.resource AS r ON r.id = c.resource_id WHERE r.object_id = 'a' \gset
SELECT delta.complete(:'token_a');
SELECT * FROM pg_temp.resource('a');
SELECT regress_util.try(format('SELECT delta.complete(%L)', :'token_a'), :'uuid');
SELECT regress_util.try(format('SELECT delta.fail(%L, %L)', :'token_a', 'late'), :'uuid');
SELECT regress_util.try($$SELECT delta.complete(gen_random_uuid())$$, :'uuid');
SELECT regress_util.try($$SELECT delta.complete(NULL)$$);
SELECT regress_util.try($$SELECT delta.complete_many(NULL)$$);
SELECT regress_util.try($$SELECT delta.complete_many(ARRAY[NULL]::uuid[])$$);
SELECT * FROM pg_temp.resource('a');
SELECT outcome, attempt, pid = pg_backend_pid() AS by_this_session FROM delta.run
WHERE kind = 'regress_ext' ORDER BY id;

--
-- kinds: only the kinds asked for; nothing due: no rows, at once
--
SELECT count(*) FROM delta.inform('regress_ext_other', 'o', '{}', namespace => 'regress_ext');
SELECT count(*) FROM delta.claim('regress_ext', 10, kinds => ARRAY['regress_ext']);
SELECT kind, object_id FROM delta.claim('regress_ext', 10, kinds => ARRAY['regress_ext_other']);
SELECT count(*) FROM delta.claim('regress_ext', 10);

--
-- fail: back-off, then degraded at max_attempts (2)
--
SELECT count(*) FROM delta.inform('regress_ext', 'f', '{}', namespace => 'regress_ext');
SELECT token AS token_f FROM delta.claim('regress_ext', 10) \gset
SELECT regress_util.try(format('SELECT delta.fail(%L, NULL)', :'token_f'), :'uuid');
SELECT delta.fail(:'token_f', 'the API said no', 'HTTP 503');
SELECT * FROM pg_temp.resource('f');
UPDATE delta.resource SET due_at = now() WHERE object_id = 'f';
SELECT token AS token_f FROM delta.claim('regress_ext', 10) \gset
SELECT delta.fail(:'token_f', 'still no');
SELECT * FROM pg_temp.resource('f');

--
-- snooze: due later, the attempt given back; delete: ends deleted
--
SELECT count(*) FROM delta.inform('regress_ext', 's', '{}', namespace => 'regress_ext');
SELECT token AS token_s FROM delta.claim('regress_ext', 10) \gset
SELECT regress_util.try(format('SELECT delta.snooze(%L, %L)', :'token_s', '-1 second'), :'uuid');
SELECT regress_util.try(format('SELECT delta.snooze(%L, NULL)', :'token_s'), :'uuid');
SELECT delta.snooze(:'token_s', '1 hour');
SELECT * FROM pg_temp.resource('s');
UPDATE delta.resource SET due_at = now() WHERE object_id = 's';
SELECT token AS token_s FROM delta.claim('regress_ext', 10) \gset
SELECT delta.delete(:'token_s', 'gone upstream');
SELECT * FROM pg_temp.resource('s');

--
-- informed during the run: the run's outcome does not make it synced, it
-- is due again at once with attempt 0
--
SELECT count(*) FROM delta.inform('regress_ext', 'g', '{"v": 1}', namespace => 'regress_ext');
SELECT token AS token_g FROM delta.claim('regress_ext', 10) \gset
SELECT count(*) FROM delta.inform('regress_ext', 'g', '{"v": 2}', namespace => 'regress_ext');
SELECT delta.complete_many(ARRAY[:'token_g']::uuid[]);
SELECT * FROM pg_temp.resource('g');
SELECT object FROM delta.claim('regress_ext', 10);

--
-- many at once, all or nothing: one stale token refuses the whole batch
--
SELECT count(*) FROM delta.inform_many('regress_ext', '[{"object_id": "m1", "object": {}},
    {"object_id": "m2", "object": {}}]'::jsonb, namespace => 'regress_ext');
SELECT array_agg(token ORDER BY object_id) AS tokens_m FROM delta.claim('regress_ext', 10,
    kinds => ARRAY['regress_ext']) WHERE object_id LIKE 'm%' \gset
SELECT regress_util.try(format('SELECT delta.complete_many(%L::uuid[] || %L::uuid)', :'tokens_m', :'token_a'), :'uuid');
SELECT * FROM pg_temp.resource('m1');
SELECT delta.complete_many(:'tokens_m');
SELECT * FROM pg_temp.resource('m1');
SELECT * FROM pg_temp.resource('m2');

--
-- a lease: heartbeat moves it on; a session-held claim has none
--
SELECT count(*) FROM delta.inform('regress_ext', 'l', '{}', namespace => 'regress_ext');
SELECT token AS token_l, lease_until > now() + interval '50 seconds' AS leased
FROM delta.claim('regress_ext', 10, lease => '1 minute') \gset
SELECT :'leased' AS leased;
UPDATE delta.external_claim SET lease_until = now() + interval '1 second' WHERE token = :'token_l';
SELECT delta.heartbeat(:'token_l') > now() + interval '50 seconds' AS extended;
-- a lease that ran out is rescued by the next claim: failed, attempt
-- counted, the token refused
UPDATE delta.external_claim SET lease_until = now() - interval '1 second' WHERE token = :'token_l';
SELECT count(*) FROM delta.claim('regress_ext', 10, kinds => ARRAY['regress_none']);
SELECT * FROM pg_temp.resource('l');
SELECT regress_util.try(format('SELECT delta.heartbeat(%L)', :'token_l'), :'uuid');
SELECT regress_util.try(format('SELECT delta.complete(%L)', :'token_l'), :'uuid');
SELECT * FROM pg_temp.resource('l');

--
-- a claim belongs to its role: another role's token is refused
--
CREATE ROLE regress_ext_worker;
CREATE ROLE regress_ext_other_worker;
GRANT EXECUTE ON FUNCTION delta.claim(text, integer, text[], interval, interval),
                          delta.complete(uuid), delta.fail(uuid, text, text)
    TO regress_ext_worker, regress_ext_other_worker;
SELECT count(*) FROM delta.inform('regress_ext', 'r', '{}', namespace => 'regress_ext');
SET ROLE regress_ext_worker;
SELECT token AS token_r FROM delta.claim('regress_ext', 10) \gset
SET ROLE regress_ext_other_worker;
SELECT regress_util.try(format('SELECT delta.complete(%L)', :'token_r'), :'uuid');
SELECT regress_util.try($$SELECT delta.heartbeat(gen_random_uuid())$$, :'uuid');
RESET ROLE;
SELECT * FROM pg_temp.resource('r');
SET ROLE regress_ext_worker;
SELECT delta.complete(:'token_r');
RESET ROLE;
SELECT * FROM pg_temp.resource('r');

--
-- the server's workers never claim an external kind's resources; a kind
-- with a work function can be claimed by both
--
CREATE FUNCTION regress_ext_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_ext_internal', 'regress_ext_work(delta.resource)');
SELECT name FROM delta.create_namespace('regress_ext_mixed', max_workers => 1);
SELECT count(*) FROM delta.inform('regress_ext', 'x', '{}', namespace => 'regress_ext_mixed');
SELECT count(*) FROM delta.inform('regress_ext_internal', 'i', '{}', namespace => 'regress_ext_mixed');
SELECT regress_util.wait_for($$SELECT state = 'synced' FROM delta.resource
                               WHERE kind = 'regress_ext_internal' AND object_id = 'i'$$) AS internal_synced;
SELECT * FROM pg_temp.resource('x');
SELECT (delta.alter_namespace('regress_ext_mixed', paused => true)).paused;
SELECT regress_util.wait_for($$SELECT NOT EXISTS (SELECT FROM delta.workers
                                                  WHERE namespace = 'regress_ext_mixed')$$) AS stopped;
SELECT count(*) FROM delta.inform('regress_ext_internal', 'i', '{"v": 2}', namespace => 'regress_ext_mixed');
-- a paused namespace gives nothing
SELECT count(*) FROM delta.claim('regress_ext_mixed', 10);
SELECT (delta.alter_namespace('regress_ext_mixed', paused => false, max_workers => 0)).paused;
SELECT kind, object_id FROM delta.claim('regress_ext_mixed', 10) ORDER BY kind;

-- clean up
SELECT delta.drop_namespace('regress_ext_mixed', force => true);
SELECT delta.drop_namespace('regress_ext', force => true);
SELECT delta.unregister_controller(k)
FROM unnest(ARRAY['regress_ext', 'regress_ext_other', 'regress_ext_internal']) AS k;
DROP FUNCTION regress_ext_work(delta.resource);
REVOKE ALL ON FUNCTION delta.claim(text, integer, text[], interval, interval),
                       delta.complete(uuid), delta.fail(uuid, text, text)
    FROM regress_ext_worker, regress_ext_other_worker;
DROP ROLE regress_ext_worker;
DROP ROLE regress_ext_other_worker;
