--
-- Privileges: what roles that are not superusers can and cannot do, who owns
-- a controller, as whom callbacks run, and resistance to search_path
-- hijacking.
--
\set SHOW_CONTEXT never

-- who(role): the role's name; "(superuser)" for the one running the test
CREATE FUNCTION pg_temp.who(role regrole) RETURNS text
    LANGUAGE sql AS $$
    SELECT CASE WHEN role = session_user::regrole THEN '(superuser)' ELSE role::text END
$$;

CREATE ROLE regress_delta_app;        -- an application that informs
CREATE ROLE regress_delta_owner;      -- registers its own controllers
CREATE ROLE regress_delta_other;      -- another one, who must not touch them
CREATE ROLE regress_delta_member IN ROLE regress_delta_owner;

SELECT name FROM delta.create_namespace('regress_priv', max_workers => 0);
CREATE FUNCTION regress_priv_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_priv', 'regress_priv_work(delta.resource)');

--
-- PUBLIC: USAGE on schema delta, EXECUTE on the two functions a work
-- function calls, and nothing else
--
SELECT has_schema_privilege('regress_delta_app', 'delta', 'USAGE') AS usage,
       has_schema_privilege('regress_delta_app', 'delta', 'CREATE') AS "create";
SELECT p.oid::regprocedure AS executable_by_public
FROM pg_proc AS p
WHERE p.pronamespace = 'delta'::regnamespace
  AND has_function_privilege('regress_delta_app', p.oid, 'EXECUTE')
