-- 700: the run history (delta.run); its functions and delta.metrics come with
-- the re-run of sql/src/.
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
