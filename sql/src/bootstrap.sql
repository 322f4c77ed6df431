----------------------------------------------------------------------------
-- The launcher follows namespace changes, whoever makes them
----------------------------------------------------------------------------

CREATE TRIGGER namespace_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON delta.namespace
    FOR EACH STATEMENT EXECUTE FUNCTION delta._namespaces_changed();

INSERT INTO delta.namespace (name) VALUES ('default');
