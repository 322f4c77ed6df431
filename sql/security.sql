--
-- Bounds of every interval, count and timestamp argument, the same checks
-- on every path of inform, computations of the workers that saturate
-- whatever is stored, and a dropped compare function.
--
\set SHOW_CONTEXT never
CALL regress_util.pause_all();
SELECT regress_util.no_workers_here();

SELECT name FROM delta.create_namespace('regress_sec', max_workers => 0);
CREATE FUNCTION regress_sec_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_sec', 'regress_sec_work(delta.resource)');

--
-- register_controller: intervals within (0, 100 years], timeouts within
-- [1 ms, 24 days], parallelism within [1, 1024]
--
SELECT regress_util.try($$SELECT delta.register_controller('regress_sec_bad', 'regress_sec_work(delta.resource)', inform_interval => '101 years')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_sec_bad', 'regress_sec_work(delta.resource)', backoff_base => '400000 years', backoff_max => '400000 years')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_sec_bad', 'regress_sec_work(delta.resource)', backoff_max => '400000 years')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_sec_bad', 'regress_sec_work(delta.resource)', work_timeout => '0.5 milliseconds')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_sec_bad', 'regress_sec_work(delta.resource)', inform_timeout => '25 days')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_sec_bad', 'regress_sec_work(delta.resource)', parallelism => 1025)$$);
-- the bounds themselves are accepted
SELECT kind, inform_interval, work_timeout, inform_timeout, parallelism, backoff_base, backoff_max
FROM delta.register_controller('regress_sec_edge', 'regress_sec_work(delta.resource)',
    inform_interval => '100 years', work_timeout => '1 millisecond', inform_timeout => '24 days',
    parallelism => 1024, backoff_base => '100 years', backoff_max => '100 years');
SELECT delta.unregister_controller('regress_sec_edge');

--
-- namespaces: retentions and expiry within (0, 100 years]
--
SELECT regress_util.try($$SELECT delta.create_namespace('regress_sec_bad', synced_retention => '10000 years')$$);
SELECT regress_util.try($$SELECT delta.alter_namespace('regress_sec', resource_expiry => '101 years')$$);

--
-- inform: the single-item fast path checks what many items check
--
SELECT regress_util.try($$SELECT delta.inform_many('regress_sec', ARRAY[ROW('o1','{}',NULL,NULL,NULL,NULL,5)::delta.inform_item], namespace => 'regress_sec', max_attempts => -1)$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_sec', ARRAY[ROW('o1','{}',NULL,NULL,NULL,NULL,5)::delta.inform_item, ROW('o2','{}',NULL,NULL,NULL,NULL,5)::delta.inform_item], namespace => 'regress_sec', max_attempts => -1)$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_sec', ARRAY[ROW('o1','{}',NULL,NULL,'{}',NULL,NULL)::delta.inform_item], namespace => 'regress_sec', metadata => '[1,2]')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_sec', ARRAY[ROW('o1','{}',NULL,NULL,'{}',NULL,NULL)::delta.inform_item], namespace => 'regress_sec', metadata => NULL)$$);
SELECT regress_util.try($$SELECT delta.inform('regress_sec', 'o1', '{}', namespace => 'regress_sec', external_created_at => 'infinity')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_sec', '[{"object_id": "o1", "object": {}, "external_created_at": "-infinity"}, {"object_id": "o2", "object": {}}]'::jsonb, namespace => 'regress_sec')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_sec', NULL::jsonb, namespace => 'regress_sec')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_sec', NULL::delta.inform_item[], namespace => 'regress_sec')$$);
SELECT regress_util.try($$SELECT delta.subscribe(NULL)$$);
-- nothing was written by the failing calls
SELECT count(*) AS resources FROM delta.resource WHERE kind = 'regress_sec';

--
-- _backoff saturates for any attempt and any setting (at most 100 years
-- times the jitter); compared in seconds: interval '125 years' counts
-- 30-day months, fewer seconds than 1.25 times 100 Julian years
--
SELECT delta._backoff(39, '1 minute', '1 hour') < interval '75 minutes' AS capped_39;
SELECT delta._backoff(33, '1 hour', '1 hour') < interval '75 minutes' AS capped_33;
SELECT extract(epoch FROM delta._backoff(a, '400000 years', '400000 years')) <= 1.25 * 3155760000 AS capped_huge
FROM (VALUES (1), (40), (2147483647)) AS v(a);
SELECT delta._backoff(NULL, '1 second', '1 hour') < interval '2 seconds' AS null_attempt;

--
-- horizons: _ago and _later saturate instead of overflowing
--
SELECT delta._ago('10000 years') AS keep_all, delta._ago('-1 day') = now() AS negative_is_now,
       delta._ago('1 hour') = now() - interval '1 hour' AS plain;
SELECT delta._later(now(), '1000000 years') AS never,
       delta._later('-infinity', '1 hour') AS unset,
       delta._later(now(), '1 hour') = now() + interval '1 hour' AS plain;

--
-- whatever the owner stored by hand, maintenance and scheduling still work
--
SELECT name FROM delta.create_namespace('regress_sec_keep', max_workers => 0);
SELECT name FROM delta.create_namespace('regress_sec_exp', max_workers => 0, resource_expiry => '1 hour');
UPDATE delta.namespace SET synced_retention = '10000 years', degraded_retention = '400000 years',
    deleted_retention = '-400000 years'
WHERE name = 'regress_sec_keep';
UPDATE delta.namespace SET resource_expiry = '400000 years' WHERE name = 'regress_sec_exp';
SELECT delta._clean(100, '400000 years') >= 0 AS cleaned;
SELECT delta._expire(100) >= 0 AS expired;
UPDATE delta.controller SET inform_interval = '1000000 years', last_inform_run_at = now()
WHERE kind = 'regress_sec';
SELECT delta._schedule_due_informs('0') >= 0 AS scheduled;
UPDATE delta.controller SET backoff_base = '400000 years', backoff_max = '400000 years'
WHERE kind = 'regress_sec';
-- in seconds: interval '125 years' counts 30-day months, fewer seconds than the cap
SELECT extract(epoch FROM delta._retry_delay('regress_sec', 100)) <= 1.25 * 3155760000 AS retry_capped;
SELECT delta.drop_namespace('regress_sec_keep');
SELECT delta.drop_namespace('regress_sec_exp');

--
-- a dropped compare function is a clean error, not "cache lookup failed"
--
CREATE FUNCTION regress_sec_compare(old jsonb, new jsonb) RETURNS integer
    LANGUAGE sql AS 'SELECT 0';
SELECT 'regress_sec_compare(jsonb,jsonb)'::regprocedure::oid AS compare_oid \gset
DROP FUNCTION regress_sec_compare(jsonb, jsonb);
SELECT regress_util.try(format($$SELECT delta._compare_as_owner(%s, 10, '{}', '{}')$$, :compare_oid), '\d+');

SELECT delta.unregister_controller('regress_sec');
SELECT delta.drop_namespace('regress_sec');
CALL regress_util.restore_all();
SELECT regress_util.workers_back();
