-- delta example: keep a CRM in step with the application's users, in PL/pgSQL.
--
--     psql -f examples/plpgsql/crm_sync.sql     (server with shared_preload_libraries = 'delta')
--
-- The application owns app.users.  Every change to a user is recorded with
-- delta.inform() by a trigger, in the same transaction as the change: if the
-- change rolls back, so does the record; if it commits, a delta worker will
-- push the user to the CRM.  The "CRM" is the table crm.contacts, standing
-- in for a remote API.
--
-- Delta concepts shown:
--   kind / object_id / object   a resource is one ('crm_user', user id) with
--                               the latest informed JSON object
--   delta.inform                transactional "this needs syncing"
--   work function               makes the outside world match one resource;
--                               returns = synced, raises = failed (retried
--                               with back-off, degraded after max_attempts)
--   delta.resource_delete       ends a run as "deleted" (the user was purged)
--   inform function             lists objects from the source of truth, for
--                               periodic re-sync (options."after" = cursor)
--   register_controller         binds the kind to its functions and settings
--
-- The file can be run again: it creates what is missing and replaces the
-- functions, the trigger and the controller.  Everything is schema-qualified
-- and the functions pin search_path: the workers call them from sessions of
-- their own.

CREATE EXTENSION IF NOT EXISTS delta;

CREATE SCHEMA IF NOT EXISTS app;
CREATE SCHEMA IF NOT EXISTS crm;

-- The application's table: the source of truth.  Users are soft-deleted
-- (deleted_at), and purged (DELETE) later.
CREATE TABLE IF NOT EXISTS app.users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at  timestamptz
);

-- The mock CRM: what a remote API would hold.  "pushes" counts how often a
-- contact was written, to show that pushing is an idempotent upsert: a retry
-- or a second push of the same user never creates a second contact.
CREATE TABLE IF NOT EXISTS crm.contacts (
    external_id  text PRIMARY KEY,          -- our user id
    email        text NOT NULL,
    full_name    text NOT NULL,
    pushes       integer NOT NULL DEFAULT 1,
    pushed_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

----------------------------------------------------------------------------
-- 1. Informing: a trigger records each change in the user's transaction.
----------------------------------------------------------------------------

-- delta.inform(kind, object_id, object) upserts the resource ('crm_user',
-- id) with the row as its object and makes it due now.  It never waits for
-- a run in progress: if the user is being pushed at that moment, that run
-- is not recorded as synced and the resource runs again with the newer
-- object.  external_created_at feeds the inform function's cursor (below).
-- On DELETE (the purge) the old row is informed: the run finds the user
-- gone.
--
-- An application role needs EXECUTE on delta.inform for this trigger (see
-- "Security and privileges" in the top-level README).
CREATE OR REPLACE FUNCTION app.users_inform_crm() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    u app.users;
BEGIN
    IF TG_OP = 'DELETE' THEN
        u := OLD;
    ELSE
        u := NEW;
    END IF;
    -- an UPDATE that changes nothing the CRM cares about needs no push
    IF TG_OP = 'UPDATE' AND (OLD.email, OLD.name, OLD.deleted_at)
                            IS NOT DISTINCT FROM (NEW.email, NEW.name, NEW.deleted_at) THEN
        RETURN NULL;
    END IF;
    PERFORM delta.inform(
        kind                => 'crm_user',
        object_id           => u.id::text,
        object              => to_jsonb(u),
        external_created_at => u.created_at);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER users_inform_crm
    AFTER INSERT OR UPDATE OR DELETE ON app.users
    FOR EACH ROW EXECUTE FUNCTION app.users_inform_crm();

----------------------------------------------------------------------------
-- 2. Working: make the CRM match one user.
----------------------------------------------------------------------------

-- Called by a delta worker, as the role that registered the controller, in
-- a subtransaction and under work_timeout.  resource.object is the latest
-- informed version of the user; resource.attempt counts the tries.
--
-- Outcomes:
--   returns normally      → synced; the run's writes (the upsert into
--                           crm.contacts) commit together with that state,
--                           never one without the other
--   RAISE                 → failed: the run's writes are rolled back, the
--                           error (message, SQLSTATE, hint) is appended to
--                           the resource's errors, and it is retried after
--                           backoff_base * 2^(attempt-1) (jittered, capped
--                           at backoff_max); after max_attempts: degraded.
--                           A later inform (the user fixes the address)
--                           schedules it again from attempt 0.
--   delta.resource_delete → deleted when the function returns.  It returns
--                           normally, and the run's writes (here: removing
--                           the contact) commit with the deleted state, so
--                           clean-up and deletion are one run.
CREATE OR REPLACE FUNCTION app.crm_user_work(resource delta.resource) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    email text := resource.object ->> 'email';
BEGIN
    -- Purged from the source of truth: remove the contact and end the
    -- resource in the same run.  The resource is kept, state 'deleted', for
    -- the namespace's deleted_retention, then cleaned up.
    IF NOT EXISTS (SELECT FROM app.users AS u WHERE u.id = resource.object_id::bigint) THEN
        DELETE FROM crm.contacts AS c WHERE c.external_id = resource.object_id;
        PERFORM delta.resource_delete(format('user %s no longer exists', resource.object_id));
        RETURN;
    END IF;

    -- Soft-deleted: the CRM must not have the contact.  Returning commits
    -- the removal, and the resource is synced: the CRM matches the user.
    IF resource.object ->> 'deleted_at' IS NOT NULL THEN
        DELETE FROM crm.contacts AS c WHERE c.external_id = resource.object_id;
        RETURN;
    END IF;

    -- The "API" refuses bad input.  Raising makes the run fail; delta
    -- records the error and retries, then gives up (degraded).
    IF email IS NULL OR email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' THEN
        RAISE EXCEPTION 'CRM rejected user %: invalid email address "%"', resource.object_id, email
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Fix the address in app.users: the UPDATE informs delta again.';
    END IF;

    -- The push: an idempotent upsert keyed by our id, so a retried or
    -- repeated run converges on one contact with the latest data.
    INSERT INTO crm.contacts AS c (external_id, email, full_name)
    VALUES (resource.object_id, email, resource.object ->> 'name')
    ON CONFLICT (external_id) DO UPDATE SET
        email     = EXCLUDED.email,
        full_name = EXCLUDED.full_name,
        pushes    = c.pushes + 1,
        pushed_at = clock_timestamp();
