-- Objects of the benchmark, in database "bench" of the throw-away cluster.
CREATE EXTENSION delta;
CREATE SCHEMA bench;

-- The raw baselines' tables: delta.resource's columns, defaults, identity,
-- constraints and indexes (the partial index on due rows included).
CREATE TABLE bench.queue (LIKE delta.resource INCLUDING ALL);
CREATE TABLE bench.upsert (LIKE delta.resource INCLUDING ALL);
CREATE TABLE bench.bulk (LIKE delta.resource INCLUDING ALL);

-- Work functions: a no-op, and one that records when it started.
CREATE FUNCTION bench.noop(r delta.resource) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE TABLE bench.pickup (object_id text, started_at timestamptz);
CREATE FUNCTION bench.pickup(r delta.resource) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO bench.pickup VALUES (r.object_id, clock_timestamp()) $$;
-- What the latency client saw: tag 'b' = just before its commit, 'a' = just
-- after (the next statement of the same session).
CREATE TABLE bench.client_time (tag text, object_id text, at timestamptz);

SELECT kind FROM delta.register_controller('noop', 'bench.noop(delta.resource)');
SELECT kind FROM delta.register_controller('e2e', 'bench.noop(delta.resource)');
SELECT kind FROM delta.register_controller('scale', 'bench.noop(delta.resource)');
SELECT kind FROM delta.register_controller('lat', 'bench.pickup(delta.resource)');
