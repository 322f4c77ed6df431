-- Baseline (c): the shape of delta's present batch with nothing else in it.
-- One transaction claims 100 due rows (FOR UPDATE SKIP LOCKED) and makes
-- them pending -- committed before any work would start -- and a second
-- one records their outcome: two updates of each row, both changing
-- indexed columns, so neither is a HOT update.  No work function, no
-- subtransaction, no run history.
BEGIN;
WITH claimed AS (
    SELECT d.id FROM bench.queue AS d
    WHERE d.namespace = 'default' AND d.due_at <= now()
    ORDER BY d.due_at
    LIMIT 100
    FOR UPDATE SKIP LOCKED),
pending AS (
    UPDATE bench.queue AS q SET
        state = 'pending', attempt = q.attempt + 1, attempted_at = now(), due_at = NULL,
        holder_pid = pg_backend_pid(), holder_started_at = now()
    FROM claimed
    WHERE q.id = claimed.id
    RETURNING q.id)
SELECT coalesce(string_agg(pending.id::text, ','), '') AS ids FROM pending \gset
COMMIT;
UPDATE bench.queue AS q SET
    state = 'synced', synced_at = now(), holder_pid = NULL, holder_started_at = NULL
WHERE q.id = ANY (string_to_array(:ids, ',')::bigint[]) AND q.state::text = 'pending';
