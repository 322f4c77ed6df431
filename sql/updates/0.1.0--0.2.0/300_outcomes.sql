-- 300: _finish records when each run started and ended, so attempted_at and
-- synced_at are the run's own times; the old signature goes.
DROP FUNCTION delta._finish(bigint[], bigint[], text[], jsonb[], interval[]);
