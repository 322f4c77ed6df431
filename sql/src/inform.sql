----------------------------------------------------------------------------
-- Informing resources
----------------------------------------------------------------------------

-- Raises unless every item, with the call's defaults, can be informed, and
-- returns the namespaces of the items.  One pass over the items: nothing is
-- written before all of them are known to be good.  An object_id given
-- twice is not looked for here (see delta._check_distinct).
CREATE FUNCTION delta._item_namespaces(
    kind text, items delta.inform_item[], namespace text, metadata jsonb,
    tags text[], max_attempts integer)
    RETURNS text[]
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    -- generic plans: a custom plan would carry the whole items array into
    -- each statement as a constant, copied several times per plan (issue 10)
    SET plan_cache_mode = force_generic_plan
    AS $$
#variable_conflict use_column
DECLARE
    bad record;
    call_tag text;
    ns text;
BEGIN
    PERFORM delta._controller(_item_namespaces.kind);
    IF _item_namespaces.items IS NULL THEN
        RAISE EXCEPTION 'argument "items" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF _item_namespaces.metadata IS NULL THEN
        RAISE EXCEPTION 'argument "metadata" must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Use ''{}'' for no metadata.';
    END IF;
    IF jsonb_typeof(_item_namespaces.metadata) <> 'object' THEN
        RAISE EXCEPTION 'argument "metadata" must be a JSON object, not %', _item_namespaces.metadata::text
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF _item_namespaces.max_attempts < 1 THEN
        RAISE EXCEPTION 'argument "max_attempts" must be at least 1, not %', _item_namespaces.max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the call's tags, which the items without tags of their own take
    SELECT coalesce(tag, 'NULL') INTO call_tag FROM unnest(_item_namespaces.tags) AS tag
    WHERE tag IS NULL OR octet_length(tag) > 255 OR tag !~ '^[\w][\w\-]+[\w]$'
    LIMIT 1;

    -- The first item with a bad field (its message and error code) and the
    -- first with a bad tag, in the items' order, and the namespaces.  The
    -- OFFSET keeps each item's checks from being evaluated once per
    -- aggregate.
    SELECT min(i.ord) FILTER (WHERE i.problem IS NOT NULL) AS ord,
           array_agg(i.problem ORDER BY i.ord) FILTER (WHERE i.problem IS NOT NULL) AS problems,
           (array_agg(i.object_id ORDER BY i.ord) FILTER (WHERE i.tag IS NOT NULL))[1] AS tag_object_id,
           (array_agg(i.tag ORDER BY i.ord) FILTER (WHERE i.tag IS NOT NULL))[1] AS tag,
           array_agg(DISTINCT i.namespace) FILTER (WHERE i.namespace IS NOT NULL) AS namespaces,
           bool_or(i.namespace IS NULL) AS call_namespace
    INTO bad
    FROM (SELECT t.ord, t.object_id, t.namespace,
                 CASE
                   WHEN t.object_id IS NULL THEN ARRAY['argument "object_id" must not be null', 'null_value_not_allowed']
                   WHEN t.object_id = '' THEN ARRAY['argument "object_id" must not be empty', 'invalid_parameter_value']
                   WHEN octet_length(t.object_id) > 255 THEN ARRAY[format('argument "object_id" is too long (%s bytes, at most 255)', octet_length(t.object_id)), 'string_data_right_truncation']
                   WHEN t.object IS NULL THEN ARRAY[format('argument "object" of object_id "%s" must not be null', t.object_id), 'null_value_not_allowed']
                   WHEN jsonb_typeof(t.object) <> 'object' THEN ARRAY[format('argument "object" of object_id "%s" must be a JSON object, not a JSON %s', t.object_id, jsonb_typeof(t.object)), 'invalid_parameter_value']
                   WHEN t.metadata IS NOT NULL AND jsonb_typeof(t.metadata) <> 'object' THEN ARRAY[format('argument "metadata" of object_id "%s" must be a JSON object', t.object_id), 'invalid_parameter_value']
                   WHEN t.max_attempts < 1 THEN ARRAY[format('argument "max_attempts" of object_id "%s" must be at least 1, not %s', t.object_id, t.max_attempts), 'invalid_parameter_value']
                   WHEN NOT isfinite(t.external_created_at) THEN ARRAY[format('argument "external_created_at" of object_id "%s" must be a finite time, not %s', t.object_id, t.external_created_at), 'datetime_field_overflow']
                 END AS problem,
                 CASE
                   WHEN t.tags IS NULL THEN call_tag
                   ELSE (SELECT coalesce(tag, 'NULL') FROM unnest(t.tags) AS tag
                         WHERE tag IS NULL OR octet_length(tag) > 255 OR tag !~ '^[\w][\w\-]+[\w]$'
                         LIMIT 1)
                 END AS tag
          FROM delta._item_fields(_item_namespaces.items) AS t
          OFFSET 0) AS i;
    IF bad.problems IS NOT NULL THEN
        RAISE EXCEPTION '%', bad.problems[1][1] USING ERRCODE = bad.problems[1][2],
            DETAIL = format('Item %s of %s is invalid; nothing was informed.', bad.ord, cardinality(_item_namespaces.items));
    END IF;
    IF bad.tag IS NOT NULL THEN
        RAISE EXCEPTION 'argument "tags" contains an invalid tag "%"', bad.tag
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Tags must match ^[\w][\w\-]+[\w]$ and have at most 255 bytes (object_id "%s").', bad.tag_object_id);
    END IF;

    -- the call's namespace, for the items without one of their own
    IF bad.call_namespace THEN
        bad.namespaces := ARRAY(SELECT DISTINCT n
                                FROM unnest(array_append(bad.namespaces, _item_namespaces.namespace)) AS n);
    END IF;
    FOREACH ns IN ARRAY coalesce(bad.namespaces, '{}') LOOP
        PERFORM delta._check_namespace(ns);
    END LOOP;
    RETURN coalesce(bad.namespaces, '{}');
