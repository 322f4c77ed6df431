-- delta 0.1.0: the whole install script.
--
-- Every object is schema-qualified and every function pins its search_path,
-- so a hostile search_path cannot redirect anything this script or its
-- functions do (PostgreSQL docs, "Security Considerations for Extension
-- Scripts").  Functions whose names start with an underscore are internal:
-- the background workers and tests call them; PUBLIC cannot.

\echo Use "CREATE EXTENSION delta" to load this file. \quit

CREATE TYPE delta.resource_state AS ENUM (
    'scheduled', 'pending', 'synced', 'failed',
    'degraded', 'expired', 'deleted', 'unknown'
);

-- One row per namespace: a group of resources served by its own workers.
CREATE TABLE delta.namespace (
    name                text PRIMARY KEY,
    max_workers         integer NOT NULL DEFAULT 1,
    resource_expiry     interval,
    synced_retention    interval DEFAULT '24 hours',
    degraded_retention  interval DEFAULT '24 hours',
    deleted_retention   interval DEFAULT '24 hours',
    paused              boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT namespace_name_valid CHECK (pg_catalog.octet_length(name) BETWEEN 1 AND 63),
    CONSTRAINT namespace_max_workers_valid CHECK (max_workers BETWEEN 0 AND 1024)
);

-- One row per kind: the functions that work and inform it, and its settings.
CREATE TABLE delta.controller (
    kind              text PRIMARY KEY,
    work              regprocedure NOT NULL,
    inform            regprocedure,
    compare           regprocedure,
    parallelism       integer,
    inform_interval   interval NOT NULL DEFAULT '1 hour',
    work_timeout      interval,
    inform_timeout    interval,
    max_attempts      integer NOT NULL DEFAULT 10,
    backoff_base      interval NOT NULL DEFAULT '1 second',
    backoff_max       interval NOT NULL DEFAULT '1 hour',
    owner             regrole NOT NULL,
    last_inform_time  timestamptz,      -- the informers' cursor
    last_inform_run_at timestamptz,     -- start of the last successful inform run
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT controller_kind_valid CHECK (pg_catalog.octet_length(kind) BETWEEN 1 AND 63),
    CONSTRAINT controller_parallelism_valid CHECK (parallelism >= 1),
    CONSTRAINT controller_max_attempts_valid CHECK (max_attempts >= 1)
);

-- The resources, and at the same time the queue the workers claim from.
CREATE TABLE delta.resource (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state                delta.resource_state NOT NULL DEFAULT 'scheduled',
    attempt              integer NOT NULL DEFAULT 0,
    max_attempts         integer NOT NULL,
    attempted_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    synced_at            timestamptz,
    external_created_at  timestamptz,
    object_id            text NOT NULL,
    kind                 text NOT NULL,
    namespace            text NOT NULL,
    object               jsonb NOT NULL,
    hash                 bytea NOT NULL,
    metadata             jsonb NOT NULL DEFAULT '{}',
    tags                 text[] NOT NULL DEFAULT '{}',
    errors               jsonb NOT NULL DEFAULT '[]',
    -- runtime: when the resource is next due (NULL: not claimable), how many
    -- times it was informed (a run of an older generation cannot mark it
    -- synced), and which process holds it while pending
    due_at               timestamptz,
    generation           bigint NOT NULL DEFAULT 0,
    holder_pid           integer,
    holder_started_at    timestamptz,
    CONSTRAINT resource_kind_object_id_key UNIQUE (kind, object_id)
);

-- The claim reads this index in order and nothing else.
CREATE INDEX resource_due_idx ON delta.resource (namespace, due_at)
    WHERE due_at IS NOT NULL;
-- Runs in flight: parallelism counts and the rescue of dead holders.
CREATE INDEX resource_pending_idx ON delta.resource (kind)
    WHERE state = 'pending';

CREATE TYPE delta.inform_item AS (
    object_id            text,
    object               jsonb,
    external_created_at  timestamptz,
    namespace            text,
    metadata             jsonb,
    tags                 text[],
    max_attempts         integer
);

CREATE TYPE delta.inform_options AS (
    "after"     timestamptz,
    labels      jsonb,
    "limit"     integer,
    order_by    text
);

-- What delta.inform and delta.inform_many return for each resource.
CREATE TYPE delta.inform_result AS (
    id                   bigint,
    kind                 text,
    object_id            text,
    namespace            text,
    state                delta.resource_state,
    attempt              integer,
    max_attempts         integer,
    object               jsonb,
    metadata             jsonb,
    tags                 text[],
    created_at           timestamptz,
    external_created_at  timestamptz,
    already_exists       boolean
);

-- Finished resources by age, for the expirer and the cleaner.  Synced
-- resources are keyed by time alone: every insert lands on the rightmost
-- page, the cheapest place, since one is made for each resource synced.
CREATE INDEX resource_synced_idx ON delta.resource (synced_at)
    WHERE state = 'synced';
CREATE INDEX resource_ended_idx ON delta.resource (namespace, state, attempted_at)
    WHERE state IN ('degraded', 'deleted');

-- Inform runs queued or in flight: at most one per kind.
CREATE TABLE delta.inform_run (
    kind               text PRIMARY KEY REFERENCES delta.controller (kind) ON DELETE CASCADE,
    state              text NOT NULL DEFAULT 'scheduled',
    due_at             timestamptz NOT NULL DEFAULT pg_catalog.now(),
    attempt            integer NOT NULL DEFAULT 0,
    process_existing   boolean NOT NULL DEFAULT false,
    options            delta.inform_options,
    again              boolean NOT NULL DEFAULT false,   -- asked for while running
    holder_pid         integer,
    holder_started_at  timestamptz,
    errors             jsonb NOT NULL DEFAULT '[]',
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT inform_run_state_valid CHECK (state IN ('scheduled', 'running', 'failed'))
);
CREATE INDEX inform_run_due_idx ON delta.inform_run (due_at) WHERE state <> 'running';

-- Durable events: written with the state change that causes them, read in
-- (xid, id) order through subscriptions.
CREATE TABLE delta.event (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid          xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    category     text NOT NULL,
    resource_id  bigint NOT NULL,
    kind         text NOT NULL,
    object_id    text NOT NULL,
    namespace    text NOT NULL,
    state        delta.resource_state NOT NULL,
    attempt      integer NOT NULL,
    error        jsonb,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX event_order_idx ON delta.event (xid, id);

CREATE TABLE delta.subscription (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text,
    owner        regrole NOT NULL,
    categories   text[] NOT NULL,
    kinds        text[],
    -- everything at or before (cursor_xid, cursor_id) was delivered
    cursor_xid   xid8 NOT NULL,
    cursor_id    bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);

----------------------------------------------------------------------------
-- C entry points
----------------------------------------------------------------------------

-- Remembers that namespace has new due work; wakes one idle worker at commit.
CREATE FUNCTION delta._wake(namespace text) RETURNS void
    LANGUAGE c STRICT VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'delta_wake';

-- Tells the launcher, at commit, to look at this database's namespaces again.
CREATE FUNCTION delta._namespaces_changed() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'delta_namespaces_changed';

-- Start time of the calling process: with its pid, the identity of a holder.
CREATE FUNCTION delta._backend_start() RETURNS timestamptz
    LANGUAGE c STRICT STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'delta_backend_start';

-- Whether the process (pid, started_at) still runs.
CREATE FUNCTION delta._holder_alive(pid integer, started_at timestamptz) RETURNS boolean
    LANGUAGE c STRICT VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'delta_holder_alive';

-- Every delta process of the server, from shared memory.
CREATE FUNCTION delta._processes(
    OUT pid integer, OUT database name, OUT namespace text, OUT role text,
    OUT state text, OUT resource_id bigint, OUT kind text,
    OUT processed bigint, OUT failed bigint, OUT started_at timestamptz)
    RETURNS SETOF record
    LANGUAGE c STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'delta_processes';

-- Wakes one idle worker of any namespace of this database at commit.
CREATE FUNCTION delta._wake_any() RETURNS void
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'delta_wake_any';

-- Calls a controller's compare function as the controller's owner.
CREATE FUNCTION delta._compare_as_owner(compare regprocedure, owner oid, old jsonb, new jsonb)
    RETURNS integer
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_compare_as_owner';

-- Subscriptions belong to the role that creates them.  These three are C
-- wrappers that call delta._subscribe, delta._events and delta._unsubscribe
-- as the owner of schema delta, passing the calling role as first argument.
CREATE FUNCTION delta.subscribe(categories text[], kinds text[] DEFAULT NULL,
    name text DEFAULT NULL) RETURNS bigint
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_call_as_caller';

CREATE FUNCTION delta.events(subscription bigint, max integer DEFAULT 100)
    RETURNS SETOF delta.event
    LANGUAGE c VOLATILE
    ROWS 100
    AS 'MODULE_PATHNAME', 'delta_call_as_caller';

CREATE FUNCTION delta.unsubscribe(subscription bigint) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_call_as_caller';

CREATE FUNCTION delta.register_controller(
    kind text,
    work regprocedure,
    inform regprocedure DEFAULT NULL,
    compare regprocedure DEFAULT NULL,
    parallelism integer DEFAULT NULL,
    inform_interval interval DEFAULT '1 hour',
    work_timeout interval DEFAULT NULL,
    inform_timeout interval DEFAULT NULL,
    max_attempts integer DEFAULT 10,
    replace boolean DEFAULT false,
    backoff_base interval DEFAULT '1 second',
    backoff_max interval DEFAULT '1 hour')
    RETURNS delta.controller
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_register_controller';

CREATE FUNCTION delta.unregister_controller(kind text) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_unregister_controller';

-- Called from inside a work function; they end the run by raising.
CREATE FUNCTION delta.resource_delete(reason text DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_resource_delete';

CREATE FUNCTION delta.resource_snooze(delay interval) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_resource_snooze';

----------------------------------------------------------------------------
-- Argument checks shared by the SQL functions
----------------------------------------------------------------------------

-- Raises unless value is a usable name of at most max_length characters.
CREATE FUNCTION delta._check_name(argument text, value text, max_length integer)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be null', argument
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF value = '' THEN
        RAISE EXCEPTION 'argument "%" must not be empty', argument
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- bytes, as for PostgreSQL identifiers: names are kept in shared memory
    IF octet_length(value) > max_length THEN
        RAISE EXCEPTION 'argument "%" is too long (% bytes)', argument, octet_length(value)
            USING ERRCODE = 'string_data_right_truncation',
                  DETAIL = format('The value starts with "%s".', left(value, 40)),
                  HINT = format('"%s" can have at most %s bytes.', argument, max_length);
    END IF;
END
$$;

-- The controller of kind, or an error naming the kind.
CREATE FUNCTION delta._controller(kind text) RETURNS delta.controller
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    c delta.controller;
BEGIN
    PERFORM delta._check_name('kind', kind, 63);
    SELECT * INTO c FROM delta.controller AS ctl WHERE ctl.kind = _controller.kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no controller is registered for kind "%"', kind
            USING ERRCODE = 'undefined_object',
                  HINT = 'Register one with delta.register_controller().';
    END IF;
    RETURN c;
END
$$;

-- Raises unless namespace exists.
CREATE FUNCTION delta._check_namespace(namespace text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM delta._check_name('namespace', namespace, 63);
    PERFORM FROM delta.namespace AS n WHERE n.name = _check_namespace.namespace;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'namespace "%" does not exist', namespace
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with delta.create_namespace().';
    END IF;
END
$$;

-- Raises unless the settings of a namespace are valid; nulls are allowed.
CREATE FUNCTION delta._check_namespace_settings(
    max_workers integer, resource_expiry interval, synced_retention interval,
    degraded_retention interval, deleted_retention interval) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    setting record;
BEGIN
    IF max_workers < 0 OR max_workers > 1024 THEN
        RAISE EXCEPTION 'argument "max_workers" must be between 0 and 1024, not %', max_workers
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR setting IN
        SELECT * FROM (VALUES ('resource_expiry', resource_expiry),
                              ('synced_retention', synced_retention),
                              ('degraded_retention', degraded_retention),
                              ('deleted_retention', deleted_retention)) AS s(name, value)
        WHERE s.value <= interval '0'
    LOOP
        RAISE EXCEPTION 'argument "%" must be a positive interval, not "%"', setting.name, setting.value
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use NULL for "never".';
    END LOOP;
END
$$;

----------------------------------------------------------------------------
-- Namespaces
----------------------------------------------------------------------------

CREATE FUNCTION delta.create_namespace(
    name text,
    max_workers integer DEFAULT 1,
    resource_expiry interval DEFAULT NULL,
    synced_retention interval DEFAULT coalesce(pg_catalog.current_setting('delta.synced_retention', true), '24 hours')::interval,
    degraded_retention interval DEFAULT coalesce(pg_catalog.current_setting('delta.degraded_retention', true), '24 hours')::interval,
    deleted_retention interval DEFAULT coalesce(pg_catalog.current_setting('delta.deleted_retention', true), '24 hours')::interval)
    RETURNS delta.namespace
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.namespace;
BEGIN
    PERFORM delta._check_name('name', name, 63);
    IF max_workers IS NULL THEN
        RAISE EXCEPTION 'argument "max_workers" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM delta._check_namespace_settings(max_workers, resource_expiry,
        synced_retention, degraded_retention, deleted_retention);
    INSERT INTO delta.namespace AS n (name, max_workers, resource_expiry,
        synced_retention, degraded_retention, deleted_retention)
    VALUES (create_namespace.name, create_namespace.max_workers, create_namespace.resource_expiry,
        create_namespace.synced_retention, create_namespace.degraded_retention,
        create_namespace.deleted_retention)
    ON CONFLICT DO NOTHING
    RETURNING * INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'namespace "%" already exists', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Change it with delta.alter_namespace().';
    END IF;
    RETURN result;
END
$$;

CREATE FUNCTION delta.alter_namespace(
    name text,
    max_workers integer DEFAULT NULL,
    resource_expiry interval DEFAULT NULL,
    synced_retention interval DEFAULT NULL,
    degraded_retention interval DEFAULT NULL,
    deleted_retention interval DEFAULT NULL,
    paused boolean DEFAULT NULL)
    RETURNS delta.namespace
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.namespace;
BEGIN
    PERFORM delta._check_name('name', name, 63);
    PERFORM delta._check_namespace(name);
    PERFORM delta._check_namespace_settings(max_workers, resource_expiry,
        synced_retention, degraded_retention, deleted_retention);
    UPDATE delta.namespace AS n SET
        max_workers = coalesce(alter_namespace.max_workers, n.max_workers),
        resource_expiry = coalesce(alter_namespace.resource_expiry, n.resource_expiry),
        synced_retention = coalesce(alter_namespace.synced_retention, n.synced_retention),
        degraded_retention = coalesce(alter_namespace.degraded_retention, n.degraded_retention),
        deleted_retention = coalesce(alter_namespace.deleted_retention, n.deleted_retention),
        paused = coalesce(alter_namespace.paused, n.paused)
    WHERE n.name = alter_namespace.name
    RETURNING * INTO result;
    RETURN result;
END
$$;

CREATE FUNCTION delta.drop_namespace(name text, force boolean DEFAULT false)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    held bigint;
BEGIN
    PERFORM delta._check_name('name', name, 63);
    PERFORM delta._check_namespace(name);
    IF name = 'default' THEN
        RAISE EXCEPTION 'namespace "default" cannot be dropped'
            USING ERRCODE = 'object_in_use',
                  HINT = 'Pause it with delta.alter_namespace(''default'', paused => true).';
    END IF;
    PERFORM FROM delta.namespace AS n WHERE n.name = drop_namespace.name FOR UPDATE;
    IF coalesce(force, false) THEN
        DELETE FROM delta.resource AS r WHERE r.namespace = drop_namespace.name;
    ELSE
        SELECT count(*) INTO held FROM delta.resource AS r WHERE r.namespace = drop_namespace.name;
        IF held > 0 THEN
            RAISE EXCEPTION 'namespace "%" still holds % resources', name, held
                USING ERRCODE = 'dependent_objects_still_exist',
                      HINT = 'Use force => true to delete them with the namespace.';
        END IF;
    END IF;
    DELETE FROM delta.namespace AS n WHERE n.name = drop_namespace.name;
END
$$;

----------------------------------------------------------------------------
-- Informing resources
----------------------------------------------------------------------------

-- Raises unless every item, with the call's defaults, can be informed:
-- nothing is written before all of them are known to be good.
CREATE FUNCTION delta._check_items(
    kind text, items delta.inform_item[], namespace text, metadata jsonb,
    tags text[], max_attempts integer)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
#variable_conflict use_column
DECLARE
    bad record;
    ns text;
BEGIN
    PERFORM delta._controller(_check_items.kind);
    IF _check_items.items IS NULL THEN
        RAISE EXCEPTION 'argument "items" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF _check_items.metadata IS NULL THEN
        RAISE EXCEPTION 'argument "metadata" must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Use ''{}'' for no metadata.';
    END IF;
    IF jsonb_typeof(_check_items.metadata) <> 'object' THEN
        RAISE EXCEPTION 'argument "metadata" must be a JSON object, not %', _check_items.metadata::text
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF _check_items.max_attempts < 1 THEN
        RAISE EXCEPTION 'argument "max_attempts" must be at least 1, not %', _check_items.max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The first bad item, if any, with the reason it is bad.
    SELECT i.ord, i.object_id, i.problem, i.code INTO bad
    FROM (SELECT t.ord, t.object_id,
                 CASE
                   WHEN t.object_id IS NULL THEN 'argument "object_id" must not be null'
                   WHEN t.object_id = '' THEN 'argument "object_id" must not be empty'
                   WHEN octet_length(t.object_id) > 255 THEN format('argument "object_id" is too long (%s bytes, at most 255)', octet_length(t.object_id))
                   WHEN t.object IS NULL THEN format('argument "object" of object_id "%s" must not be null', t.object_id)
                   WHEN jsonb_typeof(t.object) <> 'object' THEN format('argument "object" of object_id "%s" must be a JSON object, not a JSON %s', t.object_id, jsonb_typeof(t.object))
                   WHEN t.metadata IS NOT NULL AND jsonb_typeof(t.metadata) <> 'object' THEN format('argument "metadata" of object_id "%s" must be a JSON object', t.object_id)
                   WHEN t.max_attempts < 1 THEN format('argument "max_attempts" of object_id "%s" must be at least 1, not %s', t.object_id, t.max_attempts)
                 END AS problem,
                 CASE
                   WHEN t.object_id IS NULL OR t.object IS NULL THEN 'null_value_not_allowed'
                   WHEN octet_length(t.object_id) > 255 THEN 'string_data_right_truncation'
                   ELSE 'invalid_parameter_value'
                 END AS code
          FROM unnest(_check_items.items) WITH ORDINALITY AS t(object_id, object, external_created_at, namespace, metadata, tags, max_attempts, ord)) AS i
    WHERE i.problem IS NOT NULL
    ORDER BY i.ord
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%', bad.problem USING ERRCODE = bad.code,
            DETAIL = format('Item %s of %s is invalid; nothing was informed.', bad.ord, cardinality(_check_items.items));
    END IF;

    -- Tags: the item's own, else the call's; each must match the pattern.
    SELECT t.object_id, tag INTO bad
    FROM unnest(_check_items.items) AS t, unnest(coalesce(t.tags, _check_items.tags)) AS tag
    WHERE tag IS NULL OR octet_length(tag) > 255 OR tag !~ '^[\w][\w\-]+[\w]$'
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'argument "tags" contains an invalid tag "%"', coalesce(bad.tag, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Tags must match ^[\w][\w\-]+[\w]$ and have at most 255 bytes (object_id "%s").', bad.object_id);
    END IF;

    SELECT t.object_id INTO bad FROM unnest(_check_items.items) AS t
    GROUP BY t.object_id HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'argument "items" contains object_id "%" more than once', bad.object_id
            USING ERRCODE = 'cardinality_violation';
    END IF;

    FOR ns IN
        SELECT DISTINCT coalesce(t.namespace, _check_items.namespace) FROM unnest(_check_items.items) AS t
    LOOP
        PERFORM delta._check_namespace(ns);
    END LOOP;
END
$$;

-- The core of delta.inform and delta.inform_many: checks every item, then
-- upserts them all in one statement and wakes the namespaces' workers.
CREATE FUNCTION delta._inform(
    kind text, items delta.inform_item[], namespace text, metadata jsonb,
    tags text[], max_attempts integer)
    RETURNS SETOF delta.inform_result
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
#variable_conflict use_column
DECLARE
    ctl delta.controller;
    item delta.inform_item;
    ns text;
BEGIN
    -- The hot path: one item that passes every check, shown with one query.
    -- Anything else takes the full checks, which raise the precise error.
    item := _inform.items[1];
    ns := coalesce(item.namespace, _inform.namespace);
    SELECT c.* INTO ctl FROM delta.controller AS c
    WHERE c.kind = _inform.kind
      AND EXISTS (SELECT FROM delta.namespace AS n WHERE n.name = ns);
    IF ctl.kind IS NULL OR cardinality(_inform.items) <> 1
       OR octet_length(item.object_id) NOT BETWEEN 1 AND 255 IS NOT FALSE
       OR jsonb_typeof(item.object) IS DISTINCT FROM 'object'
       OR jsonb_typeof(coalesce(item.metadata, _inform.metadata)) IS DISTINCT FROM 'object'
       OR coalesce(item.max_attempts, _inform.max_attempts, 1) < 1
       OR EXISTS (SELECT FROM unnest(coalesce(item.tags, _inform.tags)) AS tag
                  WHERE tag IS NULL OR octet_length(tag) > 255 OR tag !~ '^[\w][\w\-]+[\w]$')
    THEN
        ctl := delta._controller(_inform.kind);
        PERFORM delta._check_items(_inform.kind, _inform.items, _inform.namespace,
            _inform.metadata, _inform.tags, _inform.max_attempts);
        FOR ns IN
            SELECT DISTINCT coalesce(t.namespace, _inform.namespace) FROM unnest(_inform.items) AS t
        LOOP
            PERFORM delta._wake(ns);
        END LOOP;
    ELSE
        PERFORM delta._wake(ns);
    END IF;

    RETURN QUERY
    INSERT INTO delta.resource AS r (state, max_attempts, external_created_at,
        object_id, kind, namespace, object, hash, metadata, tags, due_at)
    SELECT 'scheduled',
           coalesce(t.max_attempts, _inform.max_attempts, ctl.max_attempts),
           t.external_created_at, t.object_id, _inform.kind,
           coalesce(t.namespace, _inform.namespace), t.object,
           sha256(convert_to(t.object::text, 'UTF8')),
           coalesce(t.metadata, _inform.metadata),
           coalesce(t.tags, _inform.tags, '{}'),
           now()
    FROM unnest(_inform.items) AS t
    ON CONFLICT (kind, object_id) DO UPDATE SET
        object = EXCLUDED.object,
        hash = EXCLUDED.hash,
        namespace = EXCLUDED.namespace,
        metadata = EXCLUDED.metadata,
        tags = EXCLUDED.tags,
        max_attempts = EXCLUDED.max_attempts,
        external_created_at = coalesce(EXCLUDED.external_created_at, r.external_created_at),
        generation = r.generation + 1,
        -- a running resource stays pending: its run ends in "scheduled"
        -- because the generation moved, and it runs again with this object
        state = CASE WHEN r.state = 'pending' THEN r.state ELSE 'scheduled' END,
        attempt = CASE WHEN r.state = 'pending' THEN r.attempt ELSE 0 END,
        due_at = CASE WHEN r.state = 'pending' THEN NULL ELSE now() END
    RETURNING r.id, r.kind, r.object_id, r.namespace, r.state, r.attempt,
              r.max_attempts, r.object, r.metadata, r.tags, r.created_at,
              r.external_created_at, (r.xmax::text <> '0');
END
$$;

CREATE FUNCTION delta.inform(
    kind text,
    object_id text,
    object jsonb,
    namespace text DEFAULT 'default',
    metadata jsonb DEFAULT '{}',
    tags text[] DEFAULT '{}',
    max_attempts integer DEFAULT NULL,
    external_created_at timestamptz DEFAULT NULL)
    RETURNS SETOF delta.inform_result
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    ROWS 1
    AS $$
BEGIN
    -- PL/pgSQL, not SQL: a SECURITY DEFINER SQL function is re-planned at
    -- every call, this one's plan is cached for the session
    RETURN QUERY SELECT * FROM delta._inform(inform.kind,
        ARRAY[ROW(inform.object_id, inform.object, inform.external_created_at,
                  NULL, NULL, NULL, NULL)::delta.inform_item],
        inform.namespace, inform.metadata, inform.tags, inform.max_attempts);
END
$$;

CREATE FUNCTION delta.inform_many(
    kind text,
    items delta.inform_item[],
    namespace text DEFAULT 'default',
    metadata jsonb DEFAULT '{}',
    tags text[] DEFAULT '{}',
    max_attempts integer DEFAULT NULL)
    RETURNS SETOF delta.inform_result
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT * FROM delta._inform(kind, items, namespace, metadata, tags, max_attempts)
$$;

-- The same, for items given as a JSON array of objects with the fields of
-- delta.inform_item.
CREATE FUNCTION delta.inform_many(
    kind text,
    items jsonb,
    namespace text DEFAULT 'default',
    metadata jsonb DEFAULT '{}',
    tags text[] DEFAULT '{}',
    max_attempts integer DEFAULT NULL)
    RETURNS SETOF delta.inform_result
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    unknown text;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'argument "items" must be a JSON array of objects, not %', coalesce(jsonb_typeof(items), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM jsonb_array_elements(items) AS e WHERE jsonb_typeof(e) <> 'object') THEN
        RAISE EXCEPTION 'argument "items" must be a JSON array of objects'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a misspelt field would otherwise be dropped without a word
    SELECT k INTO unknown
    FROM jsonb_array_elements(items) AS e, jsonb_object_keys(e) AS k
    WHERE k NOT IN ('object_id', 'object', 'external_created_at', 'namespace',
                    'metadata', 'tags', 'max_attempts')
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'argument "items" has an unknown field "%"', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The fields are those of delta.inform_item: object_id, object, external_created_at, namespace, metadata, tags, max_attempts.';
    END IF;
    RETURN QUERY SELECT * FROM delta._inform(kind,
        ARRAY(SELECT i FROM jsonb_populate_recordset(NULL::delta.inform_item, items) AS i),
        namespace, metadata, tags, max_attempts);
END
$$;

CREATE FUNCTION delta.invalidate(kind text, object_id text) RETURNS delta.resource
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.resource;
BEGIN
    PERFORM delta._controller(kind);
    PERFORM delta._check_name('object_id', object_id, 255);
    SELECT * INTO result FROM delta.resource AS r
    WHERE r.kind = invalidate.kind AND r.object_id = invalidate.object_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'resource "%" of kind "%" does not exist', object_id, kind
            USING ERRCODE = 'no_data_found';
    END IF;
    IF result.state <> 'synced' THEN
        RAISE EXCEPTION 'resource "%" of kind "%" is %, not synced', object_id, kind, result.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Only a synced resource can be invalidated.';
    END IF;
    -- a new round of tries: the attempts of earlier rounds do not count
    UPDATE delta.resource AS r SET state = 'expired', due_at = now(), attempt = 0
    WHERE r.id = result.id
    RETURNING * INTO result;
    PERFORM delta._wake(result.namespace);
    RETURN result;
END
$$;

----------------------------------------------------------------------------
-- Internal functions of the workers: claim, finish, rescue
----------------------------------------------------------------------------

-- The errors of a run log, with entry appended, keeping the last 20.
CREATE FUNCTION delta._last_errors(errors jsonb, entry jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT coalesce(jsonb_agg(e ORDER BY n), '[]')
    FROM jsonb_array_elements(errors || jsonb_build_array(entry)) WITH ORDINALITY AS x(e, n)
    WHERE n > jsonb_array_length(errors) + 1 - 20
$$;

-- Writes the events of the resources in ids (just ended synced, failed,
-- degraded or deleted) for which some subscription asks, and sends NOTIFY
-- delta_events once.  Without a matching subscription nothing is written.
CREATE FUNCTION delta._emit_events(ids bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    written bigint;
    categories text[];
    kinds text[];
BEGIN
    IF ids IS NULL OR NOT EXISTS (SELECT FROM delta.subscription) THEN
        RETURN 0;
    END IF;
    WITH ev AS (
        INSERT INTO delta.event (category, resource_id, kind, object_id, namespace, state, attempt, error)
        SELECT c.category, r.id, r.kind, r.object_id, r.namespace, r.state, r.attempt,
               CASE WHEN c.category = 'object_synced' THEN NULL ELSE r.errors -> -1 END
        FROM delta.resource AS r
        CROSS JOIN LATERAL (SELECT CASE r.state WHEN 'synced' THEN 'object_synced'
                                                WHEN 'deleted' THEN 'object_deleted'
                                                ELSE 'object_failed' END AS category) AS c
        WHERE r.id = ANY (_emit_events.ids)
          AND r.state IN ('synced', 'failed', 'degraded', 'deleted')
          AND EXISTS (SELECT FROM delta.subscription AS s
                      WHERE c.category = ANY (s.categories)
                        AND (s.kinds IS NULL OR r.kind = ANY (s.kinds)))
        ORDER BY r.id
        RETURNING event.category, event.kind)
    SELECT count(*), array_agg(DISTINCT ev.category), array_agg(DISTINCT ev.kind)
    INTO written, categories, kinds FROM ev;
    IF written > 0 THEN
        PERFORM pg_notify('delta_events', jsonb_build_object(
            'database', current_database(), 'events', written,
            'categories', to_jsonb(categories), 'kinds', to_jsonb(kinds))::text);
    END IF;
    RETURN written;
END
$$;

-- Back-off before the next try after a failed attempt:
-- min(backoff_max, backoff_base * 2^(attempt - 1)) * a random factor in [0.75, 1.25).
CREATE FUNCTION delta._backoff(attempt integer, backoff_base interval, backoff_max interval)
    RETURNS interval
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT least(backoff_max, backoff_base * power(2, least(greatest(attempt, 1) - 1, 40)))
           * (0.75 + random() * 0.5)
$$;

-- The back-off of kind's controller after attempt (defaults when it is gone).
CREATE FUNCTION delta._retry_delay(kind text, attempt integer) RETURNS interval
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT delta._backoff(attempt, coalesce(c.backoff_base, '1 second'), coalesce(c.backoff_max, '1 hour'))
    FROM (SELECT) AS one
    LEFT JOIN delta.controller AS c ON c.kind = _retry_delay.kind
$$;

-- Claims up to max_count due resources of namespace for the calling process
-- and returns them pending, in due order.
--
-- Kinds with a parallelism cap are serialized by a transaction advisory
-- lock each (1684368501, hashtext(kind)) so the cap holds across workers;
-- (1684368500, 0) is the leader's session lock.
--
-- A resource whose last attempt ended with its worker exiting (57P01) may
-- crash its worker again, and a crash costs every resource of the batch an
-- attempt: such a resource is claimed alone, and a batch stops before one.
CREATE FUNCTION delta._claim(namespace text, max_count integer)
    RETURNS SETOF delta.resource
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    -- planned once per worker: the only sensible plan reads resource_due_idx
    SET plan_cache_mode = force_generic_plan
    AS $$
#variable_conflict use_column
DECLARE
    capped record;
    caps jsonb := '{}';
    ids bigint[];
BEGIN
    FOR capped IN
        SELECT c.kind, c.parallelism FROM delta.controller AS c
        WHERE c.parallelism IS NOT NULL ORDER BY c.kind
    LOOP
        PERFORM pg_advisory_xact_lock(1684368501, hashtext(capped.kind));
        caps := caps || jsonb_build_object(capped.kind, capped.parallelism -
            (SELECT count(*) FROM delta.resource AS r WHERE r.kind = capped.kind AND r.state = 'pending'));
    END LOOP;

    SELECT array_agg(c.id ORDER BY c.n) INTO ids
    FROM (SELECT d.id, d.kind, d.suspect,
                 row_number() OVER w AS n,
                 count(*) FILTER (WHERE d.suspect) OVER w AS suspects,
                 first_value(d.suspect) OVER w AS first_suspect,
                 row_number() OVER (PARTITION BY d.kind ORDER BY d.due_at, d.id) AS nth_of_kind
          FROM (SELECT d.id, d.kind, d.due_at,
                       coalesce(d.errors -> -1 ->> 'sqlstate' = '57P01', false) AS suspect
                FROM delta.resource AS d
                WHERE d.namespace = _claim.namespace AND d.due_at <= now()
                  AND coalesce((caps ->> d.kind)::bigint, 1) > 0
                ORDER BY d.due_at
                LIMIT max_count
                FOR UPDATE SKIP LOCKED) AS d
          WINDOW w AS (ORDER BY d.due_at, d.id ROWS UNBOUNDED PRECEDING)) AS c
    WHERE c.nth_of_kind <= coalesce((caps ->> c.kind)::bigint, c.nth_of_kind)
      AND CASE WHEN c.first_suspect THEN c.n = 1 ELSE c.suspects = 0 END;

    RETURN QUERY
    UPDATE delta.resource AS r SET
        state = 'pending', attempt = r.attempt + 1, attempted_at = now(),
        due_at = NULL, holder_pid = pg_backend_pid(),
        holder_started_at = delta._backend_start()
    WHERE r.id = ANY (ids)
    RETURNING r.*;
END
$$;

-- Records the outcomes of a batch of runs by the calling process.  A resource
-- informed again during its run (generation moved) goes back to scheduled.
-- Only rows still pending and held by the caller are touched.
CREATE FUNCTION delta._finish(ids bigint[], generations bigint[], outcomes text[],
    errors jsonb[], delays interval[])
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    ended bigint[];
BEGIN
    WITH done AS (
        UPDATE delta.resource AS r SET
            state = CASE
                WHEN r.generation <> o.generation THEN 'scheduled'
                WHEN o.outcome = 'synced' THEN 'synced'
                WHEN o.outcome = 'deleted' THEN 'deleted'
                WHEN o.outcome = 'snoozed' THEN 'scheduled'
                WHEN r.attempt >= r.max_attempts THEN 'degraded'
                ELSE 'failed' END::delta.resource_state,
            synced_at = CASE WHEN o.outcome = 'synced' AND r.generation = o.generation
                             THEN now() ELSE r.synced_at END,
            attempt = CASE
                WHEN r.generation <> o.generation THEN 0
                WHEN o.outcome = 'snoozed' THEN r.attempt - 1
                ELSE r.attempt END,
            due_at = CASE
                WHEN r.generation <> o.generation THEN now()
                WHEN o.outcome = 'snoozed' THEN now() + o.delay
                WHEN o.outcome = 'failed' AND r.attempt < r.max_attempts
                    THEN now() + delta._retry_delay(r.kind, r.attempt)
                ELSE NULL END,
            errors = CASE WHEN o.error IS NULL THEN r.errors ELSE delta._last_errors(r.errors, o.error) END,
            holder_pid = NULL,
            holder_started_at = NULL
        FROM unnest(_finish.ids, _finish.generations, _finish.outcomes, _finish.errors, _finish.delays)
            AS o(id, generation, outcome, error, delay)
        WHERE r.id = o.id
          AND r.state = 'pending'
          AND r.holder_pid = pg_backend_pid()
          AND r.holder_started_at = delta._backend_start()
        RETURNING r.id, r.state)
    SELECT array_agg(done.id) INTO ended FROM done WHERE done.state <> 'scheduled';
    PERFORM delta._emit_events(ended);
END
$$;

-- Returns pending resources of namespace (all when NULL) whose holder no
-- longer runs to failed, or degraded when that was their last attempt.  The
-- holder is re-checked row by row, so a live run is never touched.
CREATE FUNCTION delta._rescue(namespace text DEFAULT NULL) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    rescued bigint[];
BEGIN
    WITH r AS (
        UPDATE delta.resource AS r SET
            state = CASE WHEN r.attempt >= r.max_attempts THEN 'degraded'
                         ELSE 'failed' END::delta.resource_state,
            due_at = CASE WHEN r.attempt >= r.max_attempts THEN NULL
                          ELSE now() + delta._retry_delay(r.kind, r.attempt) END,
            errors = delta._last_errors(r.errors, jsonb_build_object(
                'at', now(), 'attempt', r.attempt,
                'error', format('worker exited during the run (pid %s)', r.holder_pid),
                'sqlstate', '57P01')),
            holder_pid = NULL,
            holder_started_at = NULL
        WHERE r.state = 'pending'
          AND (_rescue.namespace IS NULL OR r.namespace = _rescue.namespace)
          AND NOT delta._holder_alive(r.holder_pid, r.holder_started_at)
        RETURNING r.id)
    SELECT array_agg(r.id) INTO rescued FROM r;
    PERFORM delta._emit_events(rescued);

    IF _rescue.namespace IS NULL THEN
        UPDATE delta.inform_run AS ir SET
            state = 'failed',
            due_at = now() + delta._retry_delay(ir.kind, ir.attempt),
            errors = delta._last_errors(ir.errors, jsonb_build_object(
                'at', now(), 'attempt', ir.attempt,
                'error', format('worker exited during the inform run (pid %s)', ir.holder_pid),
                'sqlstate', '57P01')),
            holder_pid = NULL,
            holder_started_at = NULL
        WHERE ir.state = 'running'
          AND NOT delta._holder_alive(ir.holder_pid, ir.holder_started_at);
    END IF;
    RETURN coalesce(cardinality(rescued), 0);
END
$$;


----------------------------------------------------------------------------
-- Informers: inform runs are queued here and run by the namespace workers
----------------------------------------------------------------------------

CREATE FUNCTION delta.schedule_inform(kind text, process_existing boolean DEFAULT false,
    options delta.inform_options DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
#variable_conflict use_column
DECLARE
    ctl delta.controller;
BEGIN
    ctl := delta._controller(schedule_inform.kind);
    IF ctl.inform IS NULL THEN
        RAISE EXCEPTION 'the controller of kind "%" has no inform function', ctl.kind
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register one with delta.register_controller(..., inform => ..., replace => true).';
    END IF;
    IF (schedule_inform.options)."limit" < 1 THEN
        RAISE EXCEPTION 'argument "options" has a "limit" below 1: %', (schedule_inform.options)."limit"
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one run per kind: a queued run is made due now; a running one runs again after
    INSERT INTO delta.inform_run AS ir (kind, due_at, process_existing, options)
    VALUES (ctl.kind, now(), coalesce(schedule_inform.process_existing, false), schedule_inform.options)
    ON CONFLICT (kind) DO UPDATE SET
        again = ir.again OR ir.state = 'running',
        process_existing = ir.process_existing OR EXCLUDED.process_existing,
        options = coalesce(EXCLUDED.options, ir.options),
        due_at = CASE WHEN ir.state = 'running' THEN ir.due_at ELSE now() END;
    PERFORM delta._wake_any();
END
$$;

-- Queues an inform run, due after a random jitter, for every controller
-- whose inform_interval has passed since its last successful run.
CREATE FUNCTION delta._schedule_due_informs(jitter interval) RETURNS integer
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
    AS $$
    WITH queued AS (
        INSERT INTO delta.inform_run (kind, due_at)
        SELECT c.kind, now() + jitter * random()
        FROM delta.controller AS c
        WHERE c.inform IS NOT NULL
          AND coalesce(c.last_inform_run_at, '-infinity') + c.inform_interval <= now()
        ON CONFLICT (kind) DO NOTHING
        RETURNING 1)
    SELECT count(*)::integer FROM queued
$$;

-- Claims the inform run that is due first for the calling process, with
-- what is needed to run it; the options' "after" defaults to the cursor.
CREATE FUNCTION delta._claim_inform()
    RETURNS TABLE (kind text, inform oid, owner oid, timeout_ms bigint,
                   process_existing boolean, options delta.inform_options, attempt integer)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    -- PL/pgSQL so that the plan is kept: workers call this every second
    SET plan_cache_mode = force_generic_plan
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    UPDATE delta.inform_run AS ir SET
        state = 'running', attempt = ir.attempt + 1,
        holder_pid = pg_backend_pid(), holder_started_at = delta._backend_start()
    FROM delta.controller AS c
    -- a scalar subquery: the locking scan runs exactly once, whatever the plan
    WHERE ir.kind = (SELECT d.kind FROM delta.inform_run AS d
                     JOIN delta.controller AS dc ON dc.kind = d.kind
                     -- a run queued before its controller lost its inform
                     -- function waits, and must not hide the runs due after it
                     WHERE d.state <> 'running' AND d.due_at <= now() AND dc.inform IS NOT NULL
                     ORDER BY d.due_at LIMIT 1
                     FOR UPDATE OF d SKIP LOCKED)
      AND c.kind = ir.kind AND c.inform IS NOT NULL
    RETURNING ir.kind, c.inform::oid, c.owner::oid,
              (extract(epoch FROM c.inform_timeout) * 1000)::bigint,
              ir.process_existing,
              ROW(coalesce((ir.options)."after", c.last_inform_time), (ir.options).labels,
                  (ir.options)."limit", (ir.options).order_by)::delta.inform_options,
              ir.attempt;
END
$$;

-- Whether new is the same object as the resource's old one: the compare
-- function's 0 when it has an answer, else the hashes.
CREATE FUNCTION delta._unchanged(compare regprocedure, owner oid, old jsonb,
    old_hash bytea, new jsonb)
    RETURNS boolean
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT coalesce(CASE WHEN compare IS NOT NULL
                         THEN delta._compare_as_owner(compare, owner, old, new) = 0 END,
                    sha256(convert_to(new::text, 'UTF8')) = old_hash)
$$;

-- Applies what an inform run returned: new objects are inserted, deleted
-- resources skipped, unchanged synced ones skipped unless process_existing,
-- the rest rescheduled.  A bad item raises before anything is written.
-- Without process_existing the cursor moves to the newest
-- external_created_at seen, else to the run's start.
CREATE FUNCTION delta._apply_inform(kind text, returned jsonb,
    process_existing boolean, started_at timestamptz)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
#variable_conflict use_column
DECLARE
    ctl delta.controller;
    items delta.inform_item[];
    wanted delta.inform_item[];
BEGIN
    ctl := delta._controller(_apply_inform.kind);
    items := ARRAY(SELECT i FROM jsonb_populate_recordset(NULL::delta.inform_item, returned) AS i);
    PERFORM delta._check_items(ctl.kind, items, 'default', '{}', '{}', NULL);
    SELECT coalesce(array_agg(ROW(t.object_id, t.object, t.external_created_at, t.namespace,
                                   t.metadata, t.tags, t.max_attempts)::delta.inform_item ORDER BY n),
                    '{}') INTO wanted
    FROM unnest(items) WITH ORDINALITY AS t(object_id, object, external_created_at,
                                                          namespace, metadata, tags, max_attempts, n)
    LEFT JOIN delta.resource AS r ON r.kind = ctl.kind AND r.object_id = t.object_id
    WHERE r.id IS NULL
       OR (r.state <> 'deleted'
           AND (_apply_inform.process_existing OR r.state <> 'synced'
                OR NOT delta._unchanged(ctl.compare, ctl.owner, r.object, r.hash, t.object)));
    IF cardinality(wanted) > 0 THEN
        PERFORM FROM delta._inform(ctl.kind, wanted, 'default', '{}', '{}', NULL);
    END IF;
    UPDATE delta.controller AS c SET
        last_inform_time = CASE WHEN _apply_inform.process_existing THEN c.last_inform_time
                                ELSE coalesce((SELECT max(t.external_created_at) FROM unnest(items) AS t),
                                              _apply_inform.started_at) END,
        last_inform_run_at = _apply_inform.started_at
    WHERE c.kind = ctl.kind;
    RETURN cardinality(wanted);
END
$$;

-- Records the end of the caller's inform run of kind: removed (or queued
-- again when asked for during the run) on success, retried after the
-- back-off on failure, the cursor left alone.
CREATE FUNCTION delta._finish_inform(kind text, error jsonb) RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
    AS $$
    DELETE FROM delta.inform_run AS ir
    WHERE ir.kind = _finish_inform.kind AND error IS NULL AND NOT ir.again
      AND ir.holder_pid = pg_backend_pid() AND ir.holder_started_at = delta._backend_start();
    UPDATE delta.inform_run AS ir SET
        state = CASE WHEN error IS NULL THEN 'scheduled' ELSE 'failed' END,
        due_at = CASE WHEN error IS NULL THEN now()
                      ELSE now() + delta._retry_delay(ir.kind, ir.attempt) END,
        attempt = CASE WHEN error IS NULL THEN 0 ELSE ir.attempt END,
        again = false,
        errors = CASE WHEN error IS NULL THEN ir.errors ELSE delta._last_errors(ir.errors, error) END,
        holder_pid = NULL,
        holder_started_at = NULL
    WHERE ir.kind = _finish_inform.kind
      AND ir.holder_pid = pg_backend_pid() AND ir.holder_started_at = delta._backend_start();
$$;

----------------------------------------------------------------------------
-- Maintenance, run by the leader of each database
----------------------------------------------------------------------------

-- Synced resources older than their namespace's resource_expiry become
-- expired, at most max_count per call.
CREATE FUNCTION delta._expire(max_count integer) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    n record;
    expired integer := 0;
    count integer;
BEGIN
    FOR n IN SELECT * FROM delta.namespace AS ns WHERE ns.resource_expiry IS NOT NULL LOOP
        EXIT WHEN expired >= max_count;
        -- = ANY (ARRAY(...)): the batch is chosen once.  With IN (...) the
        -- planner may rescan the LIMIT ... FOR UPDATE SKIP LOCKED subquery
        -- for each row, which then skips the rows this statement already
        -- changed and returns others: no bound at all.
        UPDATE delta.resource AS r SET state = 'expired', due_at = now(), attempt = 0
        WHERE r.id = ANY (ARRAY(SELECT d.id FROM delta.resource AS d
                       WHERE d.namespace = n.name AND d.state = 'synced'
                         AND d.synced_at < now() - n.resource_expiry
                       ORDER BY d.synced_at LIMIT max_count - expired
                       FOR UPDATE SKIP LOCKED))
          AND r.state = 'synced';
        GET DIAGNOSTICS count = ROW_COUNT;
        IF count > 0 THEN
            PERFORM delta._wake(n.name);
        END IF;
        expired := expired + count;
    END LOOP;
    RETURN expired;
END
$$;

-- Deletes, in each namespace, up to max_count resources per state that are
-- past their retention: synced (only where there is no expiry), degraded
-- and deleted; and up to max_count events that every matching
-- subscription has read or that are older than event_retention.
CREATE FUNCTION delta._clean(max_count integer, event_retention interval) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    n record;
    ended record;
    cleaned integer := 0;
    count integer;
    horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
BEGIN
    FOR n IN SELECT * FROM delta.namespace LOOP
        IF n.resource_expiry IS NULL AND n.synced_retention IS NOT NULL THEN
            DELETE FROM delta.resource AS r
            WHERE r.id = ANY (ARRAY(SELECT d.id FROM delta.resource AS d
                           WHERE d.namespace = n.name AND d.state = 'synced'
                             AND d.synced_at < now() - n.synced_retention
                           LIMIT max_count FOR UPDATE SKIP LOCKED))
              AND r.state = 'synced';
            GET DIAGNOSTICS count = ROW_COUNT;
            cleaned := cleaned + count;
        END IF;
        FOR ended IN
            SELECT * FROM (VALUES ('degraded'::delta.resource_state, n.degraded_retention),
                                  ('deleted'::delta.resource_state, n.deleted_retention)) AS v(state, retention)
            WHERE v.retention IS NOT NULL
        LOOP
            DELETE FROM delta.resource AS r
            WHERE r.id = ANY (ARRAY(SELECT d.id FROM delta.resource AS d
                           WHERE d.namespace = n.name AND d.state = ended.state
                             -- lets a generic plan use the partial resource_ended_idx
                             AND d.state IN ('degraded', 'deleted')
                             AND d.attempted_at < now() - ended.retention
                           LIMIT max_count FOR UPDATE SKIP LOCKED))
              AND r.state = ended.state;
            GET DIAGNOSTICS count = ROW_COUNT;
            cleaned := cleaned + count;
        END LOOP;
    END LOOP;

    DELETE FROM delta.event AS e
    WHERE e.id = ANY (ARRAY(SELECT d.id FROM delta.event AS d
                   WHERE d.xid < horizon
                     AND (d.created_at < now() - event_retention
                          OR NOT EXISTS (SELECT FROM delta.subscription AS s
                                         WHERE d.category = ANY (s.categories)
                                           AND (s.kinds IS NULL OR d.kind = ANY (s.kinds))
                                           AND (s.cursor_xid, s.cursor_id) < (d.xid, d.id)))
                   ORDER BY d.xid, d.id
                   LIMIT max_count));
    GET DIAGNOSTICS count = ROW_COUNT;
    RETURN cleaned + count;
END
$$;

----------------------------------------------------------------------------
-- Events and subscriptions (called through the C wrappers delta.subscribe,
-- delta.events and delta.unsubscribe, which pass the calling role)
----------------------------------------------------------------------------

CREATE FUNCTION delta._subscribe(caller oid, categories text[], kinds text[], name text)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    bad text;
    result bigint;
BEGIN
    IF categories IS NULL OR cardinality(categories) = 0 THEN
        RAISE EXCEPTION 'argument "categories" must name at least one category'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Categories are object_synced, object_failed and object_deleted.';
    END IF;
    SELECT c INTO bad FROM unnest(categories) AS c
    WHERE c IS NULL OR c NOT IN ('object_synced', 'object_failed', 'object_deleted') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'argument "categories" contains an unknown category "%"', coalesce(bad, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Categories are object_synced, object_failed and object_deleted.';
    END IF;
    IF kinds IS NOT NULL THEN
        SELECT k INTO bad FROM unnest(kinds) AS k WHERE k IS NULL OR k = '' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'argument "kinds" contains an empty or NULL kind'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    INSERT INTO delta.subscription (name, owner, categories, kinds, cursor_xid)
    VALUES (name, caller, ARRAY(SELECT DISTINCT c FROM unnest(categories) AS c ORDER BY c),
            kinds, pg_snapshot_xmin(pg_current_snapshot()))
    RETURNING id INTO result;
    RETURN result;
END
$$;

-- The subscription, locked, if caller may use it; else an error.
CREATE FUNCTION delta._own_subscription(caller oid, subscription bigint)
    RETURNS delta.subscription
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    s delta.subscription;
BEGIN
    IF subscription IS NULL THEN
        RAISE EXCEPTION 'argument "subscription" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO s FROM delta.subscription AS x WHERE x.id = subscription FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % does not exist', subscription
            USING ERRCODE = 'undefined_object';
    END IF;
    IF s.owner <> caller AND NOT pg_has_role(caller, s.owner, 'USAGE')
       AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = caller) THEN
        RAISE EXCEPTION 'permission denied for subscription %', subscription
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The subscription belongs to role "%s".', s.owner);
    END IF;
    RETURN s;
END
$$;

-- The next events of a subscription in (xid, id) order, at most max, and
-- the cursor moved past them.  Only events of transactions older than every
-- running one are returned, so an event that commits later can never be
-- behind the cursor: no event is skipped.
CREATE FUNCTION delta._events(caller oid, subscription bigint, max integer)
    RETURNS SETOF delta.event
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    s delta.subscription;
    horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
    last delta.event;
    n integer := 0;
BEGIN
    s := delta._own_subscription(caller, subscription);
    IF max IS NULL OR max < 1 THEN
        RAISE EXCEPTION 'argument "max" must be at least 1, not %', coalesce(max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR last IN
        SELECT * FROM delta.event AS e
        WHERE (e.xid, e.id) > (s.cursor_xid, s.cursor_id)
          AND e.xid < horizon
          AND e.category = ANY (s.categories)
          AND (s.kinds IS NULL OR e.kind = ANY (s.kinds))
        ORDER BY e.xid, e.id
        LIMIT max
    LOOP
        n := n + 1;
        RETURN NEXT last;
    END LOOP;
    IF n = max THEN
        UPDATE delta.subscription AS x SET cursor_xid = last.xid, cursor_id = last.id WHERE x.id = s.id;
    ELSIF horizon > s.cursor_xid THEN
        -- everything before the horizon has been seen
        UPDATE delta.subscription AS x SET cursor_xid = horizon, cursor_id = 0 WHERE x.id = s.id;
    END IF;
END
$$;

CREATE FUNCTION delta._unsubscribe(caller oid, subscription bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM delta._own_subscription(caller, subscription);
    DELETE FROM delta.subscription AS x WHERE x.id = subscription;
END
$$;

----------------------------------------------------------------------------
-- Views
----------------------------------------------------------------------------

CREATE VIEW delta.stats AS
SELECT r.namespace,
       r.kind,
       r.state,
       count(*) AS count,
       now() - min(r.due_at) FILTER (WHERE r.due_at <= now()) AS oldest_due_age,
       count(*) FILTER (WHERE r.synced_at > now() - interval '1 minute') AS synced_last_minute
FROM delta.resource AS r
GROUP BY r.namespace, r.kind, r.state;

CREATE VIEW delta.workers AS
SELECT p.pid, p.database, p.namespace, p.role, p.state, p.resource_id, p.kind,
       p.processed, p.failed, p.started_at
FROM delta._processes() AS p;

----------------------------------------------------------------------------
-- The launcher follows namespace changes, whoever makes them
----------------------------------------------------------------------------

CREATE TRIGGER namespace_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON delta.namespace
    FOR EACH STATEMENT EXECUTE FUNCTION delta._namespaces_changed();

INSERT INTO delta.namespace (name) VALUES ('default');

----------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but the schema and the two functions a work
-- function calls; see README "Privileges" for what an application role needs.
----------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA delta FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA delta FROM PUBLIC;
GRANT USAGE ON SCHEMA delta TO PUBLIC;
GRANT EXECUTE ON FUNCTION delta.resource_delete(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION delta.resource_snooze(interval) TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('delta.namespace', 'WHERE name <> ''default''');
SELECT pg_catalog.pg_extension_config_dump('delta.controller', '');
SELECT pg_catalog.pg_extension_config_dump('delta.resource', '');
SELECT pg_catalog.pg_extension_config_dump('delta.inform_run', '');
SELECT pg_catalog.pg_extension_config_dump('delta.event', '');
SELECT pg_catalog.pg_extension_config_dump('delta.subscription', '');
