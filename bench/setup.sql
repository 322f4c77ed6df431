-- Objects of the benchmark, in database "bench" of the throw-away cluster.
CREATE EXTENSION delta;
CREATE SCHEMA bench;

-- The raw baselines' tables: delta.resource's columns, defaults, identity,
-- constraints and indexes (the partial index on due rows included).
CREATE TABLE bench.queue (LIKE delta.resource INCLUDING ALL);
CREATE TABLE bench.upsert (LIKE delta.resource INCLUDING ALL);
CREATE TABLE bench.bulk (LIKE delta.resource INCLUDING ALL);
-- The leases of baseline (d) (queue_lease_100.sql): one row per batch.
CREATE TABLE bench.lease (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    holder_pid  integer NOT NULL,
    started_at  timestamptz NOT NULL,
    ids         bigint[] NOT NULL
);

-- Work functions: a no-op, and one that records when it started.
CREATE FUNCTION bench.noop(r delta.resource) RETURNS void LANGUAGE sql AS 'SELECT';
-- The same no-op in PL/pgSQL, and in C (bench/c, which bench/run builds and
-- installs with delta).
CREATE FUNCTION bench.plpgsql_noop(r delta.resource) RETURNS void LANGUAGE plpgsql AS 'BEGIN END';
CREATE FUNCTION bench.c_noop(r delta.resource) RETURNS void
    LANGUAGE c AS '$libdir/delta_bench', 'delta_bench_noop';
CREATE TABLE bench.pickup (object_id text, started_at timestamptz);
CREATE FUNCTION bench.pickup(r delta.resource) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO bench.pickup VALUES (r.object_id, clock_timestamp()) $$;
-- What the latency client saw: tag 'b' = just before its commit, 'a' = just
-- after (the next statement of the same session).
CREATE TABLE bench.client_time (tag text, object_id text, at timestamptz);

-- Slow work: a run of 50 ms.
CREATE FUNCTION bench.slow(r delta.resource) RETURNS void LANGUAGE sql AS 'SELECT pg_sleep(0.05)';
-- Lateness: each resource's first run snoozes for object.delay_ms and
-- records when it ended (so the rerun is due at ended + delay); the rerun
-- records when it started.
CREATE TABLE bench.late (object_id text, run integer, at timestamptz, delay_ms integer);
CREATE FUNCTION bench.late(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    delay_ms integer := (r.object ->> 'delay_ms')::integer;
BEGIN
    IF NOT EXISTS (SELECT FROM bench.late AS l WHERE l.object_id = r.object_id) THEN
        PERFORM delta.resource_snooze(make_interval(secs => delay_ms / 1000.0));
        INSERT INTO bench.late VALUES (r.object_id, 1, clock_timestamp(), delay_ms);
    ELSE
        INSERT INTO bench.late VALUES (r.object_id, 2, clock_timestamp(), delay_ms);
    END IF;
END
$$;

SELECT kind FROM delta.register_controller('noop', 'bench.noop(delta.resource)');
SELECT kind FROM delta.register_controller('noop_plpgsql', 'bench.plpgsql_noop(delta.resource)');
SELECT kind FROM delta.register_controller('noop_c', 'bench.c_noop(delta.resource)');
SELECT kind FROM delta.register_controller('slow', 'bench.slow(delta.resource)');
SELECT kind FROM delta.register_controller('late', 'bench.late(delta.resource)');
SELECT kind FROM delta.register_controller('e2e', 'bench.noop(delta.resource)');
SELECT kind FROM delta.register_controller('scale', 'bench.noop(delta.resource)');
SELECT kind FROM delta.register_controller('lat', 'bench.pickup(delta.resource)');
