--
-- Controllers: delta.register_controller and delta.unregister_controller,
-- with every kind of bad argument.
--
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.controllers() RETURNS SETOF text
    LANGUAGE sql AS $$
    SELECT kind FROM delta.controller WHERE kind LIKE 'regress%' ORDER BY kind
$$;

CREATE SCHEMA regress_ctl;
SET search_path = regress_ctl, public;

-- callbacks with the right signatures
CREATE FUNCTION work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
CREATE FUNCTION other_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
CREATE FUNCTION inform(options delta.inform_options) RETURNS SETOF delta.inform_item
    LANGUAGE sql AS 'SELECT NULL::delta.inform_item WHERE false';
CREATE FUNCTION compare(old jsonb, new jsonb) RETURNS integer
    LANGUAGE sql AS 'SELECT 0';

-- and with wrong ones
CREATE FUNCTION work_returns_int(resource delta.resource) RETURNS integer
    LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION work_returns_set(resource delta.resource) RETURNS SETOF void
    LANGUAGE sql AS 'SELECT';
CREATE FUNCTION work_two_args(resource delta.resource, extra integer) RETURNS void
    LANGUAGE sql AS 'SELECT';
CREATE FUNCTION work_no_args() RETURNS void
    LANGUAGE sql AS 'SELECT';
CREATE FUNCTION work_jsonb(resource jsonb) RETURNS void
    LANGUAGE sql AS 'SELECT';
CREATE PROCEDURE work_procedure(resource delta.resource)
    LANGUAGE sql AS 'SELECT';
CREATE FUNCTION work_step(state delta.resource, resource delta.resource) RETURNS delta.resource
    LANGUAGE sql AS 'SELECT resource';
CREATE AGGREGATE work_aggregate(delta.resource) (SFUNC = work_step, STYPE = delta.resource);
CREATE FUNCTION inform_not_set(options delta.inform_options) RETURNS delta.inform_item
    LANGUAGE sql AS 'SELECT NULL::delta.inform_item';
CREATE FUNCTION inform_jsonb(options delta.inform_options) RETURNS SETOF jsonb
    LANGUAGE sql AS 'SELECT NULL::jsonb WHERE false';
CREATE FUNCTION inform_no_args() RETURNS SETOF delta.inform_item
    LANGUAGE sql AS 'SELECT NULL::delta.inform_item WHERE false';
CREATE FUNCTION compare_bigint(old jsonb, new jsonb) RETURNS bigint
    LANGUAGE sql AS 'SELECT 0::bigint';
CREATE FUNCTION compare_json(old json, new json) RETURNS integer
    LANGUAGE sql AS 'SELECT 0';
CREATE FUNCTION compare_one(new jsonb) RETURNS integer
    LANGUAGE sql AS 'SELECT 0';

--
-- registering: defaults, then every setting
--
SELECT kind, work, inform, compare, parallelism, inform_interval, work_timeout,
       inform_timeout, max_attempts, backoff_base, backoff_max,
       owner = current_user::regrole AS owned_by_caller, last_inform_time
FROM delta.register_controller('regress_ctl_defaults', 'work(delta.resource)');

SELECT kind, work, inform, compare, parallelism, inform_interval, work_timeout,
       inform_timeout, max_attempts, backoff_base, backoff_max,
       owner = current_user::regrole AS owned_by_caller
FROM delta.register_controller(kind => 'regress_ctl_all',
    work => 'regress_ctl.work(delta.resource)',
    inform => 'inform(delta.inform_options)',
    compare => 'compare(jsonb, jsonb)',
    parallelism => 3, inform_interval => '5 minutes', work_timeout => '10 seconds',
    inform_timeout => '20 seconds', max_attempts => 4,
    backoff_base => '2 seconds', backoff_max => '2 seconds');

-- the stored row is the returned row
SELECT kind, work, inform, compare, parallelism, inform_interval, work_timeout,
       inform_timeout, max_attempts, backoff_base, backoff_max
FROM delta.controller WHERE kind = 'regress_ctl_all';

-- a kind of exactly 63 bytes is accepted
SELECT length(kind) AS length
FROM delta.register_controller(repeat('k', 63), 'work(delta.resource)');
SELECT delta.unregister_controller(repeat('k', 63));

--
-- replace
--
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_defaults', 'other_work(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_defaults', 'other_work(delta.resource)', replace => false)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_defaults', 'other_work(delta.resource)', replace => NULL)$$);
SELECT delta.register_controller('regress_ctl_defaults', 'work(delta.resource)');
SELECT work, max_attempts FROM delta.controller WHERE kind = 'regress_ctl_defaults';
SELECT kind, work, inform, compare, parallelism, max_attempts, backoff_base
FROM delta.register_controller('regress_ctl_defaults', 'other_work(delta.resource)',
    max_attempts => 2, parallelism => 1, replace => true);
