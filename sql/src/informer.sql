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
        -- asked for again: a stopped or backing-off run starts its attempts anew
        attempt = CASE WHEN ir.state = 'running' THEN ir.attempt ELSE 0 END,
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
          AND delta._later(coalesce(c.last_inform_run_at, '-infinity'), c.inform_interval) <= now()
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
    -- after the controller's max_attempts failures in a row the run stops
    -- (due 'infinity') until delta.schedule_inform asks again
    UPDATE delta.inform_run AS ir SET
        state = CASE WHEN error IS NULL THEN 'scheduled' ELSE 'failed' END,
        due_at = CASE WHEN error IS NULL THEN now()
                      WHEN ir.attempt >= (SELECT c.max_attempts FROM delta.controller AS c
                                          WHERE c.kind = ir.kind) THEN 'infinity'
                      ELSE now() + delta._retry_delay(ir.kind, ir.attempt) END,
        attempt = CASE WHEN error IS NULL THEN 0 ELSE ir.attempt END,
        again = false,
        errors = CASE WHEN error IS NULL THEN ir.errors ELSE delta._last_errors(ir.errors, error) END,
        holder_pid = NULL,
        holder_started_at = NULL
    WHERE ir.kind = _finish_inform.kind
      AND ir.holder_pid = pg_backend_pid() AND ir.holder_started_at = delta._backend_start();
$$;
