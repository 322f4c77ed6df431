----------------------------------------------------------------------------
-- The run history (delta.run) and the run counters of delta.metrics
----------------------------------------------------------------------------

-- Records the runs about to end: one row of delta.run each (unless
-- delta.run_history is off) and the counters by outcome (always).  Called
-- by _finish and _end_runs before they change the resources, so it sees
-- each one as its run left it: pending, with the run's attempt and holder.
-- Only pending resources are recorded, and with held_by_caller only those
-- the calling process holds (what _finish will touch).
--
-- outcome is how the run ended (synced, failed, deleted, snoozed, or
-- crashed: its worker exited), except: rescheduled when the resource was
-- informed during the run (generation moved: the outcome is not applied,
-- the newer object runs next), degraded for a failed or crashed run at
-- the last attempt, and failed for a run delta.cancel ended (cancelled).
CREATE FUNCTION delta._record_runs(ids bigint[], generations bigint[], outcomes text[],
    errors jsonb[], started timestamptz[], ended timestamptz[], held_by_caller boolean)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    counted bigint;
BEGIN
    WITH runs AS MATERIALIZED (
        SELECT r.id, r.kind, r.object_id, r.namespace, r.attempt, r.holder_pid,
               CASE WHEN r.generation <> o.generation THEN 'rescheduled'
                    WHEN o.outcome = 'cancelled' THEN 'failed'
                    WHEN o.outcome IN ('failed', 'crashed') AND r.attempt >= r.max_attempts THEN 'degraded'
                    ELSE o.outcome END AS outcome,
               o.started, o.ended, o.error
        FROM unnest(_record_runs.ids, _record_runs.generations, _record_runs.outcomes,
                    _record_runs.errors, _record_runs.started, _record_runs.ended)
            AS o(id, generation, outcome, error, started, ended)
        JOIN delta.resource AS r ON r.id = o.id
        -- compared as text so that no plan reads resource_pending_idx: under
        -- a held xmin its dead entries pile up, and the primary key is all
        -- this needs (as in delta._finish)
        WHERE r.state::text = 'pending'
          AND (NOT held_by_caller
               OR (r.holder_pid = pg_backend_pid() AND r.holder_started_at = delta._backend_start()))),
    written AS (
        INSERT INTO delta.run (resource_id, kind, object_id, namespace, attempt, outcome,
                               started_at, ended_at, pid, sqlstate, error)
        SELECT runs.id, runs.kind, runs.object_id, runs.namespace, runs.attempt, runs.outcome,
               runs.started, runs.ended, runs.holder_pid,
               nullif(runs.error ->> 'sqlstate', '00000'), runs.error ->> 'error'
        FROM runs
        WHERE coalesce(current_setting('delta.run_history', true), 'on')::boolean)
    SELECT delta._count_runs(array_agg(runs.outcome)) INTO counted FROM runs;
    RETURN counted;
END
$$;

-- _record_runs for the runs _end_runs is about to end (their worker exited,
-- or could not record them): crashed when the worker exited (57P01), else
-- failed; from the start of the run to now, with the run's pid.
CREATE FUNCTION delta._record_ended_runs(ids bigint[], error text, sqlstate text) RETURNS bigint
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT delta._record_runs(array_agg(r.id), array_agg(coalesce(r.claimed_generation, r.generation)),
               array_agg(CASE WHEN _record_ended_runs.sqlstate = '57P01' THEN 'crashed' ELSE 'failed' END),
               array_agg(jsonb_build_object(
                   'error', format('%s (pid %s)', _record_ended_runs.error, r.holder_pid),
                   'sqlstate', _record_ended_runs.sqlstate)),
               array_agg(r.attempted_at), array_agg(now()), false)
    FROM delta.resource AS r
    WHERE r.id = ANY (_record_ended_runs.ids) AND r.state = 'pending'
$$;

COMMENT ON TABLE delta.run IS 'The run history: one row per run that ended (outcome, attempt, start, end, duration, pid, error), kept delta.run_history_retention';
