--
-- Informing resources: delta.inform, delta.inform_many (items as
-- delta.inform_item[] and as jsonb) and delta.invalidate, with every kind of
-- bad argument.  The resources live in namespaces without workers, so
-- nothing changes their state behind the test's back.
--
\set SHOW_CONTEXT never

-- what the resources of the test look like
CREATE FUNCTION pg_temp.resources()
    RETURNS TABLE (kind text, object_id text, namespace text, state delta.resource_state,
                   attempt integer, max_attempts integer, generation bigint, object jsonb,
                   metadata jsonb, tags text[])
    LANGUAGE sql AS $$
    -- long values abbreviated: their first 5 characters and their length
    SELECT r.kind,
           CASE WHEN length(r.object_id) > 40
                THEN format('%s...(%s)', left(r.object_id, 5), length(r.object_id))
                ELSE r.object_id END,
           r.namespace, r.state, r.attempt, r.max_attempts,
           r.generation, r.object, r.metadata,
           ARRAY(SELECT CASE WHEN length(t) > 40 THEN format('%s...(%s)', left(t, 5), length(t)) ELSE t END
                 FROM unnest(r.tags) AS t)
    FROM delta.resource AS r WHERE r.kind LIKE 'regress_inform%'
    ORDER BY r.kind, r.object_id
$$;

CREATE FUNCTION pg_temp.resource_count() RETURNS bigint
    LANGUAGE sql AS $$
    SELECT count(*) FROM delta.resource AS r WHERE r.kind LIKE 'regress_inform%'
$$;

SELECT name FROM delta.create_namespace('regress_inform', max_workers => 0);
SELECT name FROM delta.create_namespace('regress_inform_b', max_workers => 0);
CREATE FUNCTION regress_inform_work(resource delta.resource) RETURNS void
    LANGUAGE sql AS 'SELECT';
SELECT kind, max_attempts FROM delta.register_controller('regress_inform', 'regress_inform_work(delta.resource)', max_attempts => 5);
SELECT kind, max_attempts FROM delta.register_controller('regress_inform_other', 'regress_inform_work(delta.resource)');

--
-- inform: a new resource is inserted scheduled and due now
--
SELECT kind, object_id, namespace, state, attempt, max_attempts, object, metadata,
       tags, external_created_at, already_exists, id IS NOT NULL AS has_id,
       created_at IS NOT NULL AS has_created_at
FROM delta.inform('regress_inform', 'a', '{"name": "a", "n": 1}', namespace => 'regress_inform');
SELECT state, attempt, generation, due_at IS NOT NULL AND due_at <= now() AS due_now,
       synced_at, attempted_at, holder_pid, holder_started_at, errors,
       hash = sha256(convert_to(object::text, 'UTF8')) AS hash_of_object,
       octet_length(hash) AS hash_bytes
FROM delta.resource WHERE kind = 'regress_inform' AND object_id = 'a';

-- informing it again updates it: already_exists, a new generation, a new hash
SELECT object_id, state, attempt, object, already_exists
FROM delta.inform('regress_inform', 'a', '{"name": "a", "n": 2}', namespace => 'regress_inform');
SELECT generation, object, hash = sha256(convert_to('{"n": 2, "name": "a"}', 'UTF8')) AS hash_of_object
FROM delta.resource WHERE kind = 'regress_inform' AND object_id = 'a';
-- the same object again still counts as a new generation
SELECT already_exists FROM delta.inform('regress_inform', 'a', '{"name": "a", "n": 2}', namespace => 'regress_inform');
SELECT generation FROM delta.resource WHERE kind = 'regress_inform' AND object_id = 'a';

-- a resource that failed, was synced, degraded or deleted is scheduled
-- again, due now, with its attempts reset
SELECT count(*) FROM delta.inform_many('regress_inform',
    '[{"object_id": "failed", "object": {}}, {"object_id": "synced", "object": {}},
      {"object_id": "degraded", "object": {}}, {"object_id": "deleted", "object": {}}]'::jsonb,
    namespace => 'regress_inform');
UPDATE delta.resource SET state = object_id::delta.resource_state, attempt = 3,
    due_at = CASE object_id WHEN 'failed' THEN now() + interval '1 hour' END,
    synced_at = CASE object_id WHEN 'synced' THEN now() END
WHERE kind = 'regress_inform' AND object_id IN ('failed', 'synced', 'degraded', 'deleted');
SELECT object_id, state, attempt, already_exists
FROM delta.inform_many('regress_inform',
    '[{"object_id": "failed", "object": {"v": 1}}, {"object_id": "synced", "object": {"v": 1}},
      {"object_id": "degraded", "object": {"v": 1}}, {"object_id": "deleted", "object": {"v": 1}}]'::jsonb,
    namespace => 'regress_inform')
