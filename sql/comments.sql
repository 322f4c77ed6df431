--
-- Every public object of the extension has a comment (sql/src/comments.sql):
-- the schema, its tables and views, types and the functions not named _*.
--
SELECT o.kind, o.name
FROM (SELECT 'schema' AS kind, 'delta' AS name, 'delta'::regnamespace::oid AS objoid, 'pg_namespace'::regclass AS classoid
      UNION ALL
      SELECT 'function', p.oid::regprocedure::text, p.oid, 'pg_proc'::regclass
      FROM pg_proc AS p WHERE p.pronamespace = 'delta'::regnamespace AND p.proname !~ '^_'
      UNION ALL
      SELECT 'relation', c.oid::regclass::text, c.oid, 'pg_class'::regclass
      FROM pg_class AS c WHERE c.relnamespace = 'delta'::regnamespace AND c.relkind IN ('r', 'v', 'm')
      UNION ALL
      SELECT 'type', t.oid::regtype::text, t.oid, 'pg_type'::regclass
      FROM pg_type AS t WHERE t.typnamespace = 'delta'::regnamespace
        AND (t.typtype = 'e' OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class AS c WHERE c.oid = t.typrelid) = 'c'))
     ) AS o
WHERE obj_description(o.objoid, o.classoid::regclass::name) IS NULL
ORDER BY 1, 2;

-- and there are comments to check
SELECT count(*) >= 20 AS commented FROM pg_description AS d
JOIN pg_proc AS p ON d.classoid = 'pg_proc'::regclass AND d.objoid = p.oid
WHERE p.pronamespace = 'delta'::regnamespace;
