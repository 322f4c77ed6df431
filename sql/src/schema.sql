-- Types, tables and indexes: created once; an update changes them in sql/updates/.

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
-- A controller without a work function is worked by external workers only
-- (delta.claim); the server's workers never claim its resources.
CREATE TABLE delta.controller (
    kind              text PRIMARY KEY,
    work              regprocedure,
    inform            regprocedure,
    compare           regprocedure,
    parallelism       integer,
    inform_interval   interval NOT NULL DEFAULT '1 hour',
    work_timeout      interval,
    inform_timeout    interval,
    max_attempts      integer NOT NULL DEFAULT 10,
    backoff_base      interval NOT NULL DEFAULT '1 second',
    backoff_max       interval NOT NULL DEFAULT '1 hour',
    paused            boolean NOT NULL DEFAULT false,   -- delta.pause_kind: no new runs
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
    -- the generation the holder's run works on: the rescue of a dead run
    -- that was informed meanwhile schedules the newer object
    claimed_generation   bigint,
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

-- One row: the transaction that installed delta in this database (CREATE
-- EXTENSION, or the update to 0.2.0).  Not dumped.  A restored event or
-- cursor with a later xid comes from another cluster's counter; see
-- delta._restored_xid.
CREATE TABLE delta.installation (
    xid  xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);

-- The run history: one row per run that ended, written with its outcome
-- (delta._record_runs), unless delta.run_history is off.  Append-only; the
-- leader deletes rows older than delta.run_history_retention.
CREATE TABLE delta.run (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_id  bigint NOT NULL,
    kind         text NOT NULL,
    object_id    text NOT NULL,
    namespace    text NOT NULL,
    attempt      integer NOT NULL,
    outcome      text NOT NULL,
    started_at   timestamptz,
    ended_at     timestamptz NOT NULL,
    duration     interval GENERATED ALWAYS AS (ended_at OPERATOR(pg_catalog.-) started_at) STORED,
    pid          integer,
    sqlstate     text,
    error        text,
    CONSTRAINT run_outcome_valid CHECK (outcome OPERATOR(pg_catalog.=) ANY (ARRAY[
        'synced', 'failed', 'degraded', 'deleted', 'snoozed', 'rescheduled', 'crashed']::text[]))
);
-- The cleaner's and the recent duration figures' order.
CREATE INDEX run_ended_idx ON delta.run (ended_at);
-- Recent failures for delta.metrics, without reading the successful runs.
CREATE INDEX run_failed_idx ON delta.run (ended_at)
    WHERE outcome IN ('failed', 'degraded', 'crashed');

-- The claims of external workers (delta.claim): one row per resource an
-- external worker holds, deleted when its run ends (delta.complete and the
-- others, the rescue, delta.cancel).  The token names the claim; attempt is
-- the resource's attempt it counted, so a token of an older claim can never
-- end a newer one.  lease NULL: held by the claiming session (the
-- resource's holder_pid); else held until lease_until, which
-- delta.heartbeat moves on.  Not dumped: a restored claim is rescued.
CREATE TABLE delta.external_claim (
    token        uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    resource_id  bigint NOT NULL UNIQUE REFERENCES delta.resource (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    role         regrole NOT NULL,
    lease        interval,
    lease_until  timestamptz,
    claimed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT external_claim_lease_valid CHECK ((lease IS NULL) = (lease_until IS NULL))
);
-- Expired leases, for the rescue.
CREATE INDEX external_claim_lease_idx ON delta.external_claim (lease_until)
    WHERE lease_until IS NOT NULL;
