----------------------------------------------------------------------------
-- Operator functions: work a resource again without informing it
----------------------------------------------------------------------------

-- Sends a resource back to scheduled, attempt 0, due now: a degraded or
-- deleted one, a failed one waiting for its back-off, an expired one.
-- Unlike informing it again, it keeps its object, namespace, metadata, tags
-- and errors.  A pending resource is running, and a synced one is current
-- (delta.invalidate works it again): both are refused.
CREATE FUNCTION delta.retry(kind text, object_id text) RETURNS delta.resource
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.resource;
BEGIN
    result := delta._resource_for_update(kind, object_id);
    IF result.state IN ('pending', 'synced') THEN
        RAISE EXCEPTION 'resource "%" of kind "%" is %: there is nothing to retry', object_id, kind, result.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE result.state WHEN 'synced' THEN 'delta.invalidate() runs a synced resource again.'
                              ELSE 'Its run is in progress.' END;
    END IF;
    UPDATE delta.resource AS r SET
        state = 'scheduled',
        due_at = now(), attempt = 0
    WHERE r.id = result.id
    RETURNING * INTO result;
    PERFORM delta._wake(result.namespace);
    RETURN result;
END
$$;

-- delta.retry for every resource of kind in one of states (by default the
-- degraded ones); returns how many.  Locks what it retries, skipping
-- nothing: it waits for transactions that hold those rows.
CREATE FUNCTION delta.retry_all(kind text,
    states delta.resource_state[] DEFAULT '{degraded}')
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    retried bigint;
    woken text[];
