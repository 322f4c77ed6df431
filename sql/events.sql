--
-- Events: delta.subscribe, delta.events and delta.unsubscribe, and the
-- events the outcomes of runs write.  The runs are driven by hand with
-- delta._claim / delta._finish / delta._rescue while no worker runs in this
-- database, so this session plays the worker.
--
\set SHOW_CONTEXT never

-- read(subscription, max): delta.events without the columns that vary
CREATE FUNCTION pg_temp.read(subscription bigint, max integer DEFAULT 100)
    RETURNS TABLE (category text, kind text, object_id text, namespace text,
                   state delta.resource_state, attempt integer, error jsonb)
    LANGUAGE sql AS $$
    SELECT e.category, e.kind, e.object_id, e.namespace, e.state, e.attempt, e.error - 'at'
    FROM delta.events(subscription, max) AS e
$$;

-- No worker may run behind this test's back: every namespace of this
-- database is paused until the end of the file.
CALL regress_util.pause_all();
SELECT regress_util.no_workers_here();

SELECT name FROM delta.create_namespace('regress_ev', max_workers => 0);
CREATE FUNCTION regress_ev_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_ev', 'regress_ev_work(delta.resource)');
SELECT kind FROM delta.register_controller('regress_ev_other', 'regress_ev_work(delta.resource)');

-- what this session claimed, as the claim returned it (regress_util.finish
-- finishes what is in it)
CREATE TEMP TABLE claimed AS SELECT * FROM delta.resource WITH NO DATA;
CREATE FUNCTION pg_temp.claim() RETURNS SETOF text
    LANGUAGE sql AS $$
    WITH c AS (INSERT INTO claimed SELECT * FROM delta._claim('regress_ev', 100) RETURNING *)
    SELECT c.object_id FROM c ORDER BY c.object_id
$$;

--
-- subscribe: bad input is refused and nothing is written
--
SELECT count(*) AS subscriptions_before FROM delta.subscription \gset
SELECT regress_util.try($$SELECT delta.subscribe(NULL)$$);
SELECT regress_util.try($$SELECT delta.subscribe('{}')$$);
SELECT regress_util.try($$SELECT delta.subscribe('{object_synced,object_exploded}')$$);
SELECT regress_util.try($$SELECT delta.subscribe('{Object_Synced}')$$);
SELECT regress_util.try($$SELECT delta.subscribe(ARRAY['object_synced', NULL])$$);
SELECT regress_util.try($$SELECT delta.subscribe('{object_synced}', kinds => '{""}')$$);
SELECT regress_util.try($$SELECT delta.subscribe('{object_synced}', kinds => ARRAY['regress_ev', NULL])$$);
SELECT count(*) = :subscriptions_before AS nothing_written FROM delta.subscription;

--
-- subscribe returns the id of a subscription owned by the caller, with its
-- categories sorted and without duplicates
--
SELECT delta.subscribe('{object_synced,object_failed,object_deleted}', name => 'regress_ev_all') AS sub_all \gset
SELECT delta.subscribe('{object_synced,object_synced}', name => 'regress_ev_synced') AS sub_synced \gset
SELECT delta.subscribe('{object_failed,object_deleted}', kinds => '{regress_ev_other}',
    name => 'regress_ev_other') AS sub_other \gset
SELECT :sub_all < :sub_synced AND :sub_synced < :sub_other AS ids_increase;
SELECT name, owner, categories, kinds, cursor_id FROM delta.subscription
WHERE name LIKE 'regress_ev%' ORDER BY id;

