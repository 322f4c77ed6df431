--
-- Maintenance, as the leader runs it: delta._expire (synced resources past
-- their namespace's resource_expiry become expired) and delta._clean
-- (resources and events past their retention are deleted), called by hand
-- while no worker runs in this database.  And the GUCs that give
-- delta.create_namespace its default retention periods.
--
\set SHOW_CONTEXT never

-- No worker, and so no leader, may run maintenance behind this test's
-- back: every namespace of this database is paused until the end of the file.
CALL regress_util.pause_all();
SELECT regress_util.no_workers_here();

SELECT name, resource_expiry, synced_retention, degraded_retention, deleted_retention
FROM delta.create_namespace('regress_mt_exp', max_workers => 0, resource_expiry => '1 hour');
SELECT name, resource_expiry, synced_retention, degraded_retention, deleted_retention
FROM delta.create_namespace('regress_mt_exp2', max_workers => 0, resource_expiry => '1 hour');
SELECT name, resource_expiry, synced_retention, degraded_retention, deleted_retention
FROM delta.create_namespace('regress_mt_keep', max_workers => 0, synced_retention => '1 hour',
    degraded_retention => '2 hours', deleted_retention => '3 hours');
SELECT name, resource_expiry, synced_retention, degraded_retention, deleted_retention
FROM delta.create_namespace('regress_mt_keep2', max_workers => 0, synced_retention => '1 hour');
SELECT name, resource_expiry, synced_retention, degraded_retention, deleted_retention
FROM delta.create_namespace('regress_mt_forever', max_workers => 0, synced_retention => NULL,
    degraded_retention => NULL, deleted_retention => NULL);
CREATE FUNCTION regress_mt_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_mt', 'regress_mt_work(delta.resource)');

-- make(namespace, object_id, state, synced_ago, attempted_ago): a resource
-- in that state, last synced and last attempted that long ago
CREATE FUNCTION pg_temp.make(namespace text, object_id text, state delta.resource_state,
    synced_ago interval, attempted_ago interval) RETURNS void
    LANGUAGE sql AS $$
    SELECT FROM delta.inform('regress_mt', make.object_id, '{}', namespace => make.namespace);
    UPDATE delta.resource AS r SET
        state = make.state, attempt = 1,
        synced_at = now() - make.synced_ago,
        attempted_at = now() - make.attempted_ago,
        due_at = CASE WHEN make.state IN ('scheduled', 'failed') THEN now() + interval '1 hour' END
    WHERE r.kind = 'regress_mt' AND r.object_id = make.object_id;
$$;

CREATE FUNCTION pg_temp.resources()
    RETURNS TABLE (namespace text, object_id text, state delta.resource_state, attempt integer, due text)
    LANGUAGE sql AS $$
    SELECT r.namespace, r.object_id, r.state, r.attempt,
           CASE WHEN r.due_at IS NULL THEN 'never' WHEN r.due_at <= now() THEN 'now' ELSE 'later' END
    FROM delta.resource AS r WHERE r.kind = 'regress_mt'
    ORDER BY r.namespace, r.object_id
$$;

--
-- _expire: in a namespace with resource_expiry, synced resources synced
-- longer ago than it become expired, due now, with a new round of attempts;
-- nothing else changes
--
SELECT pg_temp.make('regress_mt_exp', 'old', 'synced', '2 hours', '2 hours');
SELECT pg_temp.make('regress_mt_exp', 'recent', 'synced', '10 minutes', '10 minutes');
SELECT pg_temp.make('regress_mt_exp', 'failed', 'failed', '2 hours', '2 hours');
SELECT pg_temp.make('regress_mt_exp', 'degraded', 'degraded', '2 hours', '2 hours');
SELECT pg_temp.make('regress_mt_forever', 'no_expiry', 'synced', '10 days', '10 days');
SELECT delta._expire(100) AS expired;
SELECT * FROM pg_temp.resources();
SELECT delta._expire(100) AS expired;
DELETE FROM delta.resource WHERE kind = 'regress_mt';

-- at most max_count per call, oldest first, across namespaces
SELECT pg_temp.make('regress_mt_exp', 'b1', 'synced', '3 hours', '3 hours');
SELECT pg_temp.make('regress_mt_exp', 'b2', 'synced', '5 hours', '5 hours');
SELECT pg_temp.make('regress_mt_exp', 'b3', 'synced', '4 hours', '4 hours');
SELECT delta._expire(1) AS expired;
SELECT object_id FROM delta.resource WHERE kind = 'regress_mt' AND state = 'expired';
SELECT pg_temp.make('regress_mt_exp2', 'c1', 'synced', '2 hours', '2 hours');
SELECT pg_temp.make('regress_mt_exp2', 'c2', 'synced', '2 hours', '2 hours');
SELECT delta._expire(2) AS expired;
SELECT count(*) FILTER (WHERE state = 'expired') AS expired,
       count(*) FILTER (WHERE state = 'synced') AS synced
FROM delta.resource WHERE kind = 'regress_mt';
SELECT delta._expire(2) AS expired;
SELECT delta._expire(2) AS expired;
SELECT delta._expire(0) AS expired;
SELECT namespace, state, count(*) FROM delta.resource WHERE kind = 'regress_mt'
GROUP BY namespace, state ORDER BY namespace, state;
DELETE FROM delta.resource WHERE kind = 'regress_mt';

--
-- _clean: deletes synced resources past synced_retention (by synced_at)
-- where the namespace has no expiry, degraded and deleted ones past their
-- retention (by attempted_at); keeps everything else, and everything of a
-- namespace whose retention is NULL
--
-- regress_mt_keep: synced 1 hour, degraded 2 hours, deleted 3 hours
SELECT pg_temp.make('regress_mt_keep', 'synced_old', 'synced', '2 hours', '2 hours');
SELECT pg_temp.make('regress_mt_keep', 'synced_recent', 'synced', '30 minutes', '30 minutes');
SELECT pg_temp.make('regress_mt_keep', 'degraded_old', 'degraded', '3 hours', '3 hours');
SELECT pg_temp.make('regress_mt_keep', 'degraded_recent', 'degraded', '10 hours', '1 hour');
SELECT pg_temp.make('regress_mt_keep', 'deleted_old', 'deleted', '4 hours', '4 hours');
SELECT pg_temp.make('regress_mt_keep', 'deleted_recent', 'deleted', '10 hours', '2 hours');
SELECT pg_temp.make('regress_mt_keep', 'failed_ancient', 'failed', '10 days', '10 days');
SELECT pg_temp.make('regress_mt_keep', 'scheduled_ancient', 'scheduled', '10 days', '10 days');
SELECT pg_temp.make('regress_mt_keep', 'expired_ancient', 'expired', '10 days', '10 days');
SELECT pg_temp.make('regress_mt_keep', 'pending_ancient', 'pending', '10 days', '10 days');
-- regress_mt_exp: expiry 1 hour; retention 24 hours, but synced resources
-- are expired there, never deleted
SELECT pg_temp.make('regress_mt_exp', 'exp_synced_ancient', 'synced', '2 days', '2 days');
SELECT pg_temp.make('regress_mt_exp', 'exp_degraded_ancient', 'degraded', '2 days', '2 days');
-- regress_mt_forever: NULL retention, kept forever
SELECT pg_temp.make('regress_mt_forever', 'forever_synced', 'synced', '10 years', '10 years');
SELECT pg_temp.make('regress_mt_forever', 'forever_degraded', 'degraded', '10 years', '10 years');
SELECT pg_temp.make('regress_mt_forever', 'forever_deleted', 'deleted', '10 years', '10 years');
SELECT regress_util.settled();
SELECT delta._clean(100, '1 day') >= 4 AS cleaned;
SELECT * FROM pg_temp.resources();
DELETE FROM delta.resource WHERE kind = 'regress_mt';

-- at most max_count per state in each namespace per call
SELECT pg_temp.make('regress_mt_keep', 's' || i, 'synced', '2 hours', '2 hours'),
       pg_temp.make('regress_mt_keep', 'g' || i, 'degraded', '3 hours', '3 hours'),
       pg_temp.make('regress_mt_keep', 'd' || i, 'deleted', '4 hours', '4 hours'),
       pg_temp.make('regress_mt_keep2', 'k' || i, 'synced', '2 hours', '2 hours')
FROM generate_series(1, 3) AS i;
SELECT regress_util.settled();
SELECT delta._clean(2, '1 day') >= 8 AS cleaned;
SELECT namespace, state, count(*) FROM delta.resource WHERE kind = 'regress_mt'
GROUP BY namespace, state ORDER BY namespace, state;
SELECT delta._clean(2, '1 day') >= 4 AS cleaned;
SELECT count(*) AS left FROM delta.resource WHERE kind = 'regress_mt';

--
-- _clean and events: an event is deleted once every subscription that
-- matches it has read it (so also when none matches), or when it is older
-- than event_retention; an event some matching subscription has not read
-- yet is kept
--
CREATE FUNCTION pg_temp.event(category text, kind text, object_id text,
    age interval DEFAULT '0') RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO delta.event (category, resource_id, kind, object_id, namespace, state, attempt, created_at)
    VALUES (category, 0, kind, object_id, 'regress_mt_keep',
            CASE category WHEN 'object_synced' THEN 'synced' WHEN 'object_failed' THEN 'failed'
                          ELSE 'deleted' END::delta.resource_state,
            1, now() - age)
$$;
CREATE FUNCTION pg_temp.events() RETURNS SETOF text
    LANGUAGE sql AS $$
    SELECT e.object_id FROM delta.event AS e WHERE e.kind LIKE 'regress_mt%' ORDER BY e.xid, e.id
$$;
SELECT delta.subscribe('{object_synced}', name => 'regress_mt_all_synced') AS sub_all \gset
SELECT delta.subscribe('{object_synced}', kinds => '{regress_mt}', name => 'regress_mt_synced') AS sub_kind \gset
SELECT delta.subscribe('{object_failed}', kinds => '{regress_mt_other}', name => 'regress_mt_other') AS sub_other \gset
SELECT pg_temp.event('object_synced', 'regress_mt', 'read_by_both');
SELECT pg_temp.event('object_synced', 'regress_mt', 'read_by_one');
SELECT pg_temp.event('object_failed', 'regress_mt', 'matched_by_none');
SELECT pg_temp.event('object_failed', 'regress_mt_other', 'unread_old', '2 days');
SELECT pg_temp.event('object_failed', 'regress_mt_other', 'unread_recent', '2 hours');
SELECT regress_util.settled();
SELECT object_id FROM delta.events(:sub_all);
SELECT object_id FROM delta.events(:sub_kind, 1);
SELECT delta._clean(100, '1 day') >= 3 AS cleaned;
SELECT * FROM pg_temp.events();
-- read by the last subscription that had not: deleted
SELECT object_id FROM delta.events(:sub_kind);
SELECT delta._clean(100, '1 day') >= 1 AS cleaned;
SELECT * FROM pg_temp.events();
-- a shorter retention
SELECT delta._clean(100, '1 hour') >= 1 AS cleaned;
SELECT * FROM pg_temp.events();

-- an event of a transaction still running is never deleted
BEGIN;
SELECT pg_temp.event('object_deleted', 'regress_mt', 'in_flight');
SELECT delta._clean(100, '1 day') IS NOT NULL AS cleaned;
SELECT * FROM pg_temp.events();
COMMIT;
SELECT regress_util.settled();
SELECT delta._clean(100, '1 day') >= 1 AS cleaned;
SELECT * FROM pg_temp.events();

-- at most max_count events per call
SELECT pg_temp.event('object_deleted', 'regress_mt', 'gone' || i) FROM generate_series(1, 3) AS i;
SELECT regress_util.settled();
SELECT delta._clean(2, '1 day') >= 2 AS cleaned;
SELECT count(*) AS left FROM delta.event WHERE kind = 'regress_mt';
SELECT delta._clean(2, '1 day') >= 1 AS cleaned;
SELECT count(*) AS left FROM delta.event WHERE kind = 'regress_mt';
SELECT delta.unsubscribe(:sub_all);
SELECT delta.unsubscribe(:sub_kind);
SELECT delta.unsubscribe(:sub_other);

--
-- create_namespace takes its default retention periods from the GUCs
-- delta.synced_retention, delta.degraded_retention and delta.deleted_retention
--
SET delta.synced_retention = '2h';
SET delta.degraded_retention = '30min';
SET delta.deleted_retention = '3d';
SELECT name, synced_retention, degraded_retention, deleted_retention
FROM delta.create_namespace('regress_mt_guc', max_workers => 0);
-- arguments given win, NULL included
SELECT name, synced_retention, degraded_retention, deleted_retention
FROM delta.create_namespace('regress_mt_guc_args', max_workers => 0,
    synced_retention => '5 minutes', degraded_retention => NULL);
RESET delta.synced_retention;
RESET delta.degraded_retention;
RESET delta.deleted_retention;
SELECT name, synced_retention = '24 hours' AS synced_24h, degraded_retention = '24 hours' AS degraded_24h,
       deleted_retention = '24 hours' AS deleted_24h
FROM delta.create_namespace('regress_mt_guc_default', max_workers => 0);
-- the GUCs refuse what is not a positive time (the range in parentheses,
-- which PostgreSQL 18 words with units, left out)
SELECT regexp_replace(regress_util.try($$SET delta.synced_retention = '0'$$), ' \(.*\)$', '') AS try;
SELECT regexp_replace(regress_util.try($$SET delta.degraded_retention = '-1h'$$), ' \(.*\)$', '') AS try;
SELECT regress_util.try($$SET delta.deleted_retention = 'forever'$$);
SHOW delta.synced_retention;

-- clean up
SELECT delta.unregister_controller('regress_mt');
DELETE FROM delta.event WHERE kind LIKE 'regress_mt%';
SELECT delta.drop_namespace(name) FROM delta.namespace WHERE name LIKE 'regress_mt%' ORDER BY name;
DROP FUNCTION regress_mt_work(delta.resource);
-- the namespaces as they were, and their workers back, one of them leading
CALL regress_util.restore_all();
SELECT regress_util.workers_back();
