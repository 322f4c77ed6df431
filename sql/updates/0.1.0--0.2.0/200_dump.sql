-- 200: a dump restores into a working delta (README "Dump and restore"):
-- the marker of the installing transaction, and the triggers that fit
-- restored rows in.  The trigger functions are created empty here; the
-- re-run of sql/src/ below gives them their bodies.
CREATE TABLE delta.installation (
    xid  xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);
INSERT INTO delta.installation DEFAULT VALUES;

CREATE FUNCTION delta._namespace_default_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE FUNCTION delta._event_restored() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE FUNCTION delta._subscription_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;

CREATE TRIGGER namespace_default_inserted
    BEFORE INSERT ON delta.namespace
    FOR EACH ROW WHEN (NEW.name OPERATOR(pg_catalog.=) 'default')
    EXECUTE FUNCTION delta._namespace_default_inserted();
CREATE TRIGGER event_restored
    BEFORE INSERT ON delta.event
    FOR EACH ROW WHEN (NEW.xid OPERATOR(pg_catalog.<>) pg_catalog.pg_current_xact_id())
    EXECUTE FUNCTION delta._event_restored();
CREATE TRIGGER subscription_inserted
    BEFORE INSERT ON delta.subscription
    FOR EACH ROW EXECUTE FUNCTION delta._subscription_inserted();