ORDER BY object_id;
SELECT object_id, state, attempt, due_at <= now() AS due_now
FROM delta.resource WHERE kind = 'regress_inform' AND object_id IN ('failed', 'synced', 'degraded', 'deleted')
ORDER BY object_id;

--
-- defaults: namespace 'default', metadata {}, tags {}, max_attempts of the
-- controller.  In one transaction that removes the resource again, so the
-- worker of 'default' never sees it.
--
BEGIN;
SELECT kind, object_id, namespace, state, max_attempts, metadata, tags, already_exists
FROM delta.inform('regress_inform', 'in-default', '{}');
SELECT namespace, max_attempts, metadata, tags, external_created_at
FROM delta.resource WHERE kind = 'regress_inform' AND object_id = 'in-default';
ROLLBACK;

-- every argument given
SELECT kind, object_id, namespace, state, max_attempts, object, metadata, tags,
       external_created_at, already_exists
FROM delta.inform(kind => 'regress_inform', object_id => 'all', object => '{"x": [1, 2]}',
    namespace => 'regress_inform_b', metadata => '{"source": "test"}',
    tags => '{abc, a-b, x_y, A12}', max_attempts => 2,
    external_created_at => '2024-01-02 03:04:05+00');
-- informing again moves it to another namespace, replaces metadata, tags,
-- max_attempts; keeps external_created_at when none is given
SELECT namespace, metadata, tags, max_attempts, external_created_at, already_exists
FROM delta.inform('regress_inform', 'all', '{"x": [1, 2]}', namespace => 'regress_inform');
-- max_attempts NULL: the controller's
SELECT max_attempts FROM delta.inform('regress_inform', 'all', '{}', namespace => 'regress_inform', max_attempts => NULL);
-- tags NULL: none
SELECT tags FROM delta.inform('regress_inform', 'all', '{}', namespace => 'regress_inform', tags => NULL);
-- limits: object_id of 255 bytes and a tag of 255 bytes are accepted
SELECT length(object_id) AS object_id_length, length(tags[1]) AS tag_length
FROM delta.inform('regress_inform', repeat('o', 255), '{}', namespace => 'regress_inform',
    tags => ARRAY[repeat('t', 255)]);
-- object_ids are any text
SELECT object_id FROM delta.inform('regress_inform', 'with space/and "quotes" ü', '{}', namespace => 'regress_inform');
SELECT * FROM pg_temp.resources();

--
-- inform_many with delta.inform_item[]: the call's settings, overridden per item
--
SELECT object_id, namespace, state, max_attempts, object, metadata, tags,
       external_created_at, already_exists
FROM delta.inform_many('regress_inform_other', ARRAY[
        ROW('m1', '{"i": 1}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
        ROW('m2', '{"i": 2}', '2024-01-01 00:00:00+00', 'regress_inform_b', '{"own": true}', '{own-tag}', 7)::delta.inform_item,
        ROW('m3', '{"i": 3}', NULL, NULL, NULL, '{}', NULL)::delta.inform_item],
    namespace => 'regress_inform', metadata => '{"call": true}', tags => '{call-tag}', max_attempts => 3)
ORDER BY object_id;
-- what it returns for new objects is the rows it stored, field by field,
-- for items that differ in every field
CREATE TEMP TABLE returned AS
SELECT * FROM delta.inform_many('regress_inform_other', ARRAY(
        SELECT ROW('s' || g, jsonb_build_object('g', g),
                   CASE WHEN g % 3 = 0 THEN timestamptz '2024-01-01 00:00:00+00' + g * interval '1 s' END,
                   CASE WHEN g % 2 = 0 THEN 'regress_inform_b' END,
                   CASE WHEN g % 5 = 0 THEN jsonb_build_object('m', g) END,
                   CASE WHEN g % 7 = 0 THEN ARRAY['t-' || g] END,
                   CASE WHEN g % 4 > 0 THEN g % 4 END)::delta.inform_item
        FROM generate_series(1, 300) AS g),
    namespace => 'regress_inform', tags => '{call-tag}', max_attempts => 9);
SELECT count(*) AS returned,
       count(*) FILTER (WHERE (i.kind, i.object_id, i.namespace, i.state, i.attempt, i.max_attempts,
                               i.object, i.metadata, i.tags, i.created_at, i.external_created_at,
                               i.already_exists)
                        IS NOT DISTINCT FROM
                              (r.kind, r.object_id, r.namespace, r.state, r.attempt, r.max_attempts,
                               r.object, r.metadata, r.tags, r.created_at, r.external_created_at,
                               false)) AS as_stored
FROM returned AS i LEFT JOIN delta.resource AS r ON r.id = i.id;
DELETE FROM delta.resource WHERE kind = 'regress_inform_other' AND object_id LIKE 's%';
DROP TABLE returned;
-- an empty array informs nothing
SELECT count(*) FROM delta.inform_many('regress_inform_other', '{}'::delta.inform_item[], namespace => 'regress_inform');

--
-- inform_many with jsonb: the same, fields by name
--
SELECT object_id, namespace, state, max_attempts, object, metadata, tags,
       external_created_at, already_exists
FROM delta.inform_many('regress_inform_other', '[
        {"object_id": "m1", "object": {"i": 10}},
        {"object_id": "j2", "object": {"i": 20}, "namespace": "regress_inform_b",
         "metadata": {"own": true}, "tags": ["own-tag"], "max_attempts": 8,
         "external_created_at": "2024-02-03T04:05:06Z"},
        {"object_id": "j3", "object": {"i": 30}, "tags": []}
    ]'::jsonb,
    namespace => 'regress_inform', metadata => '{"call": true}', tags => '{call-tag}')