-- replacing sets every setting: what is not given goes back to its default
SELECT kind, work, inform, compare, parallelism, max_attempts, inform_interval
FROM delta.register_controller('regress_ctl_all', 'work(delta.resource)', replace => true);

--
-- callbacks with the wrong signature, or missing
--
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work_returns_int(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work_returns_set(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work_two_args(delta.resource, integer)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work_no_args()')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work_jsonb(jsonb)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work_procedure(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work_aggregate(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'inform(delta.inform_options)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', inform => 'inform_not_set(delta.inform_options)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', inform => 'inform_jsonb(delta.inform_options)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', inform => 'inform_no_args()')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', inform => 'work(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', compare => 'compare_bigint(jsonb, jsonb)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', compare => 'compare_json(json, json)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', compare => 'compare_one(jsonb)')$$);
-- the message says what the signature must be
SELECT delta.register_controller('regress_ctl_bad', 'work_returns_int(delta.resource)');
SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', inform => 'inform_not_set(delta.inform_options)');
SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', compare => 'compare_bigint(jsonb, jsonb)');
-- functions that do not exist
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'no_such_function(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(integer)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 0::regprocedure)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', inform => 'no_such_inform(delta.inform_options)')$$);
SELECT * FROM pg_temp.controllers();
-- no work function: an external controller, worked through delta.claim only
SELECT kind, work IS NULL AS external, max_attempts FROM delta.register_controller('regress_ctl_ext', NULL, max_attempts => 3);
SELECT delta.unregister_controller('regress_ctl_ext');

--
-- settings out of range
--
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', parallelism => 0)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', parallelism => -1)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', max_attempts => 0)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', max_attempts => NULL)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', inform_interval => '0')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', inform_interval => NULL)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', work_timeout => '-1 second')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', work_timeout => '0')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', inform_timeout => '0')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', backoff_base => '0')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', backoff_base => NULL)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', backoff_max => '-1 hour')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', backoff_max => NULL)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_bad', 'work(delta.resource)', backoff_base => '1 minute', backoff_max => '59 seconds')$$);
-- bad settings are refused also when replacing, and the controller is kept
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_all', 'work(delta.resource)', max_attempts => 0, replace => true)$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_ctl_all', 'work_returns_int(delta.resource)', replace => true)$$);
SELECT work, max_attempts FROM delta.controller WHERE kind = 'regress_ctl_all';

--
-- kinds
--
SELECT regress_util.try($$SELECT delta.register_controller(NULL, 'work(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('', 'work(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller(repeat('k', 64), 'work(delta.resource)')$$);
-- 32 characters, 64 bytes
SELECT regress_util.try($$SELECT delta.register_controller(repeat('é', 32), 'work(delta.resource)')$$);
SELECT * FROM pg_temp.controllers();
SELECT count(*) AS controllers FROM delta.controller WHERE kind NOT LIKE 'regress%';

--
-- unregister_controller: removes the controller and its resources only
--
SELECT name FROM delta.create_namespace('regress_ctl', max_workers => 0);
SELECT count(*) FROM delta.inform_many('regress_ctl_defaults',
    '[{"object_id": "a", "object": {}}, {"object_id": "b", "object": {}}]'::jsonb,
    namespace => 'regress_ctl');
SELECT count(*) FROM delta.inform('regress_ctl_all', 'a', '{}', namespace => 'regress_ctl');
SELECT kind, count(*) FROM delta.resource WHERE namespace = 'regress_ctl' GROUP BY kind ORDER BY kind;
SELECT delta.unregister_controller('regress_ctl_defaults');
SELECT kind, count(*) FROM delta.resource WHERE namespace = 'regress_ctl' GROUP BY kind ORDER BY kind;
SELECT * FROM pg_temp.controllers();
-- its kind is unknown now
SELECT regress_util.try($$SELECT delta.inform('regress_ctl_defaults', 'a', '{}', namespace => 'regress_ctl')$$);
SELECT regress_util.try($$SELECT delta.unregister_controller('regress_ctl_defaults')$$);
SELECT delta.unregister_controller('regress_ctl_defaults');
SELECT regress_util.try($$SELECT delta.unregister_controller(NULL)$$);
SELECT regress_util.try($$SELECT delta.unregister_controller('')$$);
SELECT regress_util.try($$SELECT delta.unregister_controller(repeat('k', 64))$$);
-- and it can be registered again
SELECT kind FROM delta.register_controller('regress_ctl_defaults', 'work(delta.resource)');

-- clean up
SELECT delta.unregister_controller('regress_ctl_defaults');
SELECT delta.unregister_controller('regress_ctl_all');
SELECT delta.drop_namespace('regress_ctl');
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA regress_ctl CASCADE;
RESET client_min_messages;
SELECT * FROM pg_temp.controllers();