END
$$;

-- Raises if an object_id occurs more than once in items.
CREATE FUNCTION delta._check_distinct(items delta.inform_item[])
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
    AS $$
DECLARE
    twice text;
BEGIN
    SELECT t.object_id INTO twice FROM unnest(items) AS t
    GROUP BY t.object_id HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'argument "items" contains object_id "%" more than once', twice
            USING ERRCODE = 'cardinality_violation';
    END IF;
END
$$;

-- Raises unless every item, with the call's defaults, can be informed (the
-- checks of delta.inform_many, for the informer's items).
CREATE FUNCTION delta._check_items(
    kind text, items delta.inform_item[], namespace text, metadata jsonb,
    tags text[], max_attempts integer)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM delta._item_namespaces(kind, items, namespace, metadata, tags, max_attempts);
    PERFORM delta._check_distinct(items);
END
$$;

-- The fields of items, each taken out of its item once, with its position.
-- Inlined into the callers' statements (no SET clause, STABLE).  unnest in
-- the select list streams the items (in FROM it would copy them all into a
-- tuplestore first, 100 MB for 10,000 objects of 10 kB); OFFSET 0 keeps the
-- subquery, so that a field used several times is still taken out once.
CREATE FUNCTION delta._item_fields(items delta.inform_item[])
    RETURNS TABLE (object_id text, object jsonb, external_created_at timestamptz,
        namespace text, metadata jsonb, tags text[], max_attempts integer, ord integer)
    LANGUAGE sql STABLE
    AS $$
    SELECT (s.t).object_id, (s.t).object, (s.t).external_created_at, (s.t).namespace,
           (s.t).metadata, (s.t).tags, (s.t).max_attempts, s.ord
    FROM (SELECT pg_catalog.unnest(items) AS t,
                 pg_catalog.generate_series(1, pg_catalog.cardinality(items)) AS ord) AS s
    OFFSET 0
$$;