ORDER BY object_id;
SELECT count(*) FROM delta.inform_many('regress_inform_other', '[]'::jsonb, namespace => 'regress_inform');
SELECT * FROM pg_temp.resources() WHERE kind = 'regress_inform_other';

--
-- bad input: the right SQLSTATE, and nothing written
--
SELECT pg_temp.resource_count() AS resources_before;
-- kind
SELECT regress_util.try($$SELECT delta.inform('regress_inform_missing', 'x', '{}', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform(NULL, 'x', '{}', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform('', 'x', '{}', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform(repeat('k', 64), 'x', '{}', namespace => 'regress_inform')$$);
-- namespace
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform_missing')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => NULL)$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => '')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => repeat('n', 64))$$);
-- object_id
SELECT regress_util.try($$SELECT delta.inform('regress_inform', NULL, '{}', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', '', '{}', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', repeat('o', 256), '{}', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', repeat('é', 128), '{}', namespace => 'regress_inform')$$);
-- object
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', NULL, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '[1, 2]', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '"text"', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '42', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', 'true', namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', 'null', namespace => 'regress_inform')$$);
-- metadata
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', metadata => NULL)$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', metadata => '[]')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', metadata => '"m"')$$);
-- tags: ^[\w][\w\-]+[\w]$, at most 255 bytes, not NULL
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', tags => '{ab}')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', tags => '{-abc}')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', tags => '{abc-}')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', tags => '{"a b c"}')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', tags => '{a.b.c}')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', tags => '{""}')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', tags => '{good, NULL}')$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', tags => ARRAY['good', repeat('t', 256)])$$);
-- max_attempts
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', max_attempts => 0)$$);
SELECT regress_util.try($$SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', max_attempts => -1)$$);
-- the message says what is wrong, and which item
SELECT delta.inform('regress_inform_missing', 'x', '{}');
SELECT delta.inform('regress_inform', 'x', '[]', namespace => 'regress_inform');
SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform', tags => '{ab}');
SELECT delta.inform('regress_inform', 'x', '{}', namespace => 'regress_inform_missing');
SELECT pg_temp.resource_count() AS resources_after;

-- inform_many with delta.inform_item[]
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', NULL::delta.inform_item[], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[NULL::delta.inform_item], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform_missing', ARRAY[ROW('x', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[ROW('x', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform_missing')$$);
-- one bad item spoils the call: nothing is written
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('bad', '[]', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('bad', '{}', NULL, 'regress_inform_missing', NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('bad', '{}', NULL, '', NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('bad', '{}', NULL, repeat('n', 64), NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('bad', '{}', NULL, NULL, '[1]', NULL, NULL)::delta.inform_item], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('bad', '{}', NULL, NULL, NULL, '{x}', NULL)::delta.inform_item], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('bad', '{}', NULL, NULL, NULL, NULL, 0)::delta.inform_item], namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW(NULL, '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform')$$);
-- the call's settings are checked too
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform', metadata => '[]')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform', tags => '{no}')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform', max_attempts => 0)$$);
-- the same object_id twice in one call
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('twice', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('other', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('twice', '{"again": true}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform')$$);
SELECT delta.inform_many('regress_inform', ARRAY[
    ROW('ok-1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
    ROW('bad', '"no"', NULL, NULL, NULL, NULL, NULL)::delta.inform_item], namespace => 'regress_inform');
SELECT pg_temp.resource_count() AS resources_after;

-- inform_many with jsonb
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', NULL::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '{"object_id": "x", "object": {}}'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '"x"'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', 'null'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, 1]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, null]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object": {}}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad"}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": [1]}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "tags": ["ab"]}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "tags": "abc"}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "max_attempts": 0}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "max_attempts": "many"}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "metadata": [1]}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "namespace": "regress_inform_missing"}]'::jsonb, namespace => 'regress_inform')$$);
-- a misspelt field is an error, not silently dropped
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "tag": ["abc"]}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "external_created_at": "yesterday-ish"}]'::jsonb, namespace => 'regress_inform')$$);
-- every field of the wrong type is a bad argument (22023) naming the field;
-- a time out of range is 22008, as in the other forms
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "max_attempts": 1e20}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "max_attempts": 1.5}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "tags": {}}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "external_created_at": []}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "ok-1", "object": {}}, {"object_id": "bad", "object": {}, "external_created_at": "99999999-01-01"}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform', '[{"object_id": "twice", "object": {}}, {"object_id": "twice", "object": {}}]'::jsonb, namespace => 'regress_inform')$$);
SELECT regress_util.try($$SELECT delta.inform_many('regress_inform_missing', '[{"object_id": "x", "object": {}}]'::jsonb, namespace => 'regress_inform')$$);
SELECT pg_temp.resource_count() AS resources_after;
SELECT * FROM pg_temp.resources() WHERE object_id IN ('ok-1', 'bad', 'twice', 'other', 'x');

