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
                         AND d.synced_at < delta._ago(n.resource_expiry)
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
                             AND d.synced_at < delta._ago(n.synced_retention)
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
                             AND d.attempted_at < delta._ago(ended.retention)
                           LIMIT max_count FOR UPDATE SKIP LOCKED))
              AND r.state = ended.state;
            GET DIAGNOSTICS count = ROW_COUNT;
            cleaned := cleaned + count;
        END LOOP;
    END LOOP;

    DELETE FROM delta.event AS e
    WHERE e.id = ANY (ARRAY(SELECT d.id FROM delta.event AS d
                   WHERE d.xid < horizon
                     AND (d.created_at < delta._ago(event_retention)
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

-- Deletes up to max_count rows of the run history that ended more than
-- retention ago, oldest first (run_ended_idx).  Rows are never updated, so
-- nothing is locked or skipped: the leader alone deletes them.
CREATE FUNCTION delta._clean_runs(max_count integer, retention interval) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    count integer;
BEGIN
    DELETE FROM delta.run AS h
    WHERE h.id = ANY (ARRAY(SELECT d.id FROM delta.run AS d
                   WHERE d.ended_at < delta._ago(retention)
                   ORDER BY d.ended_at
                   LIMIT max_count));
    GET DIAGNOSTICS count = ROW_COUNT;
    RETURN count;
END
$$;