-- The rows of delta.resource for items (checked) with the call's defaults,
-- in the items' order, each with its position in items (new_ord, not a
-- column of the table); max_attempts is the call's or the controller's.
-- Inlined into the statements that use them (no SET clause, STABLE); a
-- statement that does not read new_hash does not compute it.
CREATE FUNCTION delta._resource_rows(
    kind text, items delta.inform_item[], namespace text, metadata jsonb,
    tags text[], max_attempts integer)
    RETURNS TABLE (new_state delta.resource_state, new_max_attempts integer,
        new_external_created_at timestamptz, new_object_id text, new_kind text,
        new_namespace text, new_object jsonb, new_hash bytea, new_metadata jsonb,
        new_tags text[], new_due_at timestamptz, new_ord integer)
    LANGUAGE sql STABLE
    AS $$
    SELECT 'scheduled'::delta.resource_state,
           coalesce(t.max_attempts, _resource_rows.max_attempts),
           t.external_created_at, t.object_id, _resource_rows.kind,
           coalesce(t.namespace, _resource_rows.namespace), t.object,
           pg_catalog.sha256(pg_catalog.convert_to(t.object::text, 'UTF8')),
           coalesce(t.metadata, _resource_rows.metadata),
           coalesce(t.tags, _resource_rows.tags, '{}'),
           pg_catalog.now(), t.ord
    FROM delta._item_fields(_resource_rows.items) AS t
$$;

-- Inserts items none of which exists yet: a plain INSERT, without the
-- per-row pre-check, speculative insertion and confirmation of ON
-- CONFLICT.  An object_id that exists (or is given twice) raises 23505
-- and nothing is kept.  Returns the new rows' ids in the items' order:
-- the rows are inserted in that order, each taking the next value of the
-- identity's sequence, so sorting the ids puts them in that order too.
-- Only the ids come back: the rest of each row is known from its item
-- (delta._new_results), and an object of 10 kB returned by the INSERT
-- would be copied once more into the function's result.
CREATE FUNCTION delta._insert_new(
    kind text, items delta.inform_item[], namespace text, metadata jsonb,
    tags text[], max_attempts integer)
    RETURNS bigint[]
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
    AS $$
    WITH inserted AS (
        INSERT INTO delta.resource AS r (state, max_attempts, external_created_at,
            object_id, kind, namespace, object, hash, metadata, tags, due_at)
        SELECT n.new_state, n.new_max_attempts, n.new_external_created_at, n.new_object_id,
               n.new_kind, n.new_namespace, n.new_object, n.new_hash, n.new_metadata,
               n.new_tags, n.new_due_at
        FROM delta._resource_rows(kind, items, namespace, metadata, tags, max_attempts) AS n
        RETURNING r.id)
    SELECT array_agg(i.id ORDER BY i.id) FROM inserted AS i
$$;