--
-- many objects are first inserted as new ones; when one exists already
-- (here the last), the call upserts them all instead: each object is
-- returned once, and only the one that existed is a new generation
--
SELECT object_id, object, already_exists
FROM delta.inform_many('regress_inform_other', ARRAY[
        ROW('n1', '{"i": 1}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
        ROW('n2', '{"i": 2}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item,
        ROW('m1', '{"i": 11}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item],
    namespace => 'regress_inform')
ORDER BY object_id;
SELECT object_id, object, generation FROM delta.resource
WHERE kind = 'regress_inform_other' AND object_id IN ('n1', 'n2', 'm1')
ORDER BY object_id;
-- all of them new: inserted as such
SELECT object_id, already_exists
FROM delta.inform_many('regress_inform_other', '[{"object_id": "n3", "object": {}}, {"object_id": "n4", "object": {}}]'::jsonb,
    namespace => 'regress_inform')
ORDER BY object_id;

--
-- invalidate: only a synced resource, which becomes expired and due now
--
UPDATE delta.resource SET state = 'synced', synced_at = now(), due_at = NULL, attempt = 2
WHERE kind = 'regress_inform' AND object_id = 'a';
SELECT object_id, state, attempt, due_at <= now() AS due_now, synced_at IS NOT NULL AS was_synced
FROM delta.invalidate('regress_inform', 'a');
SELECT state FROM delta.resource WHERE kind = 'regress_inform' AND object_id = 'a';
-- any other state is refused, naming it
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform', 'a')$$);
SELECT delta.invalidate('regress_inform', 'a');
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform', 'failed')$$);
UPDATE delta.resource SET state = 'degraded', due_at = NULL WHERE kind = 'regress_inform' AND object_id = 'degraded';
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform', 'degraded')$$);
UPDATE delta.resource SET state = 'pending', due_at = NULL WHERE kind = 'regress_inform' AND object_id = 'deleted';
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform', 'deleted')$$);
-- unknown resource, unknown kind, bad arguments
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform', 'no-such-object')$$);
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform_other', 'a')$$);
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform_missing', 'a')$$);
SELECT regress_util.try($$SELECT delta.invalidate(NULL, 'a')$$);
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform', NULL)$$);
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform', '')$$);
SELECT regress_util.try($$SELECT delta.invalidate('regress_inform', repeat('o', 256))$$);
SELECT object_id, state FROM delta.resource
WHERE kind = 'regress_inform' AND object_id IN ('a', 'failed', 'degraded', 'deleted')
ORDER BY object_id;

-- clean up
SELECT delta.unregister_controller('regress_inform');
SELECT delta.unregister_controller('regress_inform_other');
SELECT delta.drop_namespace('regress_inform');
SELECT delta.drop_namespace('regress_inform_b');
DROP FUNCTION regress_inform_work(delta.resource);
SELECT pg_temp.resource_count() AS resources_left;