--
-- events and unsubscribe: bad input (subscription ids vary: the mask shows
-- them as N in messages)
--
SELECT regress_util.try(format('SELECT delta.events(%s, 0)', :sub_all), '(?<=subscription )\d+');
SELECT regress_util.try(format('SELECT delta.events(%s, -1)', :sub_all), '(?<=subscription )\d+');
SELECT regress_util.try(format('SELECT delta.events(%s, NULL)', :sub_all), '(?<=subscription )\d+');
SELECT regress_util.try($$SELECT delta.events(-1)$$);
SELECT regress_util.try($$SELECT delta.events(NULL)$$);
SELECT regress_util.try($$SELECT delta.unsubscribe(-1)$$);
SELECT regress_util.try($$SELECT delta.unsubscribe(NULL)$$);
-- a new subscription has nothing to read
SELECT regress_util.settled();
SELECT * FROM pg_temp.read(:sub_all);

--
-- each run that ends synced, failed or deleted writes one event, in the
-- transaction of its outcome; a snoozed run, or one whose resource was
-- informed again during the run, writes none
--
SELECT count(*) FROM delta.inform_many('regress_ev',
    '[{"object_id": "a", "object": {}}, {"object_id": "b", "object": {}},
      {"object_id": "c", "object": {}}, {"object_id": "d", "object": {}},
      {"object_id": "e", "object": {}}]'::jsonb,
    namespace => 'regress_ev');
SELECT count(*) FROM delta.inform('regress_ev_other', 'o1', '{}', namespace => 'regress_ev');
SELECT * FROM pg_temp.claim();
SELECT count(*) FROM delta.inform('regress_ev', 'e', '{"v": 2}', namespace => 'regress_ev');
SELECT regress_util.finish('a', 'synced');
SELECT regress_util.finish('b', 'failed', '{"error": "boom", "sqlstate": "P0001"}');
SELECT regress_util.finish('c', 'deleted', '{"error": "gone for good"}');
SELECT regress_util.finish('d', 'snoozed', NULL, '1 hour');
SELECT regress_util.finish('e', 'synced');
SELECT regress_util.finish('o1', 'failed', '{"error": "other boom"}');
SELECT object_id, state FROM delta.resource WHERE kind LIKE 'regress_ev%' ORDER BY object_id;
SELECT category, kind, object_id, namespace, state, attempt, error,
       xid = pg_current_xact_id() AS written_now, created_at IS NOT NULL AS has_created_at
FROM delta.event WHERE kind LIKE 'regress_ev%' ORDER BY xid, id;

-- events returns them in order, and moves the cursor past them
SELECT regress_util.settled();
SELECT * FROM pg_temp.read(:sub_all);
SELECT * FROM pg_temp.read(:sub_all);
-- each subscription gets the categories and kinds it asked for
SELECT * FROM pg_temp.read(:sub_synced);
SELECT * FROM pg_temp.read(:sub_other);
SELECT * FROM pg_temp.read(:sub_other);

-- max: at most that many at a time, the rest on the next calls; e runs
-- again with its newer object, and that run's outcome has an event
SELECT count(*) FROM delta.inform_many('regress_ev',
    '[{"object_id": "p1", "object": {}}, {"object_id": "p2", "object": {}},
      {"object_id": "p3", "object": {}}]'::jsonb,
    namespace => 'regress_ev');
SELECT * FROM pg_temp.claim();
SELECT regress_util.finish('e', 'synced');
SELECT regress_util.finish('p1', 'synced');
SELECT regress_util.finish('p2', 'synced');
SELECT regress_util.finish('p3', 'synced');
SELECT regress_util.settled();
SELECT * FROM pg_temp.read(:sub_synced, 2);
SELECT * FROM pg_temp.read(:sub_synced, 2);
SELECT * FROM pg_temp.read(:sub_synced, 2);
SELECT * FROM pg_temp.read(:sub_all, 1);
SELECT * FROM pg_temp.read(:sub_all, 3);
SELECT * FROM pg_temp.read(:sub_all, 3);

