----------------------------------------------------------------------------
-- The launcher follows namespace changes, whoever makes them
----------------------------------------------------------------------------

CREATE TRIGGER namespace_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON delta.namespace
    FOR EACH STATEMENT EXECUTE FUNCTION delta._namespaces_changed();

INSERT INTO delta.namespace (name) VALUES ('default');

CREATE EVENT TRIGGER delta_guard_drop ON sql_drop EXECUTE FUNCTION delta._guard_drop();
