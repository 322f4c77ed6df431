-- delta example: a work function written in C.
--
-- Build and install the module first (as a user who can write to
-- PostgreSQL's lib directory):
--     make -C examples/c PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install
-- then, as a superuser (LANGUAGE c functions need one), in a database of a
-- server with shared_preload_libraries = 'delta':
--     psql -f examples/c/example.sql
--
-- Resources of kind 'checksum' carry objects like {"data": "some text"}.
-- Working one stores the SHA-256 of its "data" in example_c.checksums.
-- The file can be run again: it replaces what it created.

CREATE EXTENSION IF NOT EXISTS delta;

CREATE SCHEMA IF NOT EXISTS example_c;

-- What the work function produces: one row per object, upserted, so running
-- a resource twice (a retry, an update) leaves one row ("runs" counts).
CREATE TABLE IF NOT EXISTS example_c.checksums (
    object_id    text PRIMARY KEY,
    sha256       bytea NOT NULL,
    bytes        integer NOT NULL,
    attempt      integer NOT NULL,     -- delta's attempt counter of that run
    runs         integer NOT NULL DEFAULT 1,
    computed_at  timestamptz NOT NULL DEFAULT now()
);

-- A work function takes one argument of type delta.resource and returns
-- void.  The C code reads the composite's fields by name
-- (GetAttributeByName) and raises with ereport(ERROR, ...) on bad input.
-- STRICT: delta never passes NULL, and C code should not have to check.
CREATE OR REPLACE FUNCTION example_c.checksum_work(resource delta.resource)
    RETURNS void
    LANGUAGE c STRICT
    AS 'delta_example', 'delta_example_checksum';

-- One controller per kind.  max_attempts: a bad object is tried 3 times,
-- with back-off (backoff_base * 2^(attempt-1), jittered), then left
-- degraded.  work_timeout: a run taking longer is cancelled and counts as a
-- failure.  replace => true makes this file re-runnable.
SELECT kind, work, max_attempts
FROM delta.register_controller(
    kind         => 'checksum',
    work         => 'example_c.checksum_work(delta.resource)',
    max_attempts => 3,
    work_timeout => '10 seconds',
    replace      => true);

-- Try it:
--   SELECT state FROM delta.inform('checksum', 'greeting', '{"data": "hello"}');
--   SELECT state FROM delta.inform('checksum', 'broken', '{"data": 42}');
--   -- a moment later:
--   SELECT c.object_id, encode(c.sha256, 'hex') = encode(sha256('hello'), 'hex') AS same_as_sql, c.bytes
--   FROM example_c.checksums AS c;
--   SELECT object_id, state, attempt, errors -> -1 ->> 'error' AS last_error,
--          errors -> -1 ->> 'sqlstate' AS sqlstate
--   FROM delta.resource WHERE kind = 'checksum';