-- the last attempt failing: object_failed with state degraded
SELECT count(*) FROM delta.inform('regress_ev', 'last', '{}', namespace => 'regress_ev', max_attempts => 1);
SELECT * FROM pg_temp.claim();
SELECT regress_util.finish('last', 'failed', '{"error": "boom for good", "sqlstate": "P0001"}');
-- a rescue (the worker holding the resource exited): object_failed
SELECT count(*) FROM delta.inform('regress_ev', 'lost', '{}', namespace => 'regress_ev');
SELECT * FROM pg_temp.claim();
UPDATE delta.resource SET holder_pid = 999999 WHERE kind = 'regress_ev' AND object_id = 'lost';
SELECT delta._rescue('regress_ev') AS rescued;
SELECT regress_util.settled();
SELECT * FROM pg_temp.read(:sub_all);
SELECT * FROM pg_temp.read(:sub_synced);

--
-- without a matching subscription no event is written
--
SELECT count(*) AS events_before FROM delta.event \gset
DO $$ BEGIN PERFORM delta.unsubscribe(s.id) FROM delta.subscription AS s; END $$;
SELECT count(*) AS subscriptions FROM delta.subscription;
SELECT count(*) FROM delta.inform_many('regress_ev',
    '[{"object_id": "n1", "object": {}}, {"object_id": "n2", "object": {}},
      {"object_id": "n3", "object": {}}]'::jsonb,
    namespace => 'regress_ev');
SELECT * FROM pg_temp.claim();
SELECT regress_util.finish('n1', 'synced');
SELECT regress_util.finish('n2', 'failed', '{"error": "boom"}');
SELECT regress_util.finish('n3', 'deleted');
SELECT count(*) - :events_before AS events_written FROM delta.event;
-- a subscription to synced events of regress_ev: nothing for the others
SELECT delta.subscribe('{object_synced}', kinds => '{regress_ev}', name => 'regress_ev_narrow') AS sub_narrow \gset
SELECT count(*) FROM delta.inform_many('regress_ev',
    '[{"object_id": "m1", "object": {}}, {"object_id": "m2", "object": {}}]'::jsonb,
    namespace => 'regress_ev');
SELECT count(*) FROM delta.inform('regress_ev_other', 'o2', '{}', namespace => 'regress_ev');
SELECT * FROM pg_temp.claim();
SELECT regress_util.finish('m1', 'synced');
SELECT regress_util.finish('m2', 'failed', '{"error": "boom"}');
SELECT regress_util.finish('o2', 'synced');
SELECT count(*) - :events_before AS events_written FROM delta.event;
SELECT regress_util.settled();
SELECT * FROM pg_temp.read(:sub_narrow);

--
-- a transition rolled back leaves no event
--
SELECT count(*) AS events_before FROM delta.event \gset
SELECT count(*) FROM delta.inform('regress_ev', 'r1', '{}', namespace => 'regress_ev');
BEGIN;
SELECT * FROM pg_temp.claim();
SELECT regress_util.finish('r1', 'synced');
SELECT count(*) - :events_before AS events_in_transaction FROM delta.event;
ROLLBACK;
SELECT count(*) - :events_before AS events_written FROM delta.event;
SELECT object_id, state FROM delta.resource WHERE kind = 'regress_ev' AND object_id = 'r1';

--
-- an event of a transaction still running is not returned, and the cursor
-- does not move past it: it is returned once the transaction commits
--
BEGIN;
SELECT * FROM pg_temp.claim();
SELECT regress_util.finish('r1', 'synced');
SELECT count(*) - :events_before AS events_in_transaction FROM delta.event;
SELECT * FROM pg_temp.read(:sub_narrow);
COMMIT;
SELECT regress_util.settled();
SELECT * FROM pg_temp.read(:sub_narrow);
SELECT * FROM pg_temp.read(:sub_narrow);

--
-- a subscription belongs to the role that created it: other roles get
-- "permission denied", members of the owner and superusers do not
--
CREATE ROLE regress_ev_a;
CREATE ROLE regress_ev_b;
CREATE ROLE regress_ev_member IN ROLE regress_ev_a;
CREATE ROLE regress_ev_nothing;
GRANT EXECUTE ON FUNCTION delta.subscribe(text[], text[], text), delta.events(bigint, integer),
    delta.unsubscribe(bigint) TO regress_ev_a, regress_ev_b;
