--
-- The views delta.stats and delta.workers, and the work of a real worker:
-- resources informed into a namespace with one worker end synced, failed,
-- deleted or snoozed as their work function decides.
--
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.columns(relation regclass) RETURNS TABLE (name name, type text)
    LANGUAGE sql AS $$
    SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
    WHERE attrelid = relation AND attnum > 0 AND NOT attisdropped ORDER BY attnum
$$;

--
-- delta.stats: per namespace, kind and state
--
SELECT * FROM pg_temp.columns('delta.stats');

SELECT name FROM delta.create_namespace('regress_views', max_workers => 0);
CREATE FUNCTION regress_views_nothing(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_views_a', 'regress_views_nothing(delta.resource)');
SELECT kind FROM delta.register_controller('regress_views_b', 'regress_views_nothing(delta.resource)');
SELECT count(*) FROM delta.inform_many('regress_views_a',
    (SELECT jsonb_agg(jsonb_build_object('object_id', i::text, 'object', '{}'::jsonb))
     FROM generate_series(1, 6) AS i),
    namespace => 'regress_views');
SELECT count(*) FROM delta.inform_many('regress_views_b',
    '[{"object_id": "1", "object": {}}, {"object_id": "2", "object": {}}]'::jsonb,
    namespace => 'regress_views');
-- a mix of states, set by hand
UPDATE delta.resource SET
    state = CASE object_id WHEN '1' THEN 'synced' WHEN '2' THEN 'synced' WHEN '3' THEN 'failed'
                           WHEN '4' THEN 'degraded' ELSE 'scheduled' END::delta.resource_state,
    synced_at = CASE WHEN object_id IN ('1', '2') THEN now() END,
    due_at = CASE object_id WHEN '1' THEN NULL WHEN '2' THEN NULL WHEN '4' THEN NULL
                            WHEN '3' THEN now() + interval '1 hour'
                            WHEN '5' THEN now() - interval '2 hours'
                            ELSE now() END
WHERE kind = 'regress_views_a';
UPDATE delta.resource SET state = 'synced', synced_at = now() - interval '2 minutes', due_at = NULL
WHERE kind = 'regress_views_b' AND object_id = '1';
SELECT namespace, kind, state, count, synced_last_minute,
       oldest_due_age >= interval '2 hours' AS waited_2_hours,
       oldest_due_age IS NULL AS nothing_due
FROM delta.stats WHERE namespace = 'regress_views'
ORDER BY namespace, kind, state;

--
-- delta.workers: every delta process of the server
--
SELECT * FROM pg_temp.columns('delta.workers');
SELECT role, database, namespace, pid > 0 AS has_pid, started_at IS NOT NULL AS has_started_at
FROM delta.workers WHERE role = 'launcher';

--
-- a real worker: namespace with one worker (its name is not ASCII), a
-- controller whose work function records what it did
--
CREATE TABLE regress_views_done (object_id text, attempt integer, ran_as name);
CREATE FUNCTION regress_views_work(resource delta.resource) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    CASE resource.object ->> 'action'
    WHEN 'fail' THEN
        RAISE EXCEPTION 'cannot sync %', resource.object_id
            USING ERRCODE = 'data_exception', HINT = 'It never works.';
    WHEN 'delete' THEN
        PERFORM delta.resource_delete('not wanted any more');
    WHEN 'snooze' THEN
        PERFORM delta.resource_snooze('1 hour');
    ELSE
        INSERT INTO regress_views_done VALUES (resource.object_id, resource.attempt, current_user);
    END CASE;
END
$$;
SELECT kind FROM delta.register_controller('regress_views_work', 'regress_views_work(delta.resource)');
SELECT name, max_workers FROM delta.create_namespace('regress_vues_été', max_workers => 1);
SELECT regress_util.wait_for($$SELECT count(*) = 1 FROM delta.workers
    WHERE role IN ('worker', 'leader') AND database = current_database()
      AND namespace = 'regress_vues_été'$$) AS worker_started;

SELECT object_id, state FROM delta.inform_many('regress_views_work', '[
        {"object_id": "ok-1", "object": {}},
        {"object_id": "ok-2", "object": {}},
        {"object_id": "ok-3", "object": {}},
        {"object_id": "fails", "object": {"action": "fail"}, "max_attempts": 1},
        {"object_id": "deletes", "object": {"action": "delete"}},
        {"object_id": "snoozes", "object": {"action": "snooze"}}
    ]'::jsonb, namespace => 'regress_vues_été')
ORDER BY object_id;
SELECT regress_util.wait_for($$SELECT count(*) = 6 FROM delta.resource
    WHERE kind = 'regress_views_work' AND state <> 'pending'
      AND (state <> 'scheduled' OR attempted_at IS NOT NULL)$$) AS all_ran;

SELECT object_id, state, attempt, synced_at IS NOT NULL AS synced,
       CASE WHEN due_at IS NULL THEN 'never' WHEN due_at > now() + interval '50 minutes' THEN 'in an hour'
            ELSE 'soon' END AS due,
       holder_pid IS NULL AS not_held, jsonb_array_length(errors) AS errors
FROM delta.resource WHERE kind = 'regress_views_work' ORDER BY object_id;
SELECT object_id, attempt, ran_as = current_user AS ran_as_owner FROM regress_views_done ORDER BY object_id;
-- what a failure records
SELECT e ->> 'error' AS error, e ->> 'sqlstate' AS sqlstate, e ->> 'hint' AS hint,
       e ->> 'attempt' AS attempt, e ? 'at' AS has_at
FROM delta.resource, jsonb_array_elements(errors) AS e
WHERE kind = 'regress_views_work' AND object_id = 'fails';
SELECT e ->> 'error' AS error
FROM delta.resource, jsonb_array_elements(errors) AS e
WHERE kind = 'regress_views_work' AND object_id = 'deletes';
-- the worker and its counters (it may be the leader of the maintenance too)
SELECT role IN ('worker', 'leader') AS is_worker, database = current_database() AS this_database,
       namespace, processed, failed
FROM delta.workers WHERE namespace = 'regress_vues_été';
SELECT namespace, kind, state, count FROM delta.stats
WHERE kind = 'regress_views_work' ORDER BY state;

-- a synced resource that is invalidated is worked again
SELECT state FROM delta.invalidate('regress_views_work', 'ok-1');
SELECT regress_util.wait_for($$SELECT count(*) = 2 FROM regress_views_done WHERE object_id = 'ok-1'$$) AS ran_again;
SELECT regress_util.wait_for($$SELECT state = 'synced' FROM delta.resource
    WHERE kind = 'regress_views_work' AND object_id = 'ok-1'$$) AS synced_again;
SELECT object_id, attempt FROM regress_views_done WHERE object_id = 'ok-1' ORDER BY attempt;

-- informing an existing resource works it again with the new object
SELECT state, already_exists FROM delta.inform('regress_views_work', 'ok-2', '{"v": 2}', namespace => 'regress_vues_été');
SELECT regress_util.wait_for($$SELECT count(*) = 2 FROM regress_views_done WHERE object_id = 'ok-2'$$) AS ran_again;
SELECT regress_util.wait_for($$SELECT state = 'synced' FROM delta.resource
    WHERE kind = 'regress_views_work' AND object_id = 'ok-2'$$) AS synced_again;

-- clean up
SELECT delta.drop_namespace('regress_vues_été', force => true);
SELECT regress_util.wait_for($$SELECT count(*) = 0 FROM delta.workers
    WHERE database = current_database() AND namespace = 'regress_vues_été'$$) AS worker_stopped;
SELECT delta.unregister_controller('regress_views_work');
SELECT delta.unregister_controller('regress_views_a');
SELECT delta.unregister_controller('regress_views_b');
SELECT delta.drop_namespace('regress_views');
DROP TABLE regress_views_done;
DROP FUNCTION regress_views_work(delta.resource);
DROP FUNCTION regress_views_nothing(delta.resource);
