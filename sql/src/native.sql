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

-- Whether the holder (pid, started_at) of resource_id's run is a worker of
-- this database; if so, asks it at commit to cancel that run (cancel.c).
CREATE FUNCTION delta._cancel_run(resource_id bigint, holder_pid integer, holder_started_at timestamptz)
    RETURNS boolean
    LANGUAGE c STRICT VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'delta_cancel_run';

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

-- Changes only the settings given; reset names settings to set to NULL.
CREATE FUNCTION delta.alter_controller(
    kind text,
    work regprocedure DEFAULT NULL,
    inform regprocedure DEFAULT NULL,
    compare regprocedure DEFAULT NULL,
    parallelism integer DEFAULT NULL,
    inform_interval interval DEFAULT NULL,
    work_timeout interval DEFAULT NULL,
    inform_timeout interval DEFAULT NULL,
    max_attempts integer DEFAULT NULL,
    reset text[] DEFAULT '{}',
    backoff_base interval DEFAULT NULL,
    backoff_max interval DEFAULT NULL)
    RETURNS delta.controller
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_alter_controller';

CREATE FUNCTION delta.unregister_controller(kind text) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_unregister_controller';

-- Called from inside a work function; they choose the run's outcome.
CREATE FUNCTION delta.resource_delete(reason text DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_resource_delete';

CREATE FUNCTION delta.resource_snooze(delay interval) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_resource_snooze';

-- Adds runs to the calling database's counters by outcome (delta.metrics).
CREATE FUNCTION delta._count_runs(outcomes text[]) RETURNS bigint
    LANGUAGE c VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'delta_count_runs';

-- The runs recorded in this database since the server started, by outcome.
CREATE FUNCTION delta._run_counters(OUT outcome text, OUT runs bigint)
    RETURNS SETOF record
    LANGUAGE c STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'delta_run_counters';