BEGIN
    PERFORM delta._controller(kind);
    IF states IS NULL OR array_position(states, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'argument "states" must not be null or contain null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF states && ARRAY['pending', 'synced']::delta.resource_state[] THEN
        RAISE EXCEPTION 'argument "states" may not contain pending or synced'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'delta.invalidate() runs a synced resource again; a pending one is running.';
    END IF;
    WITH locked AS (
        SELECT r.id FROM delta.resource AS r
        WHERE r.kind = retry_all.kind AND r.state = ANY (retry_all.states)
        ORDER BY r.id
        FOR UPDATE),
    done AS (
        UPDATE delta.resource AS r SET
            state = 'scheduled',
            due_at = now(), attempt = 0
        FROM locked WHERE r.id = locked.id
        RETURNING r.namespace)
    SELECT count(*), array_agg(DISTINCT done.namespace) INTO retried, woken FROM done;
    PERFORM delta._wake(w) FROM unnest(woken) AS w;
    RETURN retried;
END
$$;

-- Stops working a resource that waits for a run or is running: it ends
-- failed, due never (nothing retries it by itself; delta.retry or informing
-- it again starts it over), with an errors entry of SQLSTATE 57014 saying
-- so.  The states stay those of 0.1.0: a cancelled resource is a failed one
-- not due.  Wakes nothing (but a pending one informed during its run, due
-- again at once).  Cancelling it again is refused.
--
-- A pending resource: the worker that holds it is asked, when this
-- transaction commits, to cut that run short (or never start it, if it is
-- claimed but not started), and it records the cancel as the run's outcome
-- (cancel.c); the row returned is still pending.  A run that ends on its
-- own first keeps its own outcome.  The claim of an external worker
-- (delta.claim) ends here, its token refused from now on; so does a run
-- whose worker has exited (nobody would record it).  Both go to the run
-- history as failed, and informed during the run they run again, as
-- _finish does.  A holder that runs but is neither is refused.  Synced,
-- degraded, deleted and expired resources wait for no run: nothing to stop.
CREATE FUNCTION delta.cancel(kind text, object_id text) RETURNS delta.resource
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.resource;
    entry jsonb;
    claimed_at timestamptz;
BEGIN
    result := delta._resource_for_update(kind, object_id);
    entry := jsonb_build_object('at', now(), 'attempt', result.attempt,
                                'error', 'cancelled by delta.cancel', 'sqlstate', '57014');
    IF result.state = 'pending' THEN
        SELECT c.claimed_at INTO claimed_at FROM delta.external_claim AS c
        WHERE c.resource_id = result.id
        FOR UPDATE;
        IF NOT FOUND THEN
            IF delta._cancel_run(result.id, result.holder_pid, result.holder_started_at) THEN
                RETURN result;
            ELSIF delta._holder_alive(result.holder_pid, result.holder_started_at) THEN
                RAISE EXCEPTION 'resource "%" of kind "%" is pending in process %, which is not a delta worker',
                    object_id, kind, result.holder_pid
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          HINT = 'Only a run of a delta worker or of an external worker can be cancelled: cancel it after the run ends.';
            END IF;
        END IF;
        PERFORM delta._finish(ARRAY[result.id], ARRAY[coalesce(result.claimed_generation, result.generation)],
            '{cancelled}', ARRAY[entry], '{NULL}', ARRAY[coalesce(claimed_at, result.attempted_at)],
            ARRAY[clock_timestamp()], false);
        DELETE FROM delta.external_claim AS c WHERE c.resource_id = result.id;
        SELECT * INTO result FROM delta.resource AS r WHERE r.id = result.id;
        -- informed during the run: due now, for the newer object
        IF result.state = 'scheduled' THEN
            PERFORM delta._wake(result.namespace);
        END IF;
        RETURN result;
    ELSIF result.state IN ('scheduled', 'failed') AND result.due_at IS NULL THEN
        RAISE EXCEPTION 'resource "%" of kind "%" is % and not due: there is nothing to cancel',
            object_id, kind, result.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Nothing will work it again until it is informed or retried.';
    ELSIF result.state NOT IN ('scheduled', 'failed') THEN
        RAISE EXCEPTION 'resource "%" of kind "%" is %: only a scheduled, failed or pending resource can be cancelled',
            object_id, kind, result.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only a resource that waits for a run or is running can be cancelled.';
    END IF;
    UPDATE delta.resource AS r SET
        state = 'failed', due_at = NULL,
        errors = delta._last_errors(r.errors, entry)
    WHERE r.id = result.id
    RETURNING * INTO result;
    RETURN result;
END
$$;

-- Sets the paused flag of kind's controller.
CREATE FUNCTION delta._set_paused(kind text, paused boolean) RETURNS delta.controller
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.controller;
BEGIN
    PERFORM delta._controller(kind);
    UPDATE delta.controller AS c SET paused = _set_paused.paused, updated_at = now()
    WHERE c.kind = _set_paused.kind
    RETURNING * INTO result;
    RETURN result;
END
$$;

-- Stops new runs of kind (runs in progress finish), without pausing its
-- namespaces; its resources stay due and its inform runs go on.
CREATE FUNCTION delta.pause_kind(kind text) RETURNS delta.controller
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT delta._set_paused(kind, true) $$;

-- Lets kind run again; wakes every namespace at commit.
CREATE FUNCTION delta.resume_kind(kind text) RETURNS delta.controller
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT delta._wake(n.name) FROM delta.namespace AS n;
    SELECT delta._set_paused(kind, false);
$$;

----------------------------------------------------------------------------
-- Functions a controller uses cannot be dropped from under it
----------------------------------------------------------------------------

-- sql_drop event trigger: a DROP (FUNCTION, SCHEMA ... CASCADE, OWNED,
-- EXTENSION of another extension) that would remove the work, inform or
-- compare function of a registered controller fails, naming the
-- controller.  Dropping delta itself is not held up.
CREATE FUNCTION delta._guard_drop() RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    used record;
BEGIN
    -- DROP EXTENSION delta: its table goes too
    IF to_regclass('delta.controller') IS NULL THEN
        RETURN;
    END IF;
    SELECT c.kind, d.object_identity INTO used
    FROM pg_event_trigger_dropped_objects() AS d
    JOIN delta.controller AS c
      ON d.objid IN (c.work::oid, c.inform::oid, c.compare::oid)
    WHERE d.classid = 'pg_catalog.pg_proc'::regclass
    ORDER BY c.kind
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop function % because the controller of kind "%" uses it',
            used.object_identity, used.kind
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = format('Unregister it first (SELECT delta.unregister_controller(%L)), or register it again with other functions.',
                                used.kind);
    END IF;
END
$$;

-- Why resource (kind, object_id) is or is not running now, in a few
-- sentences: for an operator, not for programs (the words may change).
-- SECURITY DEFINER: it reads the workers' shared memory (delta._processes)
-- for a caller that holds only this function.
CREATE FUNCTION delta.explain(kind text, object_id text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    r delta.resource;
    c delta.controller;
    ns delta.namespace;
    running bigint;
    workers bigint;
    last_error text;
    why text[] := '{}';
    iso constant text := 'YYYY-MM-DD HH24:MI:SSOF';
BEGIN
    PERFORM delta._check_name('kind', kind, 63);
    PERFORM delta._check_name('object_id', object_id, 255);
    SELECT * INTO r FROM delta.resource AS x
    WHERE x.kind = explain.kind AND x.object_id = explain.object_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'resource "%" of kind "%" does not exist', object_id, kind
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT * INTO c FROM delta.controller AS x WHERE x.kind = r.kind;
    SELECT * INTO ns FROM delta.namespace AS x WHERE x.name = r.namespace;
    last_error := CASE WHEN jsonb_array_length(r.errors) > 0
                       THEN format(' Last error (attempt %s, %s): %s', r.errors -> -1 ->> 'attempt',
                                   r.errors -> -1 ->> 'sqlstate', r.errors -> -1 ->> 'error') END;

    IF r.state = 'pending' THEN
        RETURN format('Running: attempt %s of %s, held by process %s since %s%s.',
            r.attempt, r.max_attempts, r.holder_pid, to_char(r.attempted_at, iso),
            CASE WHEN delta._holder_alive(r.holder_pid, r.holder_started_at) THEN ''
                 ELSE ', which no longer runs: the next maintenance pass ends the run and counts the attempt' END);
    ELSIF r.state = 'synced' THEN
        RETURN format('Synced at %s; it runs again when it is informed or invalidated.', to_char(r.synced_at, iso));
    ELSIF r.state = 'degraded' THEN
        RETURN format('Degraded after %s attempts (max_attempts %s): not tried again until it is informed again or retried with delta.retry().%s',
            r.attempt, r.max_attempts, coalesce(last_error, ''));
    ELSIF r.state = 'deleted' THEN
        RETURN format('Deleted by its work function at %s; it runs again when it is informed.%s',
            to_char(r.attempted_at, iso), coalesce(last_error, ''));
    ELSIF r.due_at IS NULL THEN
        RETURN format('%s and not due: nothing runs it until it is informed or retried.%s',
            initcap(r.state::text), coalesce(last_error, ''));
    END IF;

    -- due, now or later: what stands in the way
    IF r.due_at > now() THEN
        why := why || format('due at %s (in %s s)%s', to_char(r.due_at, iso),
            round(extract(epoch FROM r.due_at - now())),
            CASE WHEN r.state = 'failed' THEN format(', the back-off after attempt %s of %s', r.attempt, r.max_attempts)
                 ELSE '' END);
    END IF;
    IF c.kind IS NULL THEN
        why := why || format('no controller is registered for kind "%s"', r.kind);
    ELSIF c.paused THEN
        why := why || format('kind "%s" is paused (delta.resume_kind)', r.kind);
    END IF;
    IF ns.paused THEN
        why := why || format('namespace "%s" is paused', r.namespace);
    END IF;
    IF ns.max_workers = 0 THEN
        why := why || format('namespace "%s" has max_workers 0: no worker serves it', r.namespace);
    ELSE
        SELECT count(*) INTO workers FROM delta._processes() AS p
        WHERE p.database = current_database() AND p.namespace = r.namespace AND p.role IN ('worker', 'leader');
        IF workers = 0 THEN
            why := why || format('no worker of namespace "%s" runs now (delta.workers)', r.namespace);
        END IF;
    END IF;
    IF c.parallelism IS NOT NULL THEN
        SELECT count(*) INTO running FROM delta.resource AS x WHERE x.kind = r.kind AND x.state = 'pending';
        IF running >= c.parallelism THEN
            why := why || format('kind "%s" already has %s runs of its parallelism %s', r.kind, running, c.parallelism);
        END IF;
    END IF;
    IF cardinality(why) = 0 THEN
        RETURN format('%s and due since %s: the next free worker of namespace "%s" runs it.%s',
            initcap(r.state::text), to_char(r.due_at, iso), r.namespace, coalesce(last_error, ''));
    END IF;
    RETURN format('%s, not running: %s.%s', initcap(r.state::text), array_to_string(why, '; '),
        coalesce(last_error, ''));
END
$$;
