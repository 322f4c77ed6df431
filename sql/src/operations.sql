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
