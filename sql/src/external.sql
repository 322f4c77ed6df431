----------------------------------------------------------------------------
-- External workers: claim due resources and end their runs through SQL
-- (README "External workers").  The public functions are C wrappers that
-- run delta._external_<name>(caller, ...) as the owner of schema delta.
----------------------------------------------------------------------------

-- Raises 25001 inside a transaction block: a claim commits before its work.
CREATE FUNCTION delta._check_claim_outside_block() RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_check_claim_outside_block';

-- From now on, this session's exit ends its claims at once (external.c).
CREATE FUNCTION delta._enlist_claimer() RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_enlist_claimer';

-- Whether a claiming session exited since this session last asked.
CREATE FUNCTION delta._claimer_exited_since() RETURNS boolean
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_claimer_exited_since';

-- Until the transaction ends, a commit that wakes namespace wakes this session.
CREATE FUNCTION delta._await_begin(namespace text) RETURNS void
    LANGUAGE c STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'delta_await_begin';

-- Sleeps until woken (true) or for timeout (false).
CREATE FUNCTION delta._await_work(timeout interval) RETURNS boolean
    LANGUAGE c STRICT VOLATILE
    AS 'MODULE_PATHNAME', 'delta_await_work';

-- Claims up to max due resources of from_namespace (of kinds only, when given)
-- for caller: pending, the attempt counted, each with a claim token.  With
-- a wait, sleeps until a commit wakes the namespace or the first back-off
-- ends, at most wait.  lease NULL: the calling session holds the claims;
-- else a lease that delta.heartbeat extends.  Lost claims of the
-- namespace (a claiming session exited, a lease ran out) are rescued
-- first.
CREATE FUNCTION delta._external_claim(caller oid, from_namespace text, max integer, kinds text[],
    wait interval, lease interval)
    RETURNS TABLE (token uuid, lease_until timestamptz, id bigint, kind text, object_id text,
                   namespace text, object jsonb, metadata jsonb, tags text[], attempt integer,
                   max_attempts integer, generation bigint, created_at timestamptz,
                   synced_at timestamptz, external_created_at timestamptz, errors jsonb)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    deadline timestamptz;
    next_due timestamptz;
    claimed_at timestamptz;
