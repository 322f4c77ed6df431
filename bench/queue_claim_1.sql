-- Baseline (a): one transaction claims one due row with FOR UPDATE SKIP
-- LOCKED and marks it done.  bench.queue has delta.resource's columns and
-- indexes (CREATE TABLE ... (LIKE delta.resource INCLUDING ALL)).
WITH claimed AS (
    SELECT d.id FROM bench.queue AS d
    WHERE d.namespace = 'default' AND d.due_at <= now()
    ORDER BY d.due_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
UPDATE bench.queue AS q SET
    state = 'synced', attempt = q.attempt + 1, attempted_at = now(),
    synced_at = now(), due_at = NULL
FROM claimed
WHERE q.id = claimed.id;
