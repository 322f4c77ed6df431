--
-- Namespaces: delta.create_namespace, delta.alter_namespace,
-- delta.drop_namespace, and the workers the launcher runs for them.
--
\set SHOW_CONTEXT never

-- worker processes of a namespace of this database (one of them may be the
-- leader of the database's maintenance), with those asked to stop
CREATE FUNCTION pg_temp.processes_of(namespace text) RETURNS bigint
    LANGUAGE sql AS $$
    SELECT count(*) FROM delta.workers AS w
    WHERE w.role IN ('worker', 'leader') AND w.database = current_database()
      AND w.namespace = processes_of.namespace
$$;
-- and without them: a worker the launcher started for an earlier setting
-- and asked to stop may still be on its way out
CREATE FUNCTION pg_temp.workers_of(namespace text) RETURNS bigint
    LANGUAGE sql AS $$
    SELECT count(*) FROM delta.workers AS w
    WHERE w.role IN ('worker', 'leader') AND w.database = current_database()
      AND w.namespace = workers_of.namespace AND w.state <> 'stopping'
$$;

CREATE FUNCTION pg_temp.namespaces() RETURNS SETOF text
    LANGUAGE sql AS $$
    SELECT name FROM delta.namespace ORDER BY name
$$;

--
-- 'default' exists after CREATE EXTENSION, with the documented settings
--
SELECT name, max_workers, resource_expiry, synced_retention = '24 hours' AS synced_retention_24h,
       degraded_retention = '24 hours' AS degraded_retention_24h,
       deleted_retention = '24 hours' AS deleted_retention_24h,
       paused, created_at IS NOT NULL AS has_created_at
FROM delta.namespace;

--
-- create_namespace: defaults, then every setting
--
SELECT name, max_workers, resource_expiry, synced_retention = '24 hours' AS synced_retention_24h,
       degraded_retention = '24 hours' AS degraded_retention_24h,
       deleted_retention = '24 hours' AS deleted_retention_24h, paused
FROM delta.create_namespace('regress_ns_defaults', max_workers => 0);

SELECT name, max_workers, resource_expiry, synced_retention,
       degraded_retention, deleted_retention, paused
FROM delta.create_namespace(name => 'regress_ns_all', max_workers => 0,
    resource_expiry => '10 minutes', synced_retention => '1 hour',
    degraded_retention => '2 hours', deleted_retention => '3 hours');

-- NULL retentions mean "keep forever"
SELECT name, synced_retention, degraded_retention, deleted_retention
FROM delta.create_namespace('regress_ns_keep', max_workers => 0,
    synced_retention => NULL, degraded_retention => NULL, deleted_retention => NULL);

-- a name of exactly 63 bytes is accepted
SELECT length(name) AS length
FROM delta.create_namespace(repeat('n', 63), max_workers => 0);

--
-- alter_namespace: each setting on its own; NULL leaves a setting unchanged
--
SELECT max_workers, paused FROM delta.alter_namespace('regress_ns_defaults', max_workers => 3);
SELECT max_workers, resource_expiry FROM delta.alter_namespace('regress_ns_defaults', resource_expiry => '5 minutes');
SELECT synced_retention FROM delta.alter_namespace('regress_ns_defaults', synced_retention => '1 day 2 hours');
SELECT degraded_retention FROM delta.alter_namespace('regress_ns_defaults', degraded_retention => '7 days');
SELECT deleted_retention FROM delta.alter_namespace('regress_ns_defaults', deleted_retention => '30 minutes');
SELECT paused FROM delta.alter_namespace('regress_ns_defaults', paused => true);
SELECT name, max_workers, resource_expiry, synced_retention,
       degraded_retention, deleted_retention, paused
FROM delta.alter_namespace('regress_ns_defaults');
-- more workers than the server runs (delta.max_workers = 16): a NOTICE says so
SELECT max_workers FROM delta.alter_namespace('regress_ns_defaults', max_workers => 100);
SELECT max_workers FROM delta.alter_namespace('regress_ns_defaults', max_workers => 16);
BEGIN;
SELECT name, max_workers FROM delta.create_namespace('regress_ns_many', max_workers => 1024);
ROLLBACK;
SELECT paused, max_workers FROM delta.alter_namespace('regress_ns_defaults', paused => false, max_workers => 0);
SELECT name, max_workers, resource_expiry, synced_retention,
       degraded_retention, deleted_retention, paused
FROM delta.namespace WHERE name = 'regress_ns_defaults';

--
-- bad input: the right SQLSTATE, and nothing written
--
-- names
SELECT regress_util.try($$SELECT delta.create_namespace(NULL)$$);
SELECT regress_util.try($$SELECT delta.create_namespace('')$$);
SELECT regress_util.try($$SELECT delta.create_namespace(repeat('n', 64))$$);
-- 63 characters but 126 bytes: names are limited in bytes, like identifiers
SELECT regress_util.try($$SELECT delta.create_namespace(repeat('é', 63))$$);
SELECT regress_util.try($$SELECT delta.create_namespace('default')$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_ns_all')$$);
-- settings
SELECT regress_util.try($$SELECT delta.create_namespace('regress_ns_bad', max_workers => -1)$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_ns_bad', max_workers => 1025)$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_ns_bad', max_workers => NULL)$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_ns_bad', resource_expiry => '0')$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_ns_bad', resource_expiry => '-1 second')$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_ns_bad', synced_retention => '0')$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_ns_bad', degraded_retention => '-1 day')$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_ns_bad', deleted_retention => '1 mon -31 days')$$);
SELECT * FROM pg_temp.namespaces();