END
$$;

----------------------------------------------------------------------------
-- 3. Periodic re-sync: the inform function.
----------------------------------------------------------------------------

-- Run by a delta worker every inform_interval and on
-- delta.schedule_inform('crm_user'), as the controller's owner.  It returns
-- the users created after options."after": delta passes the controller's
-- cursor there (the newest external_created_at of the previous run; NULL on
-- the first run), so each run lists only what is new.  That catches users
-- that never went through the trigger (a bulk load with triggers disabled, a
-- restore, users created before the controller existed).  For each item
-- delta inserts new resources, skips unchanged synced ones (same object
-- hash) and reschedules the rest.  options."limit" (NULL = no limit) caps
-- one run; the next one continues from the cursor.
CREATE OR REPLACE FUNCTION app.crm_user_inform(options delta.inform_options)
    RETURNS SETOF delta.inform_item
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT ROW(u.id::text,          -- object_id
               to_jsonb(u),         -- object: the same JSON the trigger informs
               u.created_at,        -- external_created_at: moves the cursor
               NULL, NULL, NULL,    -- namespace, metadata, tags: the defaults
               NULL)::delta.inform_item  -- max_attempts: the controller's
    FROM app.users AS u
    WHERE u.created_at > coalesce(options."after", '-infinity')
    ORDER BY u.created_at
    LIMIT options."limit"
$$;

----------------------------------------------------------------------------
-- 4. The controller.
----------------------------------------------------------------------------

-- The registering role becomes the controller's owner: both functions run
-- as that role.  max_attempts is copied onto each resource when informed.
SELECT kind, work, inform, max_attempts, work_timeout
FROM delta.register_controller(
    kind            => 'crm_user',
    work            => 'app.crm_user_work(delta.resource)',
    inform          => 'app.crm_user_inform(delta.inform_options)',
    inform_interval => '1 hour',
    max_attempts    => 5,
    work_timeout    => '30 seconds',
    backoff_base    => '5 seconds',
    backoff_max     => '10 minutes',
    replace         => true);

-- Try it:
--   INSERT INTO app.users (email, name) VALUES ('ann@example.com', 'Ann'), ('eve@invalid', 'Eve');
--   SELECT * FROM crm.contacts;                      -- Ann, a moment later
--   SELECT object_id, state, attempt, errors -> -1 ->> 'error' AS last_error
--   FROM delta.resource WHERE kind = 'crm_user';     -- Eve: failed, retried, then degraded
--   UPDATE app.users SET email = 'eve@example.com' WHERE name = 'Eve';  -- Eve syncs
--   UPDATE app.users SET deleted_at = now() WHERE name = 'Ann';  -- contact removed (synced)
--   DELETE FROM app.users WHERE name = 'Ann';        -- purged: resource 'deleted'
--   SELECT delta.schedule_inform('crm_user');        -- re-sync now, not in an hour
