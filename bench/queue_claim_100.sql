-- Baseline (b): the same as queue_claim_1.sql with 100 rows per transaction.
WITH claimed AS (
    SELECT d.id FROM bench.queue AS d
    WHERE d.namespace = 'default' AND d.due_at <= now()
    ORDER BY d.due_at
    LIMIT 100
    FOR UPDATE SKIP LOCKED)
UPDATE bench.queue AS q SET
    state = 'synced', attempt = q.attempt + 1, attempted_at = now(),
    synced_at = now(), due_at = NULL
FROM claimed
WHERE q.id = claimed.id;