ORDER BY p.oid::regprocedure::text;
SELECT c.relname AS accessible_by_public
FROM pg_class AS c
WHERE c.relnamespace = 'delta'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'S')
  AND has_table_privilege('regress_delta_app', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
ORDER BY 1;

SET ROLE regress_delta_app;
SELECT regress_util.try($$SELECT delta.inform('regress_priv', 'x', '{}', namespace => 'regress_priv')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_priv', '[{"object_id": "x", "object": {}}]'::jsonb, namespace => 'regress_priv')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_priv', ARRAY[ROW('x', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_priv')$$);
SELECT regress_util.try($$SELECT delta.invalidate('regress_priv', 'x')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_priv_app', 'regress_priv_work(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.unregister_controller('regress_priv')$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_priv_app')$$);
SELECT regress_util.try($$SELECT delta.alter_namespace('regress_priv', paused => true)$$);
SELECT regress_util.try($$SELECT delta.drop_namespace('regress_priv', force => true)$$);
SELECT regress_util.try($$SELECT delta._inform('regress_priv', ARRAY[ROW('x', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], 'regress_priv', '{}', '{}', NULL)$$);
SELECT regress_util.try($$SELECT delta._claim('regress_priv', 10)$$);
SELECT regress_util.try($$SELECT delta._finish('{}', '{}', '{}', '{}', '{}', '{}', '{}')$$);
SELECT regress_util.try($$SELECT delta._hand_back('{}')$$);
SELECT regress_util.try($$SELECT delta._end_runs('{}', 'x', 'XX000')$$);
SELECT regress_util.try($$SELECT delta._rescue()$$);
SELECT regress_util.try($$SELECT delta._wake('regress_priv')$$);
SELECT regress_util.try($$SELECT delta._holder_alive(1, now())$$);
SELECT regress_util.try($$SELECT delta._backoff(1, '1 second', '1 hour')$$);
SELECT regress_util.try($$SELECT * FROM delta.resource$$);
SELECT regress_util.try($$SELECT * FROM delta.namespace$$);
SELECT regress_util.try($$SELECT * FROM delta.controller$$);
SELECT regress_util.try($$SELECT * FROM delta.stats$$);
SELECT regress_util.try($$SELECT * FROM delta.workers$$);
SELECT regress_util.try($$UPDATE delta.resource SET state = 'synced'$$);
SELECT regress_util.try($$DELETE FROM delta.controller$$);
SELECT regress_util.try($$INSERT INTO delta.namespace (name) VALUES ('regress_priv_app')$$);
-- granted to PUBLIC, but they only work inside a run
SELECT regress_util.try($$SELECT delta.resource_delete('x')$$);
SELECT regress_util.try($$SELECT delta.resource_snooze('1 hour')$$);
RESET ROLE;

--
-- an application role with the grants the README documents
--
GRANT EXECUTE ON FUNCTION delta.inform(text, text, jsonb, text, jsonb, text[], integer, timestamptz),
                          delta.inform_many(text, delta.inform_item[], text, jsonb, text[], integer),
                          delta.inform_many(text, jsonb, text, jsonb, text[], integer),
                          delta.invalidate(text, text),
                          delta.schedule_inform(text, boolean, delta.inform_options) TO regress_delta_app;
SET ROLE regress_delta_app;
SELECT kind, object_id, namespace, state, already_exists
FROM delta.inform('regress_priv', 'from-app', '{"by": "app"}', namespace => 'regress_priv');
SELECT object_id, already_exists
FROM delta.inform_many('regress_priv', '[{"object_id": "from-app", "object": {}}, {"object_id": "from-app-2", "object": {}}]'::jsonb,
    namespace => 'regress_priv')
ORDER BY object_id;
SELECT object_id, already_exists
FROM delta.inform_many('regress_priv', ARRAY[ROW('from-app-3', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item],
    namespace => 'regress_priv');
-- arguments are checked as for anyone
SELECT regress_util.try($$SELECT delta.inform('regress_priv_missing', 'x', '{}', namespace => 'regress_priv')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_priv', 'x', '[]', namespace => 'regress_priv')$$);
SELECT regress_util.try($$SELECT delta.invalidate('regress_priv', 'from-app')$$);
SELECT regress_util.try($$SELECT delta.schedule_inform('regress_priv')$$);
-- it still cannot read the tables, nor call anything else
SELECT regress_util.try($$SELECT * FROM delta.resource$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_priv_app', 'regress_priv_work(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.create_namespace('regress_priv_app')$$);
RESET ROLE;
GRANT SELECT ON delta.resource, delta.stats TO regress_delta_app;
SET ROLE regress_delta_app;
SELECT object_id, state, object FROM delta.resource WHERE kind = 'regress_priv' ORDER BY object_id;
SELECT kind, state, count FROM delta.stats WHERE namespace = 'regress_priv';
RESET ROLE;

-- a monitoring role: delta.workers reads shared memory through delta._processes()
CREATE ROLE regress_delta_monitor;
GRANT SELECT ON delta.workers TO regress_delta_monitor;
SET ROLE regress_delta_monitor;
SELECT regress_util.try($$SELECT * FROM delta.workers$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION delta._processes() TO regress_delta_monitor;
SET ROLE regress_delta_monitor;
SELECT role, database FROM delta.workers WHERE role = 'launcher';
SELECT regress_util.try($$SELECT * FROM delta.resource$$);
RESET ROLE;
REVOKE ALL ON delta.workers FROM regress_delta_monitor;
REVOKE ALL ON FUNCTION delta._processes() FROM regress_delta_monitor;
DROP ROLE regress_delta_monitor;

--
-- controllers of a role that is not superuser
--
GRANT EXECUTE ON FUNCTION delta.register_controller(text, regprocedure, regprocedure, regprocedure, integer,
        interval, interval, interval, integer, boolean, interval, interval),
                          delta.unregister_controller(text)
    TO regress_delta_owner, regress_delta_other;
CREATE SCHEMA regress_priv_owner AUTHORIZATION regress_delta_owner;
SET ROLE regress_delta_owner;
CREATE TABLE regress_priv_owner.runs (object_id text, ran_as name, session_as name, superuser text);
CREATE FUNCTION regress_priv_owner.work(resource delta.resource) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO regress_priv_owner.runs
        VALUES (resource.object_id, current_user, session_user, current_setting('is_superuser'))
$$;
-- a private function: the owner may execute it, PUBLIC may not
REVOKE EXECUTE ON FUNCTION regress_priv_owner.work(delta.resource) FROM PUBLIC;
RESET ROLE;

-- the registering role must be allowed to execute the functions
GRANT USAGE ON SCHEMA regress_priv_owner TO regress_delta_other;
SET ROLE regress_delta_other;
SELECT has_function_privilege('regress_priv_owner.work(delta.resource)', 'EXECUTE') AS may_execute;
SELECT regress_util.try($$SELECT delta.register_controller('regress_priv_owned', 'regress_priv_owner.work(delta.resource)')$$);
RESET ROLE;
CREATE FUNCTION regress_priv_private_inform(options delta.inform_options) RETURNS SETOF delta.inform_item
    LANGUAGE sql AS 'SELECT NULL::delta.inform_item WHERE false';
REVOKE EXECUTE ON FUNCTION regress_priv_private_inform(delta.inform_options) FROM PUBLIC;
SET ROLE regress_delta_owner;
SELECT regress_util.try($$SELECT delta.register_controller('regress_priv_owned', 'regress_priv_owner.work(delta.resource)', inform => 'regress_priv_private_inform(delta.inform_options)')$$);
SELECT delta.register_controller('regress_priv_owned', 'regress_priv_owner.work(delta.resource)', inform => 'regress_priv_private_inform(delta.inform_options)');

-- the owner is the calling role, not the owner of the schema that stores it
SELECT kind, work, pg_temp.who(owner) AS owner FROM delta.register_controller('regress_priv_owned', 'regress_priv_owner.work(delta.resource)');
RESET ROLE;
SELECT kind, work, pg_temp.who(owner) AS owner FROM delta.controller WHERE kind = 'regress_priv_owned';

-- another role may neither replace nor unregister it
SET ROLE regress_delta_other;
SELECT regress_util.try($$SELECT delta.register_controller('regress_priv_owned', 'public.regress_priv_work(delta.resource)')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_priv_owned', 'public.regress_priv_work(delta.resource)', replace => true)$$);
SELECT regress_util.try($$SELECT delta.unregister_controller('regress_priv_owned')$$);
SELECT delta.unregister_controller('regress_priv_owned');
-- nor the superuser's controllers
SELECT regress_util.try($$SELECT delta.register_controller('regress_priv', 'public.regress_priv_work(delta.resource)', replace => true)$$);
SELECT regress_util.try($$SELECT delta.unregister_controller('regress_priv')$$);
RESET ROLE;
SELECT kind, work, pg_temp.who(owner) AS owner FROM delta.controller WHERE kind LIKE 'regress_priv%' ORDER BY kind;

-- callbacks run as the owner, not as the superuser the workers connect as
SELECT name FROM delta.create_namespace('regress_priv_run', max_workers => 1);
SELECT object_id, state FROM delta.inform('regress_priv_owned', 'run-1', '{}', namespace => 'regress_priv_run');
SELECT regress_util.wait_for($$SELECT state = 'synced' FROM delta.resource
    WHERE kind = 'regress_priv_owned' AND object_id = 'run-1'$$) AS synced;
SELECT object_id, state FROM delta.resource WHERE kind = 'regress_priv_owned';
-- the owner is current_user and session_user of the run, not a superuser
SELECT object_id, ran_as, session_as, superuser FROM regress_priv_owner.runs;

-- an owner that may no longer execute its work function: the run fails
SET ROLE regress_delta_owner;
REVOKE EXECUTE ON FUNCTION regress_priv_owner.work(delta.resource) FROM regress_delta_owner;
RESET ROLE;
SELECT object_id, state FROM delta.inform('regress_priv_owned', 'run-2', '{}', namespace => 'regress_priv_run', max_attempts => 1);
SELECT regress_util.wait_for($$SELECT state = 'degraded' FROM delta.resource
    WHERE kind = 'regress_priv_owned' AND object_id = 'run-2'$$) AS degraded;
SELECT object_id, state, errors -> 0 ->> 'sqlstate' AS sqlstate, errors -> 0 ->> 'error' AS error
FROM delta.resource WHERE kind = 'regress_priv_owned' AND object_id = 'run-2';
SELECT count(*) AS runs FROM regress_priv_owner.runs;

-- an owner that was dropped: DROP ROLE does not know about controllers, but
-- its callbacks never run as a role that no longer exists
CREATE ROLE regress_delta_gone;
GRANT EXECUTE ON FUNCTION delta.register_controller(text, regprocedure, regprocedure, regprocedure, integer,
        interval, interval, interval, integer, boolean, interval, interval) TO regress_delta_gone;
SET ROLE regress_delta_gone;
SELECT kind, pg_temp.who(owner) AS owner FROM delta.register_controller('regress_priv_gone', 'public.regress_priv_work(delta.resource)');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION delta.register_controller(text, regprocedure, regprocedure, regprocedure, integer,
        interval, interval, interval, integer, boolean, interval, interval) FROM regress_delta_gone;
DROP ROLE regress_delta_gone;
SELECT kind, owner::oid NOT IN (SELECT oid FROM pg_roles) AS owner_gone
FROM delta.controller WHERE kind = 'regress_priv_gone';
SELECT object_id, state FROM delta.inform('regress_priv_gone', 'orphan', '{}', namespace => 'regress_priv_run', max_attempts => 1);
SELECT regress_util.wait_for($$SELECT state = 'degraded' FROM delta.resource
    WHERE kind = 'regress_priv_gone' AND object_id = 'orphan'$$) AS degraded;
SELECT object_id, state, errors -> 0 ->> 'sqlstate' AS sqlstate,
       regexp_replace(errors -> 0 ->> 'error', '\d+', 'N') AS error, errors -> 0 ->> 'hint' AS hint
FROM delta.resource WHERE kind = 'regress_priv_gone' AND object_id = 'orphan';
-- a superuser gives it a new owner
SELECT kind, pg_temp.who(owner) AS owner FROM delta.register_controller('regress_priv_gone', 'regress_priv_work(delta.resource)', replace => true);
SELECT object_id, state FROM delta.inform('regress_priv_gone', 'orphan', '{}', namespace => 'regress_priv_run');
SELECT regress_util.wait_for($$SELECT state = 'synced' FROM delta.resource
    WHERE kind = 'regress_priv_gone' AND object_id = 'orphan'$$) AS synced;
SELECT delta.unregister_controller('regress_priv_gone');
SELECT delta.drop_namespace('regress_priv_run', force => true);

-- a member of the owning role (it inherits the owner's grants) may replace
-- it, and becomes its owner
SET ROLE regress_delta_member;
SELECT kind, work, pg_temp.who(owner) AS owner FROM delta.register_controller('regress_priv_owned', 'public.regress_priv_work(delta.resource)', replace => true);
RESET ROLE;

-- a superuser may replace and unregister anyone's controller
SELECT kind, pg_temp.who(owner) AS owner FROM delta.register_controller('regress_priv_owned', 'regress_priv_work(delta.resource)', replace => true);
SELECT delta.unregister_controller('regress_priv_owned');
SELECT kind, pg_temp.who(owner) AS owner FROM delta.controller WHERE kind LIKE 'regress_priv%' ORDER BY kind;
-- and the owner may unregister its own
SET ROLE regress_delta_other;
SELECT kind, pg_temp.who(owner) AS owner FROM delta.register_controller('regress_priv_other', 'public.regress_priv_work(delta.resource)');
SELECT delta.unregister_controller('regress_priv_other');
RESET ROLE;
SELECT kind, pg_temp.who(owner) AS owner FROM delta.controller WHERE kind LIKE 'regress_priv%' ORDER BY kind;

--
-- search_path hijacking: a role puts look-alikes of pg_catalog functions and
-- operators first in its search_path; delta's functions are not fooled
--
CREATE SCHEMA regress_priv_evil AUTHORIZATION regress_delta_app;
SET ROLE regress_delta_app;
CREATE FUNCTION regress_priv_evil.sha256(bytea) RETURNS bytea
    LANGUAGE sql AS $$ SELECT '\x00'::bytea $$;
CREATE FUNCTION regress_priv_evil.jsonb_typeof(jsonb) RETURNS text
    LANGUAGE sql AS $$ SELECT 'object'::text $$;
CREATE FUNCTION regress_priv_evil.length(text) RETURNS integer
    LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION regress_priv_evil.octet_length(text) RETURNS integer
    LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION regress_priv_evil.now() RETURNS timestamptz
    LANGUAGE sql AS $$ SELECT 'infinity'::timestamptz $$;
CREATE FUNCTION regress_priv_evil.text_always_equal(text, text) RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR regress_priv_evil.= (LEFTARG = text, RIGHTARG = text,
    FUNCTION = regress_priv_evil.text_always_equal);
CREATE FUNCTION regress_priv_evil.text_never_matches(text, text) RETURNS boolean
    LANGUAGE sql AS $$ SELECT false $$;
CREATE OPERATOR regress_priv_evil.~ (LEFTARG = text, RIGHTARG = text,
    FUNCTION = regress_priv_evil.text_never_matches);
SET search_path = regress_priv_evil, pg_catalog;
-- the look-alikes are what this role's own unqualified calls get
SELECT sha256('x') AS own_sha256, jsonb_typeof('[]') AS own_jsonb_typeof, 'a' = 'b' AS own_equal;
-- delta's are not fooled: hash, checks, upsert by (kind, object_id)
SELECT object_id, object, already_exists
FROM delta.inform('regress_priv', 'hijack', '{"v": 1}', namespace => 'regress_priv', tags => '{abc}');
SELECT regress_util.try($$SELECT delta.inform('regress_priv', 'hijack', '[]', namespace => 'regress_priv')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_priv', repeat('o', 256), '{}', namespace => 'regress_priv')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_priv', 'hijack', '{}', namespace => 'regress_priv', tags => '{ab}')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_priv', 'hijack', '{}', namespace => 'regress_priv_missing')$$);
SELECT regress_util.try($$SELECT delta.invalidate('regress_priv', 'from-app')$$);
RESET search_path;
RESET ROLE;
SELECT object_id, object, tags, hash = sha256(convert_to(object::text, 'UTF8')) AS real_hash,
       created_at <= now() AS real_now
FROM delta.resource WHERE kind = 'regress_priv' AND object_id = 'hijack';
SELECT count(*) AS resources FROM delta.resource WHERE kind = 'regress_priv';

-- the same for register_controller, which runs as the caller
SET ROLE regress_delta_owner;
CREATE FUNCTION regress_priv_owner.text_always_equal(text, text) RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR regress_priv_owner.= (LEFTARG = text, RIGHTARG = text,
    FUNCTION = regress_priv_owner.text_always_equal);
CREATE FUNCTION regress_priv_owner.work2(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SET search_path = regress_priv_owner, pg_catalog;
-- registering a new kind does not replace another one, unregistering an
-- unknown kind does not remove another one
SELECT kind, pg_temp.who(owner) AS owner FROM delta.register_controller('regress_priv_hijack', 'work2(delta.resource)');
SELECT regress_util.try($$SELECT delta.unregister_controller('regress_priv_unknown')$$);
SELECT regress_util.try($$SELECT delta.register_controller('regress_priv', 'work2(delta.resource)', replace => true)$$);
SELECT delta.unregister_controller('regress_priv_hijack');
RESET search_path;
RESET ROLE;
SELECT kind, work, pg_temp.who(owner) AS owner FROM delta.controller WHERE kind LIKE 'regress_priv%' ORDER BY kind;

-- clean up
SELECT delta.unregister_controller('regress_priv');
SELECT delta.drop_namespace('regress_priv');
DROP FUNCTION regress_priv_work(delta.resource);
DROP FUNCTION regress_priv_private_inform(delta.inform_options);
SET client_min_messages = warning;
DROP SCHEMA regress_priv_owner CASCADE;
DROP SCHEMA regress_priv_evil CASCADE;
RESET client_min_messages;
REVOKE ALL ON FUNCTION delta.inform(text, text, jsonb, text, jsonb, text[], integer, timestamptz),
                       delta.inform_many(text, delta.inform_item[], text, jsonb, text[], integer),
                       delta.inform_many(text, jsonb, text, jsonb, text[], integer),
                       delta.invalidate(text, text),
                       delta.schedule_inform(text, boolean, delta.inform_options) FROM regress_delta_app;
REVOKE ALL ON delta.resource, delta.stats FROM regress_delta_app;
REVOKE ALL ON FUNCTION delta.register_controller(text, regprocedure, regprocedure, regprocedure, integer,
        interval, interval, interval, integer, boolean, interval, interval),
                       delta.unregister_controller(text)
    FROM regress_delta_owner, regress_delta_other;
DROP ROLE regress_delta_member;
DROP ROLE regress_delta_app;
DROP ROLE regress_delta_owner;
DROP ROLE regress_delta_other;
