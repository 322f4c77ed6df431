-- 500: delta.pause_kind stops the runs of one kind without pausing its
-- namespace.
ALTER TABLE delta.controller ADD COLUMN paused boolean NOT NULL DEFAULT false;
