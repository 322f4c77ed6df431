----------------------------------------------------------------------------
-- Argument checks shared by the SQL functions
----------------------------------------------------------------------------

-- Raises unless value is a usable name of at most max_length characters.
CREATE FUNCTION delta._check_name(argument text, value text, max_length integer)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be null', argument
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF value = '' THEN
        RAISE EXCEPTION 'argument "%" must not be empty', argument
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- bytes, as for PostgreSQL identifiers: names are kept in shared memory
    IF octet_length(value) > max_length THEN
        RAISE EXCEPTION 'argument "%" is too long (% bytes)', argument, octet_length(value)
            USING ERRCODE = 'string_data_right_truncation',
                  DETAIL = format('The value starts with "%s".', left(value, 40)),
                  HINT = format('"%s" can have at most %s bytes.', argument, max_length);
    END IF;
END
$$;

-- The controller of kind, or an error naming the kind.
CREATE FUNCTION delta._controller(kind text) RETURNS delta.controller
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    c delta.controller;
BEGIN
    PERFORM delta._check_name('kind', kind, 63);
    SELECT * INTO c FROM delta.controller AS ctl WHERE ctl.kind = _controller.kind;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no controller is registered for kind "%"', kind
            USING ERRCODE = 'undefined_object',
                  HINT = 'Register one with delta.register_controller().';
    END IF;
    RETURN c;
END
$$;

-- Raises unless namespace exists.
CREATE FUNCTION delta._check_namespace(namespace text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM delta._check_name('namespace', namespace, 63);
    PERFORM FROM delta.namespace AS n WHERE n.name = _check_namespace.namespace;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'namespace "%" does not exist', namespace
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with delta.create_namespace().';
    END IF;
END
$$;

-- Raises unless the settings of a namespace are valid; nulls are allowed.
CREATE FUNCTION delta._check_namespace_settings(
    max_workers integer, resource_expiry interval, synced_retention interval,
    degraded_retention interval, deleted_retention interval) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    setting record;
BEGIN
    IF max_workers < 0 OR max_workers > 1024 THEN
        RAISE EXCEPTION 'argument "max_workers" must be between 0 and 1024, not %', max_workers
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR setting IN
        SELECT * FROM (VALUES ('resource_expiry', resource_expiry),
                              ('synced_retention', synced_retention),
                              ('degraded_retention', degraded_retention),
                              ('deleted_retention', deleted_retention)) AS s(name, value)
        WHERE s.value <= interval '0' OR s.value > interval '100 years'
    LOOP
        RAISE EXCEPTION 'argument "%" must be a positive interval of at most 100 years, not "%"', setting.name, setting.value
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use NULL for "never".';
    END LOOP;
END
$$;

-- now() - age, saturating: an age beyond the range of timestamptz gives
-- -infinity ("keep everything"), a negative one now().  Workers compute
-- horizons of stored retentions with it, which then never overflow.
CREATE FUNCTION delta._ago(age interval) RETURNS timestamptz
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE WHEN age IS NULL THEN NULL
                WHEN extract(epoch FROM age) <= 0 THEN now()
                WHEN extract(epoch FROM age) > 100000000000 THEN '-infinity'::timestamptz
                ELSE now() - age END
$$;

-- then + step, saturating at infinity: a huge stored interval means "never".
CREATE FUNCTION delta._later(then_ timestamptz, step interval) RETURNS timestamptz
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE WHEN then_ IS NULL OR step IS NULL THEN NULL
                WHEN NOT isfinite(then_) THEN then_
                WHEN extract(epoch FROM then_) + extract(epoch FROM step) > 9000000000000 THEN 'infinity'::timestamptz
                WHEN extract(epoch FROM then_) + extract(epoch FROM step) < -200000000000 THEN '-infinity'::timestamptz
                ELSE then_ + step END
$$;