-- alter: unknown or bad name, bad settings
SELECT regress_util.try($$SELECT delta.alter_namespace('regress_ns_missing', max_workers => 1)$$);
SELECT regress_util.try($$SELECT delta.alter_namespace(NULL, max_workers => 1)$$);
SELECT regress_util.try($$SELECT delta.alter_namespace('', max_workers => 1)$$);
SELECT regress_util.try($$SELECT delta.alter_namespace(repeat('n', 64), max_workers => 1)$$);
SELECT regress_util.try($$SELECT delta.alter_namespace('regress_ns_all', max_workers => -1)$$);
SELECT regress_util.try($$SELECT delta.alter_namespace('regress_ns_all', resource_expiry => '0')$$);
SELECT regress_util.try($$SELECT delta.alter_namespace('regress_ns_all', synced_retention => '-1 hour')$$);
SELECT regress_util.try($$SELECT delta.alter_namespace('regress_ns_all', degraded_retention => '0')$$);
SELECT regress_util.try($$SELECT delta.alter_namespace('regress_ns_all', deleted_retention => '0', max_workers => 5)$$);
SELECT name, max_workers, resource_expiry, synced_retention,
       degraded_retention, deleted_retention, paused
FROM delta.namespace WHERE name = 'regress_ns_all';

--
-- drop_namespace
--
SELECT regress_util.try($$SELECT delta.drop_namespace('regress_ns_missing')$$);
SELECT regress_util.try($$SELECT delta.drop_namespace(NULL)$$);
SELECT regress_util.try($$SELECT delta.drop_namespace('')$$);
-- 'default' cannot be dropped, not even with force
SELECT regress_util.try($$SELECT delta.drop_namespace('default')$$);
SELECT regress_util.try($$SELECT delta.drop_namespace('default', force => true)$$);
SELECT delta.drop_namespace('default');

-- refused while it holds resources, unless force, which deletes them
CREATE FUNCTION regress_ns_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_ns_kind', 'regress_ns_work(delta.resource)');
SELECT count(*) FROM delta.inform_many('regress_ns_kind',
    '[{"object_id": "a", "object": {}}, {"object_id": "b", "object": {}}]'::jsonb,
    namespace => 'regress_ns_all');
SELECT regress_util.try($$SELECT delta.drop_namespace('regress_ns_all')$$);
SELECT delta.drop_namespace('regress_ns_all');
SELECT regress_util.try($$SELECT delta.drop_namespace('regress_ns_all', force => NULL)$$);
SELECT namespace, count(*) FROM delta.resource WHERE kind = 'regress_ns_kind' GROUP BY 1;
SELECT delta.drop_namespace('regress_ns_all', force => true);
SELECT count(*) AS resources_left FROM delta.resource WHERE kind = 'regress_ns_kind';
SELECT * FROM pg_temp.namespaces();
-- informing into a dropped namespace is an error
SELECT regress_util.try($$SELECT delta.inform('regress_ns_kind', 'a', '{}', namespace => 'regress_ns_all')$$);
-- an empty namespace drops without force
SELECT delta.drop_namespace('regress_ns_keep');
SELECT delta.drop_namespace(repeat('n', 63));
SELECT * FROM pg_temp.namespaces();

--
-- the launcher follows namespace changes: workers start, stop on pause,
-- come back, follow max_workers, and stop when the namespace is dropped
--
SELECT max_workers FROM delta.alter_namespace('regress_ns_defaults', max_workers => 2);
SELECT regress_util.wait_for($$SELECT pg_temp.workers_of('regress_ns_defaults') = 2$$) AS started;
SELECT pg_temp.workers_of('regress_ns_defaults') AS workers;
SELECT paused FROM delta.alter_namespace('regress_ns_defaults', paused => true);
SELECT regress_util.wait_for($$SELECT pg_temp.processes_of('regress_ns_defaults') = 0$$) AS stopped;
SELECT pg_temp.processes_of('regress_ns_defaults') AS processes;
SELECT paused FROM delta.alter_namespace('regress_ns_defaults', paused => false);
SELECT regress_util.wait_for($$SELECT pg_temp.workers_of('regress_ns_defaults') = 2$$) AS restarted;
SELECT max_workers FROM delta.alter_namespace('regress_ns_defaults', max_workers => 1);
SELECT regress_util.wait_for($$SELECT pg_temp.workers_of('regress_ns_defaults') = 1$$) AS one_left;
SELECT pg_temp.workers_of('regress_ns_defaults') AS workers;
SELECT delta.drop_namespace('regress_ns_defaults');
SELECT regress_util.wait_for($$SELECT pg_temp.processes_of('regress_ns_defaults') = 0$$) AS gone;
SELECT pg_temp.processes_of('regress_ns_defaults') AS processes;

-- clean up
SELECT delta.unregister_controller('regress_ns_kind');
DROP FUNCTION regress_ns_work(delta.resource);
SELECT * FROM pg_temp.namespaces();