BEGIN
    PERFORM delta._check_namespace(_external_claim.from_namespace);
    IF max IS NULL OR max NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'argument "max" must be between 1 and 1000, not %', coalesce(max::text, 'NULL')
            USING ERRCODE = CASE WHEN max IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END;
    END IF;
    IF array_position(kinds, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'argument "kinds" must not contain null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF wait IS NULL OR wait < interval '0' OR wait > interval '1 hour' THEN
        RAISE EXCEPTION 'argument "wait" must be between 0 and 1 hour, not %', coalesce(wait::text, 'NULL')
            USING ERRCODE = CASE WHEN wait IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END;
    END IF;
    IF lease < interval '1 second' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'argument "lease" must be between 1 second and 1 day, not %', lease
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use NULL to have the calling session hold the claims.';
    END IF;
    PERFORM delta._check_claim_outside_block();
    PERFORM delta._enlist_claimer();

    deadline := clock_timestamp() + wait;
    LOOP
        IF wait > interval '0' THEN
            -- before the claim's snapshot: no wake-up is lost
            PERFORM delta._await_begin(_external_claim.from_namespace);
        END IF;
        IF delta._claimer_exited_since()
           OR EXISTS (SELECT FROM delta.external_claim AS c WHERE c.lease_until < clock_timestamp()) THEN
            PERFORM delta._rescue(_external_claim.from_namespace);
        END IF;
        IF NOT (SELECT n.paused FROM delta.namespace AS n WHERE n.name = _external_claim.from_namespace) THEN
            -- the statement may have waited: its start (now()) is in the past
            claimed_at := clock_timestamp();
            RETURN QUERY
            WITH r AS (
                SELECT * FROM delta._claim(_external_claim.from_namespace, max, kinds, true, claimed_at)),
            c AS (
                INSERT INTO delta.external_claim AS c (resource_id, attempt, role, lease, lease_until, claimed_at)
                SELECT r.id, r.attempt, caller, lease, claimed_at + lease, claimed_at FROM r
                RETURNING c.token, c.lease_until, c.resource_id)
            SELECT c.token, c.lease_until, r.id, r.kind, r.object_id, r.namespace, r.object,
                   r.metadata, r.tags, r.attempt, r.max_attempts, r.generation, r.created_at,
                   r.synced_at, r.external_created_at, r.errors
            FROM r JOIN c ON c.resource_id = r.id
            ORDER BY r.id;
            IF FOUND THEN
                RETURN;
            END IF;
        END IF;
        claimed_at := clock_timestamp();
        EXIT WHEN claimed_at >= deadline;
        -- woken by a commit, or when the next back-off or snooze ends
        SELECT min(r.due_at) INTO next_due FROM delta.resource AS r
        WHERE r.namespace = _external_claim.from_namespace AND r.due_at > claimed_at;
        PERFORM delta._await_work(least(deadline, next_due) - clock_timestamp() + interval '1 millisecond');
    END LOOP;
END
$$;

-- The claims of tokens (none null), locked with their resources in id
-- order; raises unless each is a live claim of caller or of a role caller
-- is a member of.  A claim is live while its row exists and its resource
-- is still pending on the attempt it counted.
CREATE FUNCTION delta._held_claims(caller oid, tokens uuid[])
    RETURNS TABLE (token uuid, resource_id bigint, namespace text, generation bigint,
                   attempt integer, claimed_at timestamptz)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    claim record;
    held uuid[] := '{}';
    missing uuid;
BEGIN
    IF tokens IS NULL OR array_position(tokens, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'a claim token must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOR claim IN
        SELECT c.token, c.role, c.attempt AS claimed_attempt, c.claimed_at,
               r.id, r.namespace, r.claimed_generation, r.attempt, r.state
        FROM delta.external_claim AS c
        JOIN delta.resource AS r ON r.id = c.resource_id
        WHERE c.token = ANY (_held_claims.tokens)
        ORDER BY r.id
        FOR UPDATE OF r, c
    LOOP
        CONTINUE WHEN claim.state <> 'pending' OR claim.attempt <> claim.claimed_attempt;
        IF NOT pg_has_role(caller, claim.role, 'MEMBER') THEN
            RAISE EXCEPTION 'claim % belongs to role %', claim.token, claim.role::regrole
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Only the role that claimed a resource, or a member of it, ends its run.';
        END IF;
        held := held || claim.token;
        token := claim.token;
        resource_id := claim.id;
        namespace := claim.namespace;
        generation := claim.claimed_generation;
        attempt := claim.attempt;
        claimed_at := claim.claimed_at;
        RETURN NEXT;
    END LOOP;
    SELECT t INTO missing FROM unnest(tokens) AS t WHERE t <> ALL (held) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'claim % is not held', missing
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Its run has ended, or it was rescued (its session ended or its lease ran out), or there never was such a claim.',
                  HINT = 'Nothing was recorded: another run has taken over or will.';
    END IF;
END
$$;

-- Ends the runs of the claims of tokens with outcome (synced, failed,
-- snoozed or deleted), as a worker's runs end (_finish), and the claims
-- with them; returns how many.
CREATE FUNCTION delta._end_claims(caller oid, tokens uuid[], outcome text,
    error text DEFAULT NULL, detail text DEFAULT NULL, delay interval DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    ids bigint[];
    generations bigint[];
    entries jsonb[];
    started timestamptz[];
    n integer;
    ended timestamptz := clock_timestamp();
    woken text[];
BEGIN
    SELECT array_agg(h.resource_id ORDER BY h.resource_id),
           array_agg(h.generation ORDER BY h.resource_id),
           array_agg(CASE _end_claims.outcome
                         WHEN 'failed' THEN jsonb_strip_nulls(jsonb_build_object(
                             'at', now(), 'attempt', h.attempt, 'error', _end_claims.error,
                             'detail', _end_claims.detail))
                         WHEN 'deleted' THEN jsonb_build_object(
                             'at', now(), 'attempt', h.attempt,
                             'error', 'resource deleted by its external worker'
                                      || coalesce(': ' || _end_claims.error, ''))
                     END ORDER BY h.resource_id),
           array_agg(h.claimed_at ORDER BY h.resource_id)
    INTO ids, generations, entries, started
    FROM delta._held_claims(caller, tokens) AS h;
    n := coalesce(cardinality(ids), 0);
    IF n = 0 THEN
        RETURN 0;
    END IF;
    PERFORM delta._finish(ids, generations, array_fill(outcome, ARRAY[n]), entries,
                          array_fill(delay, ARRAY[n]), started, array_fill(ended, ARRAY[n]), false);
    DELETE FROM delta.external_claim AS c WHERE c.resource_id = ANY (ids);
    -- due again (informed during the run, a retry, a snooze): the workers and
    -- waiting claims of its namespace look again, or they would sleep past it
    SELECT array_agg(DISTINCT r.namespace) INTO woken
    FROM delta.resource AS r WHERE r.id = ANY (ids) AND r.due_at IS NOT NULL;
    PERFORM delta._wake(w) FROM unnest(woken) AS w;
    RETURN n;
END
$$;

CREATE FUNCTION delta._external_complete(caller oid, token uuid) RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT FROM delta._end_claims(caller, ARRAY[token], 'synced')
$$;

CREATE FUNCTION delta._external_complete_many(caller oid, tokens uuid[]) RETURNS integer
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT delta._end_claims(caller, tokens, 'synced')
$$;

CREATE FUNCTION delta._external_fail(caller oid, token uuid, error text, detail text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF error IS NULL THEN
        RAISE EXCEPTION 'argument "error" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM delta._end_claims(caller, ARRAY[token], 'failed', error, detail);
END
$$;

CREATE FUNCTION delta._external_snooze(caller oid, token uuid, delay interval) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF delay IS NULL OR delay < interval '0' OR delay > interval '100 years' THEN
        RAISE EXCEPTION 'argument "delay" must be between 0 and 100 years, not %', coalesce(delay::text, 'NULL')
            USING ERRCODE = CASE WHEN delay IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END;
    END IF;
    PERFORM delta._end_claims(caller, ARRAY[token], 'snoozed', delay => delay);
END
$$;

CREATE FUNCTION delta._external_delete(caller oid, token uuid, reason text) RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT FROM delta._end_claims(caller, ARRAY[token], 'deleted', reason)
$$;

-- Extends a lease by its length from now; NULL for a claim its session holds.
CREATE FUNCTION delta._external_heartbeat(caller oid, token uuid) RETURNS timestamptz
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result timestamptz;
BEGIN
    PERFORM FROM delta._held_claims(caller, ARRAY[token]);
    UPDATE delta.external_claim AS c SET lease_until = clock_timestamp() + c.lease
    WHERE c.token = _external_heartbeat.token
    RETURNING c.lease_until INTO result;
    RETURN result;
END
$$;

-- The public functions: each calls delta._external_<name> as the owner of
-- schema delta, passing the calling role.
CREATE FUNCTION delta.claim(namespace text, max integer DEFAULT 1, kinds text[] DEFAULT NULL,
    wait interval DEFAULT '0', lease interval DEFAULT NULL)
    RETURNS TABLE (token uuid, lease_until timestamptz, id bigint, kind text, object_id text,
                   namespace text, object jsonb, metadata jsonb, tags text[], attempt integer,
                   max_attempts integer, generation bigint, created_at timestamptz,
                   synced_at timestamptz, external_created_at timestamptz, errors jsonb)
    LANGUAGE c VOLATILE
    ROWS 10
    AS 'MODULE_PATHNAME', 'delta_call_external_as_caller';

CREATE FUNCTION delta.complete(token uuid) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_call_external_as_caller';

CREATE FUNCTION delta.complete_many(tokens uuid[]) RETURNS integer
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_call_external_as_caller';

CREATE FUNCTION delta.fail(token uuid, error text, detail text DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_call_external_as_caller';

CREATE FUNCTION delta.snooze(token uuid, delay interval) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_call_external_as_caller';

CREATE FUNCTION delta.delete(token uuid, reason text DEFAULT NULL) RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_call_external_as_caller';

CREATE FUNCTION delta.heartbeat(token uuid) RETURNS timestamptz
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_call_external_as_caller';
