----------------------------------------------------------------------------
-- The launcher follows namespace changes, whoever makes them
----------------------------------------------------------------------------

CREATE TRIGGER namespace_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON delta.namespace
    FOR EACH STATEMENT EXECUTE FUNCTION delta._namespaces_changed();

INSERT INTO delta.namespace (name) VALUES ('default');

INSERT INTO delta.installation DEFAULT VALUES;

----------------------------------------------------------------------------
-- Restores (README "Dump and restore"): rows copied in keep working
----------------------------------------------------------------------------

CREATE TRIGGER namespace_default_inserted
    BEFORE INSERT ON delta.namespace
    FOR EACH ROW WHEN (NEW.name OPERATOR(pg_catalog.=) 'default')
    EXECUTE FUNCTION delta._namespace_default_inserted();

-- the WHEN clause keeps the trigger off the workers' event inserts
CREATE TRIGGER event_restored
    BEFORE INSERT ON delta.event
    FOR EACH ROW WHEN (NEW.xid OPERATOR(pg_catalog.<>) pg_catalog.pg_current_xact_id())
    EXECUTE FUNCTION delta._event_restored();

CREATE TRIGGER subscription_inserted
    BEFORE INSERT ON delta.subscription
    FOR EACH ROW EXECUTE FUNCTION delta._subscription_inserted();

-- a controller's functions cannot be dropped (sql/src/operations.sql)
CREATE EVENT TRIGGER delta_guard_drop ON sql_drop EXECUTE FUNCTION delta._guard_drop();
