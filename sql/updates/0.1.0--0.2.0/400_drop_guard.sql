-- 400: dropping a function a controller uses is refused by an event
-- trigger.  Its function is created here with an empty body, so the trigger
-- can be; the re-run of sql/src/operations.sql gives it its real body.
CREATE FUNCTION delta._guard_drop() RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$ BEGIN END $$;
CREATE EVENT TRIGGER delta_guard_drop ON sql_drop EXECUTE FUNCTION delta._guard_drop();
