-- 100: the rescue of a dead run honours an inform made during it, so the
-- claim records the generation its run works on.
ALTER TABLE delta.resource ADD COLUMN claimed_generation bigint;
