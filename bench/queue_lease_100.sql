-- Baseline (d): the shape of a batch that claims with one lease row instead
-- of a row version per resource (issue 8's idea), with nothing else in it.
-- One transaction locks 100 due rows (FOR UPDATE SKIP LOCKED) and writes
-- one row naming them into bench.lease -- committed before any work would
-- start -- and a second one updates each row once with its outcome and
-- deletes the lease.  Valid at 1 client only: the leased rows stay due, and
-- a second client would claim them again (a real design has to keep them
-- from other claims too, which this loop does not pay for).
BEGIN;
WITH claimed AS (
    SELECT d.id FROM bench.queue AS d
    WHERE d.namespace = 'default' AND d.due_at <= now()
    ORDER BY d.due_at
    LIMIT 100
    FOR UPDATE SKIP LOCKED)
INSERT INTO bench.lease (holder_pid, started_at, ids)
SELECT pg_backend_pid(), now(), array_agg(claimed.id) FROM claimed
RETURNING id AS lease \gset
COMMIT;
WITH l AS (DELETE FROM bench.lease WHERE id = :lease RETURNING ids, started_at)
UPDATE bench.queue AS q SET
    state = 'synced', attempt = q.attempt + 1, attempted_at = l.started_at,
    synced_at = now(), due_at = NULL
FROM l
WHERE q.id = ANY (l.ids);
