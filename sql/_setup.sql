--
-- Helpers the other regression tests share, in the schema regress_util.
-- This file sorts before every other test, so it runs first and each test
-- may rely on what it creates.
--
\set SHOW_CONTEXT never

CREATE SCHEMA regress_util;
-- tests call try() as roles that are not superusers; nothing else
GRANT USAGE ON SCHEMA regress_util TO PUBLIC;

-- try(statement, mask): 'ok', or the SQLSTATE and message of the error the
-- statement raised, run as the calling role with its search_path.  With a
-- mask (a regular expression matching what varies from run to run, such as
-- ids), each match in the message is shown as N.
CREATE FUNCTION regress_util.try(statement text, mask text DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    code text;
    message text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
    IF mask IS NOT NULL THEN
        message := regexp_replace(message, mask, 'N', 'g');
    END IF;
    RETURN code || ': ' || message;
END
$$;

-- wait_for(query): polls a boolean query until it is true (then true) or
-- 60 seconds have passed (then false)
CREATE FUNCTION regress_util.wait_for(query text) RETURNS boolean
    LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '60 seconds';
    done boolean;
BEGIN
    LOOP
        EXECUTE query INTO done;
        IF done THEN
            RETURN true;
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

-- settled(): waits until every transaction that wrote an event has ended
-- (events() and _clean look only at events of transactions older than
-- every running one, and a background process, autovacuum say, may briefly
-- hold an older transaction id)
CREATE FUNCTION regress_util.settled() RETURNS boolean
    LANGUAGE sql AS $$
    SELECT regress_util.wait_for($q$SELECT pg_snapshot_xmin(pg_current_snapshot())
                                      > coalesce((SELECT max(xid) FROM delta.event), '0'::xid8)$q$)
$$;

-- For tests that play the worker or the leader themselves: no worker may
-- run behind their back.
--   CALL regress_util.pause_all();           every namespace paused ...
--   SELECT regress_util.no_workers_here();   ... and its workers gone
--   ...
--   CALL regress_util.restore_all();         paused as before ...
--   SELECT regress_util.workers_back();      ... and the workers back
-- (two statements each, as the launcher sees a pause only once committed)

-- pause_all(): pauses every namespace, and remembers which were paused
CREATE PROCEDURE regress_util.pause_all()
    LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE namespaces_before AS SELECT name, paused FROM delta.namespace;
    PERFORM delta.alter_namespace(n.name, paused => true) FROM delta.namespace AS n;
END
$$;

-- no_workers_here(): waits until no worker runs in this database
CREATE FUNCTION regress_util.no_workers_here() RETURNS boolean
    LANGUAGE sql AS $$
    SELECT regress_util.wait_for($q$SELECT NOT EXISTS (SELECT FROM delta.workers
                                                      WHERE database = current_database())$q$)
$$;

-- restore_all(): pauses and unpauses the namespaces pause_all() saw as they
-- were then
CREATE PROCEDURE regress_util.restore_all()
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM delta.alter_namespace(b.name, paused => b.paused) FROM pg_temp.namespaces_before AS b;
    DROP TABLE pg_temp.namespaces_before;
END
$$;

-- workers_back(): waits until the workers of this database run again, one
-- of them leading, as before
CREATE FUNCTION regress_util.workers_back() RETURNS boolean
    LANGUAGE sql AS $$
    SELECT regress_util.wait_for($q$
        SELECT (SELECT count(*) FROM delta.workers AS w
                WHERE w.database = current_database() AND w.role IN ('worker', 'leader'))
               = (SELECT coalesce(sum(n.max_workers), 0) FROM delta.namespace AS n WHERE NOT n.paused)
           AND (EXISTS (SELECT FROM delta.workers AS w
                        WHERE w.database = current_database() AND w.role = 'leader')
                OR NOT EXISTS (SELECT FROM delta.namespace AS n WHERE NOT n.paused AND n.max_workers > 0))$q$)
$$;

-- finish(object_id, outcome, error, delay): for tests that play the worker,
-- delta._finish for one resource of the session's temp table "claimed"
-- (where the test keeps what delta._claim returned), with the generation it
-- had when it was claimed; then it is no longer claimed
CREATE FUNCTION regress_util.finish(object_id text, outcome text, error jsonb DEFAULT NULL,
    delay interval DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM delta._finish(ARRAY[c.id], ARRAY[c.generation], ARRAY[outcome], ARRAY[error], ARRAY[delay],
                          ARRAY[now()], ARRAY[now()])
    FROM pg_temp.claimed AS c WHERE c.object_id = finish.object_id;
    DELETE FROM pg_temp.claimed AS c WHERE c.object_id = finish.object_id;
END
$$;

REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA regress_util FROM PUBLIC;
GRANT EXECUTE ON FUNCTION regress_util.try(text, text) TO PUBLIC;

-- what there is, and who may call it
SELECT p.oid::regprocedure AS helper, p.prokind AS kind,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
FROM pg_proc AS p WHERE p.pronamespace = 'regress_util'::regnamespace
ORDER BY p.oid::regprocedure::text;

-- try: the statement's outcome; a mask hides what varies
SELECT regress_util.try($$SELECT 1$$);
SELECT regress_util.try($$SELECT 1 / 0$$);
SELECT regress_util.try($$SELECT delta.events(123456)$$);
SELECT regress_util.try($$SELECT delta.events(123456)$$, '(?<=subscription )\d+');
-- wait_for: true once the query is true, false after 60 seconds if never
SELECT regress_util.wait_for($$SELECT true$$);
