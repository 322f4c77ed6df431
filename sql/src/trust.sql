-- The schema delta must be one that no non-superuser can change: the
-- workers run its functions as the bootstrap superuser.  CREATE EXTENSION
-- reuses a schema of that name if it exists, so refuse one that a
-- non-superuser owns (e.g. made by a database owner beforehand).
DO $trust$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_namespace AS n
               JOIN pg_catalog.pg_roles AS o ON o.oid OPERATOR(pg_catalog.=) n.nspowner
               WHERE n.nspname OPERATOR(pg_catalog.=) 'delta' AND NOT o.rolsuper) THEN
        RAISE EXCEPTION 'schema "delta" is owned by a role that is not a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'delta''s background workers run the functions of schema "delta" as a superuser, so its owner could run anything as a superuser.',
                  HINT = 'Drop or rename that schema (or make a superuser its owner) and run CREATE EXTENSION delta again; CREATE EXTENSION creates the schema.';
    END IF;
END
$trust$;
