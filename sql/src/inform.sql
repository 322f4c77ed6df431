----------------------------------------------------------------------------
-- Informing resources
----------------------------------------------------------------------------

-- Raises unless every item, with the call's defaults, can be informed:
-- nothing is written before all of them are known to be good.
CREATE FUNCTION delta._check_items(
    kind text, items delta.inform_item[], namespace text, metadata jsonb,
    tags text[], max_attempts integer)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    -- generic plans: a custom plan would carry the whole items array into
    -- each statement as a constant, copied several times per plan (issue 10)
    SET plan_cache_mode = force_generic_plan
    AS $$
#variable_conflict use_column
DECLARE
    bad record;
    ns text;
BEGIN
    PERFORM delta._controller(_check_items.kind);
    IF _check_items.items IS NULL THEN
        RAISE EXCEPTION 'argument "items" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF _check_items.metadata IS NULL THEN
        RAISE EXCEPTION 'argument "metadata" must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Use ''{}'' for no metadata.';
    END IF;
    IF jsonb_typeof(_check_items.metadata) <> 'object' THEN
        RAISE EXCEPTION 'argument "metadata" must be a JSON object, not %', _check_items.metadata::text
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF _check_items.max_attempts < 1 THEN
        RAISE EXCEPTION 'argument "max_attempts" must be at least 1, not %', _check_items.max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The first bad item, if any, with the reason it is bad.
    SELECT i.ord, i.object_id, i.problem, i.code INTO bad
    FROM (SELECT t.ord, t.object_id,
                 CASE
                   WHEN t.object_id IS NULL THEN 'argument "object_id" must not be null'
                   WHEN t.object_id = '' THEN 'argument "object_id" must not be empty'
                   WHEN octet_length(t.object_id) > 255 THEN format('argument "object_id" is too long (%s bytes, at most 255)', octet_length(t.object_id))
                   WHEN t.object IS NULL THEN format('argument "object" of object_id "%s" must not be null', t.object_id)
                   WHEN jsonb_typeof(t.object) <> 'object' THEN format('argument "object" of object_id "%s" must be a JSON object, not a JSON %s', t.object_id, jsonb_typeof(t.object))
                   WHEN t.metadata IS NOT NULL AND jsonb_typeof(t.metadata) <> 'object' THEN format('argument "metadata" of object_id "%s" must be a JSON object', t.object_id)
                   WHEN t.max_attempts < 1 THEN format('argument "max_attempts" of object_id "%s" must be at least 1, not %s', t.object_id, t.max_attempts)
                   WHEN NOT isfinite(t.external_created_at) THEN format('argument "external_created_at" of object_id "%s" must be a finite time, not %s', t.object_id, t.external_created_at)
                 END AS problem,
                 CASE
                   WHEN t.object_id IS NULL OR t.object IS NULL THEN 'null_value_not_allowed'
                   WHEN octet_length(t.object_id) > 255 THEN 'string_data_right_truncation'
                   WHEN t.object_id = '' OR jsonb_typeof(t.object) <> 'object' OR t.max_attempts < 1
                        OR (t.metadata IS NOT NULL AND jsonb_typeof(t.metadata) <> 'object') THEN 'invalid_parameter_value'
                   WHEN NOT isfinite(t.external_created_at) THEN 'datetime_field_overflow'
                   ELSE 'invalid_parameter_value'
                 END AS code
          FROM unnest(_check_items.items) WITH ORDINALITY AS t(object_id, object, external_created_at, namespace, metadata, tags, max_attempts, ord)) AS i
    WHERE i.problem IS NOT NULL
    ORDER BY i.ord
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%', bad.problem USING ERRCODE = bad.code,
            DETAIL = format('Item %s of %s is invalid; nothing was informed.', bad.ord, cardinality(_check_items.items));
    END IF;

    -- Tags: the item's own, else the call's; each must match the pattern.
    SELECT t.object_id, tag INTO bad
    FROM unnest(_check_items.items) AS t, unnest(coalesce(t.tags, _check_items.tags)) AS tag
    WHERE tag IS NULL OR octet_length(tag) > 255 OR tag !~ '^[\w][\w\-]+[\w]$'
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'argument "tags" contains an invalid tag "%"', coalesce(bad.tag, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Tags must match ^[\w][\w\-]+[\w]$ and have at most 255 bytes (object_id "%s").', bad.object_id);
    END IF;

    SELECT t.object_id INTO bad FROM unnest(_check_items.items) AS t
    GROUP BY t.object_id HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'argument "items" contains object_id "%" more than once', bad.object_id
            USING ERRCODE = 'cardinality_violation';
    END IF;

    FOR ns IN
        SELECT DISTINCT coalesce(t.namespace, _check_items.namespace) FROM unnest(_check_items.items) AS t
    LOOP
        PERFORM delta._check_namespace(ns);
    END LOOP;
END
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
        PERFORM delta._check_items(_inform.kind, _inform.items, _inform.namespace,
            _inform.metadata, _inform.tags, _inform.max_attempts);
        FOR ns IN
            SELECT DISTINCT coalesce(t.namespace, _inform.namespace) FROM unnest(_inform.items) AS t
        LOOP
            PERFORM delta._wake(ns);
        END LOOP;
    ELSE
        PERFORM delta._wake(ns);
    END IF;

    RETURN QUERY
    INSERT INTO delta.resource AS r (state, max_attempts, external_created_at,
        object_id, kind, namespace, object, hash, metadata, tags, due_at)
    SELECT 'scheduled',
           coalesce(t.max_attempts, _inform.max_attempts, ctl.max_attempts),
           t.external_created_at, t.object_id, _inform.kind,
           coalesce(t.namespace, _inform.namespace), t.object,
           sha256(convert_to(t.object::text, 'UTF8')),
           coalesce(t.metadata, _inform.metadata),
           coalesce(t.tags, _inform.tags, '{}'),
           now()
    FROM unnest(_inform.items) AS t
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
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT * FROM delta._inform(kind, items, namespace, metadata, tags, max_attempts)
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
    unknown text;
    converted delta.inform_item[];
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
    IF EXISTS (SELECT FROM jsonb_array_elements(items) AS e WHERE jsonb_typeof(e) <> 'object') THEN
        RAISE EXCEPTION 'argument "items" must be a JSON array of objects'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a misspelt field would otherwise be dropped without a word
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
    BEGIN
        converted := ARRAY(SELECT i FROM jsonb_populate_recordset(NULL::delta.inform_item, items) AS i);
    EXCEPTION WHEN data_exception THEN
        -- a field of the wrong type ("max_attempts": "x", "tags": "ab"):
        -- name the item and the field, with the code of a bad argument
        GET STACKED DIAGNOSTICS problem = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
        PERFORM delta._check_item_fields(items, problem, code);
    END;
    RETURN QUERY SELECT * FROM delta._inform(kind, converted,
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
