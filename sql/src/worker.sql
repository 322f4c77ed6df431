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
-- Computed in seconds and capped at 100 years, so no attempt and no stored
-- setting overflows an interval (a worker must never fail here).
CREATE FUNCTION delta._backoff(attempt integer, backoff_base interval, backoff_max interval)
    RETURNS interval
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT make_interval(secs => greatest(0, least(3155760000::float8,
               extract(epoch FROM backoff_max)::float8,
               extract(epoch FROM backoff_base)::float8
                   * power(2::float8, least(greatest(coalesce(attempt, 1), 1) - 1, 100))))
           * (0.75 + random() * 0.5))
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

-- The claims' scan bounds (wakeup.c explains them): a claim that may lock
-- rows tells delta._claim_begin first (an abort leaves them due below
-- other claims' bounds), and delta._claim_end after the scan.
CREATE FUNCTION delta._claim_begin(namespace text) RETURNS void
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'delta_claim_begin';

CREATE FUNCTION delta._claim_end(namespace text, next_from timestamptz, left_behind timestamptz)
    RETURNS void
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'delta_claim_end';

-- Claims up to max_count resources of namespace due by due_by (of kinds
-- only, unless NULL) for the calling process and returns them pending, in
-- due order.  due_by is the start of the transaction unless given: a claim
-- that has waited (delta.claim) gives the time it claims at.
--
-- Paused kinds are skipped, and so are the kinds of external controllers (no
-- work function) unless external: only delta.claim takes those.  Kinds with a parallelism cap are serialized by a transaction advisory
-- lock each (1684368501, hashtext(kind)) so the cap holds across workers;
-- (1684368500, 0) is the leader's session lock.
--
-- A resource whose last attempt ended with its worker exiting (57P01) may
-- crash its worker again, and a crash costs every resource of the batch an
-- attempt: such a resource is claimed alone, and a batch stops before one.
--
-- A worker scans the due index from scan_from (its bound, wakeup.c), not
-- from the start, where a held xmin piles up dead entries.  The claim
-- accounts for every row it meets in [scan_from, the last row it locked]:
-- claimed; locked and left due (a cap, a suspect: the earliest of them is
-- left_behind, reported to the other workers at commit); or passed over as
-- its kind has no room (paused, external, capped: the earliest of them).
-- The worker's next bound is the earliest of these, or the last row it
-- locked.  Rows it skipped because another transaction held them are
-- reported by that transaction's end.
CREATE FUNCTION delta._claim(namespace text, max_count integer,
    kinds text[] DEFAULT NULL, external boolean DEFAULT false, due_by timestamptz DEFAULT now(),
    scan_from timestamptz DEFAULT '-infinity')
    RETURNS SETOF delta.resource
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    -- planned once per worker: the only sensible plan reads resource_due_idx;
    -- and the update must read the primary key even when the plan was made
    -- while the table was small (a worker's first claim after a TRUNCATE):
    -- else each claim reads the whole table, more of it as it grows
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
    AS $$
#variable_conflict use_column
DECLARE
    capped record;
    caps jsonb := '{}';
    closed boolean := false;
    ids bigint[];
    scanned_to timestamptz;
    left_behind timestamptz;
    passed_over timestamptz;
BEGIN
    PERFORM delta._claim_begin(_claim.namespace);
    FOR capped IN
        SELECT c.kind, c.parallelism, c.paused OR (c.work IS NULL AND NOT _claim.external) AS closed
        FROM delta.controller AS c
        WHERE c.parallelism IS NOT NULL OR c.paused OR (c.work IS NULL AND NOT _claim.external)
        ORDER BY c.kind
    LOOP
        -- a paused kind (delta.pause_kind) has room for no run, nor has an
        -- external kind in a server worker
        IF capped.closed THEN
            caps := caps || jsonb_build_object(capped.kind, 0);
            closed := true;
            CONTINUE;
        END IF;
        PERFORM pg_advisory_xact_lock(1684368501, hashtext(capped.kind));
        caps := caps || jsonb_build_object(capped.kind, capped.parallelism -
            (SELECT count(*) FROM delta.resource AS r WHERE r.kind = capped.kind AND r.state = 'pending'));
        closed := closed OR (caps ->> capped.kind)::bigint <= 0;
    END LOOP;

    SELECT array_agg(c.id ORDER BY c.n) FILTER (WHERE c.taken), max(c.due_at),
           min(c.due_at) FILTER (WHERE NOT c.taken)
    INTO ids, scanned_to, left_behind
    FROM (SELECT c.id, c.n, c.due_at,
                 c.nth_of_kind <= coalesce((caps ->> c.kind)::bigint, c.nth_of_kind)
                 AND CASE WHEN c.first_suspect THEN c.n = 1 ELSE c.suspects = 0 END AS taken
          FROM (SELECT d.id, d.kind, d.due_at,
                       row_number() OVER w AS n,
                       count(*) FILTER (WHERE d.suspect) OVER w AS suspects,
                       first_value(d.suspect) OVER w AS first_suspect,
                       row_number() OVER (PARTITION BY d.kind ORDER BY d.due_at, d.id) AS nth_of_kind
                FROM (SELECT d.id, d.kind, d.due_at,
                             coalesce(d.errors -> -1 ->> 'sqlstate' = '57P01', false) AS suspect
                      FROM delta.resource AS d
                      WHERE d.namespace = _claim.namespace
                        AND d.due_at >= _claim.scan_from AND d.due_at <= _claim.due_by
                        AND (_claim.kinds IS NULL OR d.kind = ANY (_claim.kinds))
                        AND coalesce((caps ->> d.kind)::bigint, 1) > 0
                      ORDER BY d.due_at
                      LIMIT max_count
                      FOR UPDATE SKIP LOCKED) AS d
                WINDOW w AS (ORDER BY d.due_at, d.id ROWS UNBOUNDED PRECEDING)) AS c) AS c;

    -- a worker's claim (external claims scan from the start each time)
    IF closed AND scanned_to IS NOT NULL AND NOT _claim.external THEN
        SELECT d.due_at INTO passed_over
        FROM delta.resource AS d
        WHERE d.namespace = _claim.namespace
          AND d.due_at >= _claim.scan_from AND d.due_at <= scanned_to
          AND coalesce((caps ->> d.kind)::bigint, 1) <= 0
        ORDER BY d.due_at
        LIMIT 1;
    END IF;
    PERFORM delta._claim_end(_claim.namespace,
        CASE WHEN NOT _claim.external THEN least(scanned_to, left_behind, passed_over) END,
        left_behind);

    RETURN QUERY
    UPDATE delta.resource AS r SET
        state = 'pending', attempt = r.attempt + 1, attempted_at = _claim.due_by,
        due_at = NULL, holder_pid = pg_backend_pid(),
        holder_started_at = delta._backend_start(), claimed_generation = r.generation
    WHERE r.id = ANY (ids)
    RETURNING r.*;
END
$$;

-- Records the outcomes of a chunk of runs by the calling process: each run's
-- outcome, when it started and when it ended.  A run that delta.cancel
-- ended (outcome cancelled) leaves its resource failed and not due, at any
-- attempt.  A resource informed again during its run (generation moved)
-- goes back to scheduled.  Only rows still pending and held by the caller
-- are touched (by_holder; else the caller, delta._end_claims, has checked
-- the claims' tokens).  The worker passes the
-- ids sorted, and the update visits them in that order (a nested loop over
-- the arrays and the primary key), so rows are locked in id order as the
-- rescue and the hand-back lock them; a deadlock with an application
-- transaction that informs several resources is still possible, and the
-- worker tries again.  The runs go to the history first (_record_runs).
CREATE FUNCTION delta._finish(ids bigint[], generations bigint[], outcomes text[],
    errors jsonb[], delays interval[], started timestamptz[], ended timestamptz[],
    by_holder boolean DEFAULT true)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    ended_ids bigint[];
BEGIN
    PERFORM delta._record_runs(_finish.ids, _finish.generations, _finish.outcomes, _finish.errors,
                               _finish.started, _finish.ended, _finish.by_holder);
    WITH done AS (
        UPDATE delta.resource AS r SET
            state = CASE
                WHEN r.generation <> o.generation THEN 'scheduled'
                WHEN o.outcome = 'synced' THEN 'synced'
                WHEN o.outcome = 'deleted' THEN 'deleted'
                WHEN o.outcome = 'snoozed' THEN 'scheduled'
                WHEN o.outcome = 'cancelled' THEN 'failed'
                WHEN r.attempt >= r.max_attempts THEN 'degraded'
                ELSE 'failed' END::delta.resource_state,
            attempted_at = o.started,
            synced_at = CASE WHEN o.outcome = 'synced' AND r.generation = o.generation
                             THEN o.ended ELSE r.synced_at END,
            attempt = CASE
                WHEN r.generation <> o.generation THEN 0
                WHEN o.outcome = 'snoozed' THEN r.attempt - 1
                ELSE r.attempt END,
            due_at = CASE
                WHEN r.generation <> o.generation THEN o.ended
                WHEN o.outcome = 'snoozed' THEN o.ended + o.delay
                WHEN o.outcome = 'failed' AND r.attempt < r.max_attempts
                    THEN o.ended + delta._retry_delay(r.kind, r.attempt)
                ELSE NULL END,
            errors = CASE WHEN o.error IS NULL THEN r.errors ELSE delta._last_errors(r.errors, o.error) END,
            holder_pid = NULL,
            holder_started_at = NULL
        FROM unnest(_finish.ids, _finish.generations, _finish.outcomes, _finish.errors,
                    _finish.delays, _finish.started, _finish.ended)
            AS o(id, generation, outcome, error, delay, started, ended)
        WHERE r.id = o.id
          -- as text: the rows come by the primary key, never by
          -- resource_pending_idx, whose dead entries a held xmin piles up
          -- (the plan read thousands of them for a chunk of runs)
          AND r.state::text = 'pending'
          AND (NOT _finish.by_holder OR (r.holder_pid = pg_backend_pid()
                                         AND r.holder_started_at = delta._backend_start()))
        RETURNING r.id, r.state)
    SELECT array_agg(done.id) INTO ended_ids FROM done WHERE done.state <> 'scheduled';
    PERFORM delta._emit_events(ended_ids);
END
$$;

-- Hands back resources the calling process claimed but never started (it
-- is stopping): due now, the attempt the claim counted given back.
CREATE FUNCTION delta._hand_back(ids bigint[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    woken text[];
BEGIN
    PERFORM FROM delta.resource AS r WHERE r.id = ANY (_hand_back.ids) ORDER BY r.id FOR UPDATE;
    WITH back AS (
        UPDATE delta.resource AS r SET
            state = CASE WHEN r.attempt <= 1 THEN 'scheduled' ELSE 'failed' END::delta.resource_state,
            attempt = greatest(r.attempt - 1, 0),
            due_at = now(),
            holder_pid = NULL,
            holder_started_at = NULL
        WHERE r.id = ANY (_hand_back.ids)
          AND r.state = 'pending'
          AND r.holder_pid = pg_backend_pid()
          AND r.holder_started_at = delta._backend_start()
        RETURNING r.namespace)
    SELECT array_agg(DISTINCT back.namespace) INTO woken FROM back;
    PERFORM delta._wake(w) FROM unnest(woken) AS w;
END
$$;

-- Ends the pending runs ids that will never report an outcome (their worker
-- exited, or could not record them): failed, or degraded at their last
-- attempt, with error (and the run's pid) appended to errors; a resource
-- informed during its run gets a run of its own at once instead, as
-- _finish does.  The caller has locked the rows, in id order.  The runs go
-- to the history first (_record_ended_runs); the external claims of the
-- runs end with them, so their tokens are refused from now on.
CREATE FUNCTION delta._end_runs(ids bigint[], error text, sqlstate text) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    ended_ids bigint[];
    woken text[];
BEGIN
    PERFORM delta._record_ended_runs(_end_runs.ids, _end_runs.error, _end_runs.sqlstate);
    DELETE FROM delta.external_claim AS c WHERE c.resource_id = ANY (_end_runs.ids);
    WITH r AS (
        UPDATE delta.resource AS r SET
            state = CASE WHEN r.generation IS DISTINCT FROM coalesce(r.claimed_generation, r.generation)
                              THEN 'scheduled'
                         WHEN r.attempt >= r.max_attempts THEN 'degraded'
                         ELSE 'failed' END::delta.resource_state,
            attempt = CASE WHEN r.generation IS DISTINCT FROM coalesce(r.claimed_generation, r.generation)
                                THEN 0 ELSE r.attempt END,
            due_at = CASE WHEN r.generation IS DISTINCT FROM coalesce(r.claimed_generation, r.generation)
                               THEN now()
                          WHEN r.attempt >= r.max_attempts THEN NULL
                          ELSE now() + delta._retry_delay(r.kind, r.attempt) END,
            errors = delta._last_errors(r.errors, jsonb_build_object(
                'at', now(), 'attempt', r.attempt,
                'error', format('%s (pid %s)', _end_runs.error, r.holder_pid),
                'sqlstate', _end_runs.sqlstate)),
            holder_pid = NULL,
            holder_started_at = NULL
        WHERE r.id = ANY (_end_runs.ids) AND r.state = 'pending'
        RETURNING r.id, r.state, r.namespace)
    SELECT array_agg(r.id), array_agg(DISTINCT r.namespace) FILTER (WHERE r.state = 'scheduled')
    INTO ended_ids, woken FROM r;
    PERFORM delta._emit_events(ended_ids);
    PERFORM delta._wake(w) FROM unnest(woken) AS w;
    RETURN coalesce(cardinality(ended_ids), 0);
END
$$;

-- Whether a pending run is lost: its holder process is gone, or the lease
-- of its external claim (lease_until, when held by a lease) ran out.
CREATE FUNCTION delta._run_lost(holder_pid integer, holder_started_at timestamptz,
    lease_until timestamptz) RETURNS boolean
    LANGUAGE sql VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE WHEN lease_until IS NULL THEN NOT delta._holder_alive(holder_pid, holder_started_at)
                ELSE lease_until < clock_timestamp() END
$$;

-- Ends the runs of pending resources of namespace (all when NULL) that are
-- lost (_run_lost, _end_runs).  The rows are locked in id order, then
-- looked at again with what committed while the lock was awaited (a run
-- that ended, a lease that delta.heartbeat moved on), so a live run is
-- never touched.
CREATE FUNCTION delta._rescue(namespace text DEFAULT NULL) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    locked bigint[];
    dead bigint[];
    expired bigint[];
    rescued integer;
BEGIN
    SELECT array_agg(d.id) INTO locked
    FROM (SELECT r.id FROM delta.resource AS r
          LEFT JOIN delta.external_claim AS c ON c.resource_id = r.id
          WHERE r.state = 'pending'
            AND (_rescue.namespace IS NULL OR r.namespace = _rescue.namespace)
            AND delta._run_lost(r.holder_pid, r.holder_started_at, c.lease_until)
          ORDER BY r.id
          FOR UPDATE OF r) AS d;
    IF locked IS NOT NULL THEN
        SELECT array_agg(r.id ORDER BY r.id) FILTER (WHERE c.lease_until IS NULL),
               array_agg(r.id ORDER BY r.id) FILTER (WHERE c.lease_until IS NOT NULL)
        INTO dead, expired
        FROM delta.resource AS r
        LEFT JOIN delta.external_claim AS c ON c.resource_id = r.id
        WHERE r.id = ANY (locked) AND r.state = 'pending'
          AND delta._run_lost(r.holder_pid, r.holder_started_at, c.lease_until);
    END IF;
    rescued := delta._end_runs(dead, 'worker exited during the run', '57P01')
             + delta._end_runs(expired, 'claim lease ran out without delta.heartbeat', '57014');

    IF _rescue.namespace IS NULL THEN
        UPDATE delta.inform_run AS ir SET
            state = 'failed',
            due_at = CASE WHEN ir.attempt >= (SELECT c.max_attempts FROM delta.controller AS c
                                              WHERE c.kind = ir.kind) THEN 'infinity'
                          ELSE now() + delta._retry_delay(ir.kind, ir.attempt) END,
            errors = delta._last_errors(ir.errors, jsonb_build_object(
                'at', now(), 'attempt', ir.attempt,
                'error', format('worker exited during the inform run (pid %s)', ir.holder_pid),
                'sqlstate', '57P01')),
            holder_pid = NULL,
            holder_started_at = NULL
        WHERE ir.state = 'running'
          AND NOT delta._holder_alive(ir.holder_pid, ir.holder_started_at);
    END IF;
    RETURN rescued;
END
$$;