SET ROLE regress_ev_a;
SELECT delta.subscribe('{object_synced}', kinds => '{regress_ev}', name => 'regress_ev_of_a') AS sub_a \gset
RESET ROLE;
SELECT name, owner, categories, kinds FROM delta.subscription WHERE id = :sub_a;
-- an event for it
SELECT count(*) FROM delta.inform('regress_ev', 'for_a', '{}', namespace => 'regress_ev');
SELECT * FROM pg_temp.claim();
SELECT regress_util.finish('for_a', 'synced');
SELECT regress_util.settled();
SET ROLE regress_ev_b;
SELECT regress_util.try(format('SELECT delta.events(%s)', :sub_a), '(?<=subscription )\d+');
SELECT regress_util.try(format('SELECT delta.unsubscribe(%s)', :sub_a), '(?<=subscription )\d+');
-- nor a subscription of the superuser
SELECT regress_util.try(format('SELECT delta.events(%s)', :sub_narrow), '(?<=subscription )\d+');
-- nor the internal functions behind them
SELECT regress_util.try(format('SELECT delta._events(%s, %s, 10)', 'regress_ev_a'::regrole::oid, :sub_a), '(?<=subscription )\d+');
SELECT regress_util.try(format('SELECT delta._unsubscribe(%s, %s)', 'regress_ev_a'::regrole::oid, :sub_a), '(?<=subscription )\d+');
RESET ROLE;
-- the owner reads its events
SET ROLE regress_ev_a;
SELECT * FROM pg_temp.read(:sub_a);
RESET ROLE;
-- a member of the owner and a superuser may use it too
SET ROLE regress_ev_member;
SELECT regress_util.try(format('SELECT delta.events(%s)', :sub_a), '(?<=subscription )\d+');
RESET ROLE;
SELECT regress_util.try(format('SELECT delta.events(%s)', :sub_a), '(?<=subscription )\d+');
-- a role that was granted nothing cannot even subscribe
SET ROLE regress_ev_nothing;
SELECT regress_util.try($$SELECT delta.subscribe('{object_synced}')$$);
SELECT regress_util.try(format('SELECT delta.events(%s)', :sub_a), '(?<=subscription )\d+');
RESET ROLE;
-- the owner unsubscribes; then the subscription is gone
SET ROLE regress_ev_a;
SELECT delta.unsubscribe(:sub_a);
SELECT regress_util.try(format('SELECT delta.events(%s)', :sub_a), '(?<=subscription )\d+');
RESET ROLE;
SELECT count(*) AS left FROM delta.subscription WHERE id = :sub_a;
-- b's own subscription, unsubscribed by a superuser
SET ROLE regress_ev_b;
SELECT delta.subscribe('{object_failed}', name => 'regress_ev_of_b') AS sub_b \gset
RESET ROLE;
SELECT delta.unsubscribe(:sub_b);
SELECT count(*) AS left FROM delta.subscription WHERE id = :sub_b;

-- clean up
SELECT delta.unsubscribe(:sub_narrow);
DELETE FROM delta.event WHERE kind LIKE 'regress_ev%';
SELECT delta.unregister_controller('regress_ev');
SELECT delta.unregister_controller('regress_ev_other');
SELECT delta.drop_namespace('regress_ev');
DROP FUNCTION regress_ev_work(delta.resource);
REVOKE EXECUTE ON FUNCTION delta.subscribe(text[], text[], text), delta.events(bigint, integer),
    delta.unsubscribe(bigint) FROM regress_ev_a, regress_ev_b;
DROP ROLE regress_ev_a, regress_ev_b, regress_ev_member, regress_ev_nothing;
-- the namespaces as they were, and their workers back, one of them leading
CALL regress_util.restore_all();
SELECT regress_util.workers_back();
