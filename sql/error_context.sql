--
-- Errors of bad input show no CONTEXT lines of delta's own functions
-- (src/errors.c); a caller's own frames stay.
--
\set SHOW_CONTEXT always
\set VERBOSITY default
CREATE FUNCTION regress_ctx_work(r delta.resource) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT kind FROM delta.register_controller('regress_ctx', 'regress_ctx_work(delta.resource)');

-- raised a few functions deep: no CONTEXT at all
SELECT delta.inform('regress_ctx', '', '{}');
SELECT delta.inform('regress_ctx', 'o1', '[1]');
SELECT delta.inform('regress_nokind', 'o1', '{}');
SELECT delta.inform_many('regress_ctx', '[{"object_id": "a", "object": {}, "max_attempts": "x"}]'::jsonb);
SELECT delta.inform_many('regress_ctx', ARRAY[ROW('a', '{}', NULL, NULL, NULL, NULL, 0)::delta.inform_item]);
SELECT delta.pause_kind('regress_nokind');
SELECT delta.create_namespace('regress_ctx', max_workers => -1);
SELECT delta.retry('regress_ctx', 'nope');
SELECT delta.explain('regress_ctx', NULL);

-- from the caller's own function: its frame is shown, delta's are not
CREATE FUNCTION regress_ctx_caller() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM delta.inform('regress_ctx', '', '{}');
END
$$;
SELECT regress_ctx_caller();

-- nothing was written
SELECT count(*) FROM delta.resource WHERE kind = 'regress_ctx';

DROP FUNCTION regress_ctx_caller();
SELECT delta.unregister_controller('regress_ctx');
DROP FUNCTION regress_ctx_work(delta.resource);