-- What delta.inform_many returns for items that delta._insert_new has
-- just inserted (with the same arguments) as ids: the rows as inserted,
-- built from the items (created_at is the column's default, now()).
-- Inlined into the caller's RETURN QUERY (no SET clause, STABLE).
CREATE FUNCTION delta._new_results(
    kind text, items delta.inform_item[], ids bigint[], namespace text, metadata jsonb,
    tags text[], max_attempts integer)
    RETURNS SETOF delta.inform_result
    LANGUAGE sql STABLE
    AS $$
    SELECT _new_results.ids[n.new_ord], n.new_kind, n.new_object_id, n.new_namespace,
           n.new_state, 0, n.new_max_attempts, n.new_object, n.new_metadata, n.new_tags,
           pg_catalog.now(), n.new_external_created_at, false
    FROM delta._resource_rows(_new_results.kind, _new_results.items, _new_results.namespace,
        _new_results.metadata, _new_results.tags, _new_results.max_attempts) AS n
$$;

-- The core of delta.inform and delta.inform_many: checks every item, then
-- upserts them all in one statement and wakes the namespaces' workers.
CREATE FUNCTION delta._inform(
    kind text, items delta.inform_item[], namespace text, metadata jsonb,
    tags text[], max_attempts integer)
    RETURNS SETOF delta.inform_result
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    -- generic plans: a custom plan would carry the whole items array into
    -- each statement as a constant, copied several times per plan (issue 10)
    SET plan_cache_mode = force_generic_plan
    AS $$
#variable_conflict use_column
DECLARE
    ctl delta.controller;
    item delta.inform_item;
    ns text;
BEGIN
    -- The hot path: one item that passes every check, shown with one query.
    -- Anything else takes the full checks, which raise the precise error.
    item := _inform.items[1];
    ns := coalesce(item.namespace, _inform.namespace);
    SELECT c.* INTO ctl FROM delta.controller AS c
    WHERE c.kind = _inform.kind
      AND EXISTS (SELECT FROM delta.namespace AS n WHERE n.name = ns);
    IF ctl.kind IS NULL OR cardinality(_inform.items) <> 1
       OR octet_length(item.object_id) NOT BETWEEN 1 AND 255 IS NOT FALSE
       OR jsonb_typeof(item.object) IS DISTINCT FROM 'object'
       -- the call's own arguments too, even where the item overrides them:
       -- the same checks as for many items
       OR jsonb_typeof(_inform.metadata) IS DISTINCT FROM 'object'
       OR (item.metadata IS NOT NULL AND jsonb_typeof(item.metadata) <> 'object')
       OR _inform.max_attempts < 1 OR item.max_attempts < 1
       OR NOT isfinite(item.external_created_at)
       OR EXISTS (SELECT FROM unnest(coalesce(item.tags, _inform.tags)) AS tag
                  WHERE tag IS NULL OR octet_length(tag) > 255 OR tag !~ '^[\w][\w\-]+[\w]$')
    THEN
        ctl := delta._controller(_inform.kind);
        PERFORM delta._wake(n)
        FROM unnest(delta._item_namespaces(_inform.kind, _inform.items, _inform.namespace,
            _inform.metadata, _inform.tags, _inform.max_attempts)) AS n;
        PERFORM delta._check_distinct(_inform.items);
    ELSE
        PERFORM delta._wake(ns);
    END IF;

    RETURN QUERY
    INSERT INTO delta.resource AS r (state, max_attempts, external_created_at,
        object_id, kind, namespace, object, hash, metadata, tags, due_at)
    SELECT n.new_state, n.new_max_attempts, n.new_external_created_at, n.new_object_id,
           n.new_kind, n.new_namespace, n.new_object, n.new_hash, n.new_metadata,
           n.new_tags, n.new_due_at
    FROM delta._resource_rows(_inform.kind, _inform.items, _inform.namespace,
        _inform.metadata, _inform.tags, coalesce(_inform.max_attempts, ctl.max_attempts)) AS n
    ON CONFLICT (kind, object_id) DO UPDATE SET
        object = EXCLUDED.object,
        hash = EXCLUDED.hash,
        namespace = EXCLUDED.namespace,
        metadata = EXCLUDED.metadata,
        tags = EXCLUDED.tags,
        max_attempts = EXCLUDED.max_attempts,
        external_created_at = coalesce(EXCLUDED.external_created_at, r.external_created_at),
        generation = r.generation + 1,
        -- a running resource stays pending: its run ends in "scheduled"
        -- because the generation moved, and it runs again with this object
        state = CASE WHEN r.state = 'pending' THEN r.state ELSE 'scheduled' END,
        attempt = CASE WHEN r.state = 'pending' THEN r.attempt ELSE 0 END,
        due_at = CASE WHEN r.state = 'pending' THEN NULL ELSE now() END
    RETURNING r.id, r.kind, r.object_id, r.namespace, r.state, r.attempt,
              r.max_attempts, r.object, r.metadata, r.tags, r.created_at,
              r.external_created_at, (r.xmax::text <> '0');
END
$$;

CREATE FUNCTION delta.inform(
    kind text,
    object_id text,
    object jsonb,
    namespace text DEFAULT 'default',
    metadata jsonb DEFAULT '{}',
    tags text[] DEFAULT '{}',
    max_attempts integer DEFAULT NULL,
    external_created_at timestamptz DEFAULT NULL)
    RETURNS SETOF delta.inform_result
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    ROWS 1
    AS $$
BEGIN
    -- PL/pgSQL, not SQL: a SECURITY DEFINER SQL function is re-planned at
    -- every call, this one's plan is cached for the session
    RETURN QUERY SELECT * FROM delta._inform(inform.kind,
        ARRAY[ROW(inform.object_id, inform.object, inform.external_created_at,
                  NULL, NULL, NULL, NULL)::delta.inform_item],
        inform.namespace, inform.metadata, inform.tags, inform.max_attempts);
END
$$;

CREATE FUNCTION delta.inform_many(
    kind text,
    items delta.inform_item[],
    namespace text DEFAULT 'default',
    metadata jsonb DEFAULT '{}',
    tags text[] DEFAULT '{}',
    max_attempts integer DEFAULT NULL)
    RETURNS SETOF delta.inform_result
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- generic plans: a custom plan would carry the whole items array into
    -- each statement as a constant, copied several times per plan (issue 10)
    SET plan_cache_mode = force_generic_plan
    AS $$
DECLARE
    namespaces text[];
    attempts integer;
    ids bigint[];
BEGIN
    -- Many objects are mostly new ones: a plain INSERT of them all costs
    -- about a quarter less than the upsert.  If one exists already, or is
    -- given twice, the INSERT raises 23505, its subtransaction undoes it
    -- and the upsert does it all again.  The rows reach the result only
    -- once all of them are inserted, and from the items, not from the
    -- INSERT: each object is copied once, into this function's result.
    IF cardinality(items) > 1 THEN
        namespaces := delta._item_namespaces(kind, items, namespace, metadata, tags, max_attempts);
        attempts := coalesce(max_attempts, (delta._controller(kind)).max_attempts);
        BEGIN
            ids := delta._insert_new(kind, items, namespace, metadata, tags, attempts);
        EXCEPTION WHEN unique_violation THEN
            NULL;   -- the upsert below
        END;
        IF ids IS NOT NULL THEN
            PERFORM delta._wake(n) FROM unnest(namespaces) AS n;
            RETURN QUERY SELECT * FROM delta._new_results(kind, items, ids, namespace, metadata,
                tags, attempts);
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM delta._inform(kind, items, namespace, metadata, tags, max_attempts);
END
$$;

-- Raises unless items (a JSON array) holds only objects with no field but
-- those of delta.inform_item, naming the first unknown field.
CREATE FUNCTION delta._check_item_shape(items jsonb)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    unknown text;
BEGIN
    IF EXISTS (SELECT FROM jsonb_array_elements(items) AS e WHERE jsonb_typeof(e) <> 'object') THEN
        RAISE EXCEPTION 'argument "items" must be a JSON array of objects'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO unknown
    FROM jsonb_array_elements(items) AS e, jsonb_object_keys(e) AS k
    WHERE k NOT IN ('object_id', 'object', 'external_created_at', 'namespace',
                    'metadata', 'tags', 'max_attempts')
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'argument "items" has an unknown field "%"', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The fields are those of delta.inform_item: object_id, object, external_created_at, namespace, metadata, tags, max_attempts.';
    END IF;
END
$$;

-- Raises for the first field of items (a JSON array of objects) that does
-- not convert to its column of delta.inform_item, naming it; problem and
-- code are what the conversion of the whole array raised.  22008 (a time
-- out of range) stays 22008, as for external_created_at in every form.
CREATE FUNCTION delta._check_item_fields(items jsonb, problem text, code text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    field record;
BEGIN
    FOR field IN
        SELECT e.ord, f.key, f.value, format_type(a.atttypid, a.atttypmod) AS type
        FROM jsonb_array_elements(items) WITH ORDINALITY AS e(item, ord),
             jsonb_each(e.item) AS f
             JOIN pg_attribute AS a ON a.attrelid = 'delta.inform_item'::regclass AND a.attname = f.key
        ORDER BY e.ord, f.key
    LOOP
        BEGIN
            PERFORM jsonb_populate_record(NULL::delta.inform_item, jsonb_build_object(field.key, field.value));
        EXCEPTION WHEN data_exception THEN
            GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
            RAISE EXCEPTION 'field "%" of item % of argument "items" is not a valid %: %',
                field.key, field.ord, field.type, left(field.value::text, 100)
                USING ERRCODE = CASE WHEN code = '22008' THEN '22008' ELSE '22023' END,
                      DETAIL = problem,
                      HINT = 'Nothing was informed.';
        END;
    END LOOP;
    RAISE EXCEPTION 'argument "items" does not convert to delta.inform_item: %', problem
        USING ERRCODE = CASE WHEN code = '22008' THEN '22008' ELSE '22023' END;
END
$$;

-- The same, for items given as a JSON array of objects with the fields of
-- delta.inform_item.
CREATE FUNCTION delta.inform_many(
    kind text,
    items jsonb,
    namespace text DEFAULT 'default',
    metadata jsonb DEFAULT '{}',
    tags text[] DEFAULT '{}',
    max_attempts integer DEFAULT NULL)
    RETURNS SETOF delta.inform_result
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    -- generic plans: a custom plan would carry the whole items array into
    -- each statement as a constant, copied several times per plan (issue 10)
    SET plan_cache_mode = force_generic_plan
    AS $$
DECLARE
    converted record;
    problem text;
    code text;
BEGIN
    IF items IS NULL THEN
        RAISE EXCEPTION 'argument "items" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'argument "items" must be a JSON array of objects, not %', coalesce(jsonb_typeof(items), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One pass over the elements, each taken by its index (a set-returning
    -- function would copy them all into a tuplestore first): converted,
    -- and whether each is an object with no field but those of
    -- delta.inform_item (a misspelt field would otherwise be dropped
    -- without a word).
    BEGIN
        SELECT bool_or(jsonb_typeof(e.item) <> 'object')
                 OR bool_or(CASE WHEN jsonb_typeof(e.item) = 'object'
                                 THEN e.item - '{object_id, object, external_created_at, namespace, metadata, tags, max_attempts}'::text[] <> '{}'
                            END) AS misshapen,
               coalesce(array_agg(CASE WHEN jsonb_typeof(e.item) = 'object'
                                       THEN jsonb_populate_record(NULL::delta.inform_item, e.item) END),
                        '{}') AS items
        INTO converted
        FROM (SELECT items -> g AS item FROM generate_series(0, jsonb_array_length(items) - 1) AS g
              OFFSET 0) AS e;
    EXCEPTION WHEN data_exception THEN
        -- a field of the wrong type ("max_attempts": "x", "tags": "ab"):
        -- name the item and the field, with the code of a bad argument
        GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
        PERFORM delta._check_item_shape(items);
        PERFORM delta._check_item_fields(items, problem, code);
    END;
    IF converted.misshapen THEN
        PERFORM delta._check_item_shape(items);
    END IF;
    RETURN QUERY SELECT * FROM delta.inform_many(kind, converted.items,
        namespace, metadata, tags, max_attempts);
END
$$;

-- The resource (kind, object_id), locked for update; its arguments checked,
-- P0002 if there is none.  For invalidate and retry.
CREATE FUNCTION delta._resource_for_update(kind text, object_id text) RETURNS delta.resource
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.resource;
BEGIN
    PERFORM delta._controller(kind);
    PERFORM delta._check_name('object_id', object_id, 255);
    SELECT * INTO result FROM delta.resource AS r
    WHERE r.kind = _resource_for_update.kind AND r.object_id = _resource_for_update.object_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'resource "%" of kind "%" does not exist', object_id, kind
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;

CREATE FUNCTION delta.invalidate(kind text, object_id text) RETURNS delta.resource
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.resource;
BEGIN
    result := delta._resource_for_update(kind, object_id);
    IF result.state <> 'synced' THEN
        RAISE EXCEPTION 'resource "%" of kind "%" is %, not synced', object_id, kind, result.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Only a synced resource can be invalidated.';
    END IF;
    -- a new round of tries: the attempts of earlier rounds do not count
    UPDATE delta.resource AS r SET state = 'expired', due_at = now(), attempt = 0
    WHERE r.id = result.id
    RETURNING * INTO result;
    PERFORM delta._wake(result.namespace);
    RETURN result;
END
$$;
