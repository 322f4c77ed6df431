----------------------------------------------------------------------------
-- Namespaces
----------------------------------------------------------------------------

-- Tells the caller when a namespace asks for more workers than the server
-- runs at most (delta.max_workers, a server start setting): only the
-- server log would say it otherwise.
CREATE FUNCTION delta._notice_worker_cap(name text, max_workers integer) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    cap integer := current_setting('delta.max_workers', true)::integer;
BEGIN
    IF max_workers > cap THEN
        RAISE NOTICE 'namespace "%" asks for % workers, but at most % run in this server (delta.max_workers)',
            name, max_workers, cap
            USING HINT = 'Raise delta.max_workers (and max_worker_processes) and restart the server.';
    END IF;
END
$$;

CREATE FUNCTION delta.create_namespace(
    name text,
    max_workers integer DEFAULT 1,
    resource_expiry interval DEFAULT NULL,
    synced_retention interval DEFAULT coalesce(pg_catalog.current_setting('delta.synced_retention', true), '24 hours')::interval,
    degraded_retention interval DEFAULT coalesce(pg_catalog.current_setting('delta.degraded_retention', true), '24 hours')::interval,
    deleted_retention interval DEFAULT coalesce(pg_catalog.current_setting('delta.deleted_retention', true), '24 hours')::interval)
    RETURNS delta.namespace
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.namespace;
BEGIN
    PERFORM delta._check_name('name', name, 63);
    IF max_workers IS NULL THEN
        RAISE EXCEPTION 'argument "max_workers" must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM delta._check_namespace_settings(max_workers, resource_expiry,
        synced_retention, degraded_retention, deleted_retention);
    INSERT INTO delta.namespace AS n (name, max_workers, resource_expiry,
        synced_retention, degraded_retention, deleted_retention)
    VALUES (create_namespace.name, create_namespace.max_workers, create_namespace.resource_expiry,
        create_namespace.synced_retention, create_namespace.degraded_retention,
        create_namespace.deleted_retention)
    ON CONFLICT DO NOTHING
    RETURNING * INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'namespace "%" already exists', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Change it with delta.alter_namespace().';
    END IF;
    PERFORM delta._notice_worker_cap(name, max_workers);
    RETURN result;
END
$$;

CREATE FUNCTION delta.alter_namespace(
    name text,
    max_workers integer DEFAULT NULL,
    resource_expiry interval DEFAULT NULL,
    synced_retention interval DEFAULT NULL,
    degraded_retention interval DEFAULT NULL,
    deleted_retention interval DEFAULT NULL,
    paused boolean DEFAULT NULL)
    RETURNS delta.namespace
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    result delta.namespace;
BEGIN
    PERFORM delta._check_name('name', name, 63);
    PERFORM delta._check_namespace(name);
    PERFORM delta._check_namespace_settings(max_workers, resource_expiry,
        synced_retention, degraded_retention, deleted_retention);
    UPDATE delta.namespace AS n SET
        max_workers = coalesce(alter_namespace.max_workers, n.max_workers),
        resource_expiry = coalesce(alter_namespace.resource_expiry, n.resource_expiry),
        synced_retention = coalesce(alter_namespace.synced_retention, n.synced_retention),
        degraded_retention = coalesce(alter_namespace.degraded_retention, n.degraded_retention),
        deleted_retention = coalesce(alter_namespace.deleted_retention, n.deleted_retention),
        paused = coalesce(alter_namespace.paused, n.paused)
    WHERE n.name = alter_namespace.name
    RETURNING * INTO result;
    PERFORM delta._notice_worker_cap(name, alter_namespace.max_workers);
    RETURN result;
END
$$;

CREATE FUNCTION delta.drop_namespace(name text, force boolean DEFAULT false)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    held bigint;
BEGIN
    PERFORM delta._check_name('name', name, 63);
    PERFORM delta._check_namespace(name);
    IF name = 'default' THEN
        RAISE EXCEPTION 'namespace "default" cannot be dropped'
            USING ERRCODE = 'object_in_use',
                  HINT = 'Pause it with delta.alter_namespace(''default'', paused => true).';
    END IF;
    PERFORM FROM delta.namespace AS n WHERE n.name = drop_namespace.name FOR UPDATE;
    IF coalesce(force, false) THEN
        DELETE FROM delta.resource AS r WHERE r.namespace = drop_namespace.name;
    ELSE
        SELECT count(*) INTO held FROM delta.resource AS r WHERE r.namespace = drop_namespace.name;
        IF held > 0 THEN
            RAISE EXCEPTION 'namespace "%" still holds % resources', name, held
                USING ERRCODE = 'dependent_objects_still_exist',
                      HINT = 'Use force => true to delete them with the namespace.';
        END IF;
    END IF;
    DELETE FROM delta.namespace AS n WHERE n.name = drop_namespace.name;
END
$$;

-- BEFORE INSERT of namespace 'default', which CREATE EXTENSION has made
-- already: the inserted settings replace its own.  This is how pg_restore
-- brings back the dumped settings of 'default' without a duplicate key.
-- create_namespace('default') still fails (its error rolls this back).
CREATE FUNCTION delta._namespace_default_inserted() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    UPDATE delta.namespace AS n SET
        max_workers = NEW.max_workers,
        resource_expiry = NEW.resource_expiry,
        synced_retention = NEW.synced_retention,
        degraded_retention = NEW.degraded_retention,
        deleted_retention = NEW.deleted_retention,
        paused = NEW.paused,
        created_at = NEW.created_at
    WHERE n.name = 'default';
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
