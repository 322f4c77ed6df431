----------------------------------------------------------------------------
-- Events and subscriptions (called through the C wrappers delta.subscribe,
-- delta.events and delta.unsubscribe, which pass the calling role)
----------------------------------------------------------------------------

CREATE FUNCTION delta._subscribe(caller oid, categories text[], kinds text[], name text)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    bad text;
    result bigint;
BEGIN
    IF categories IS NULL THEN
        RAISE EXCEPTION 'argument "categories" must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Categories are object_synced, object_failed and object_deleted.';
    END IF;
    IF cardinality(categories) = 0 THEN
        RAISE EXCEPTION 'argument "categories" must name at least one category'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Categories are object_synced, object_failed and object_deleted.';
    END IF;
    SELECT c INTO bad FROM unnest(categories) AS c
    WHERE c IS NULL OR c NOT IN ('object_synced', 'object_failed', 'object_deleted') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'argument "categories" contains an unknown category "%"', coalesce(bad, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Categories are object_synced, object_failed and object_deleted.';
    END IF;
    IF kinds IS NOT NULL THEN
        SELECT k INTO bad FROM unnest(kinds) AS k WHERE k IS NULL OR k = '' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'argument "kinds" contains an empty or NULL kind'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    -- no cursor: delta._subscription_inserted starts it at the snapshot
    INSERT INTO delta.subscription (name, owner, categories, kinds)
    VALUES (name, caller, ARRAY(SELECT DISTINCT c FROM unnest(categories) AS c ORDER BY c),
            kinds)
    RETURNING id INTO result;
    RETURN result;
END
$$;

-- The subscription, locked, if caller may use it; else an error.
CREATE FUNCTION delta._own_subscription(caller oid, subscription bigint)
    RETURNS delta.subscription
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    s delta.subscription;
BEGIN
    IF subscription IS NULL THEN
        RAISE EXCEPTION 'argument "subscription" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO s FROM delta.subscription AS x WHERE x.id = subscription FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % does not exist', subscription
            USING ERRCODE = 'undefined_object';
    END IF;
    IF s.owner <> caller AND NOT pg_has_role(caller, s.owner, 'USAGE')
       AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = caller) THEN
        RAISE EXCEPTION 'permission denied for subscription %', subscription
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The subscription belongs to role "%s".', s.owner);
    END IF;
    RETURN s;
END
$$;

-- The next events of a subscription in (xid, id) order, at most max, and
-- the cursor moved past them.  Only events of transactions older than every
-- running one are returned, so an event that commits later can never be
-- behind the cursor: no event is skipped.
CREATE FUNCTION delta._events(caller oid, subscription bigint, max integer)
    RETURNS SETOF delta.event
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    s delta.subscription;
    horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
    last delta.event;
    n integer := 0;
BEGIN
    s := delta._own_subscription(caller, subscription);
    IF max IS NULL OR max < 1 THEN
        RAISE EXCEPTION 'argument "max" must be at least 1, not %', coalesce(max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR last IN
        SELECT * FROM delta.event AS e
        WHERE (e.xid, e.id) > (s.cursor_xid, s.cursor_id)
          AND e.xid < horizon
          AND e.category = ANY (s.categories)
          AND (s.kinds IS NULL OR e.kind = ANY (s.kinds))
        ORDER BY e.xid, e.id
        LIMIT max
    LOOP
        n := n + 1;
        RETURN NEXT last;
    END LOOP;
    IF n = max THEN
        UPDATE delta.subscription AS x SET cursor_xid = last.xid, cursor_id = last.id WHERE x.id = s.id;
    ELSIF horizon > s.cursor_xid THEN
        -- everything before the horizon has been seen
        UPDATE delta.subscription AS x SET cursor_xid = horizon, cursor_id = 0 WHERE x.id = s.id;
    END IF;
END
$$;

CREATE FUNCTION delta._unsubscribe(caller oid, subscription bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM delta._own_subscription(caller, subscription);
    DELETE FROM delta.subscription AS x WHERE x.id = subscription;
END
$$;

----------------------------------------------------------------------------
-- Restores: a dump keeps the xids of the cluster it was taken in
----------------------------------------------------------------------------

-- An xid of a restored event or cursor, as this cluster orders it.  Xids up
-- to the one that installed delta here are this cluster's own past or come
-- from a cluster that was behind it: they stay.  A later one was never
-- assigned here before the restore (another cluster's counter was ahead):
-- it becomes the installing xid, so restored events still come before every
-- event made here, and below the horizon of delta.events.  The map keeps
-- order (x <= y gives f(x) <= f(y)) for events and cursors alike.
CREATE FUNCTION delta._restored_xid(x xid8) RETURNS xid8
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT coalesce((SELECT least(x, i.xid) FROM delta.installation AS i LIMIT 1), x)
$$;

-- BEFORE INSERT of an event whose xid is not the inserting transaction's:
-- a row copied in by pg_restore (or by hand).
CREATE FUNCTION delta._event_restored() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    NEW.xid := delta._restored_xid(NEW.xid);
    RETURN NEW;
END
$$;

-- BEFORE INSERT of a subscription.  Without a cursor (delta.subscribe) it
-- starts at the snapshot: events of transactions that commit from now on.
-- With one (a restore), a cursor moved back by delta._restored_xid starts
-- at the beginning of that xid, so the events moved there are delivered
-- again rather than skipped: the subscription may see again events it had
-- read, never miss one.
CREATE FUNCTION delta._subscription_inserted() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    moved xid8;
BEGIN
    IF NEW.cursor_xid IS NULL THEN
        NEW.cursor_xid := pg_snapshot_xmin(pg_current_snapshot());
        NEW.cursor_id := 0;
    ELSE
        moved := delta._restored_xid(NEW.cursor_xid);
        IF moved <> NEW.cursor_xid THEN
            NEW.cursor_xid := moved;
            NEW.cursor_id := 0;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
