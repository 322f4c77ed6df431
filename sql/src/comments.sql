----------------------------------------------------------------------------
-- Comments on every public object (\df+, \d+ and GUI tools show them).
-- The README's Reference says more; keep the two in agreement.
----------------------------------------------------------------------------

COMMENT ON SCHEMA delta IS 'delta: controllers that keep resources in sync, run by background workers';

-- tables and views
COMMENT ON TABLE delta.namespace IS 'Groups of resources, each served by its own workers (max_workers), with retention and pause settings';
COMMENT ON TABLE delta.controller IS 'One controller per kind: its work, inform and compare functions, owner and settings';
COMMENT ON TABLE delta.resource IS 'The resources and at the same time the queue the workers claim from; state tells where each is in its life cycle';
COMMENT ON TABLE delta.inform_run IS 'Inform runs queued or in flight, at most one per kind';
COMMENT ON TABLE delta.event IS 'Durable events (object_synced, object_failed, object_deleted), read in order through subscriptions';
COMMENT ON TABLE delta.subscription IS 'Event subscriptions, each with its own cursor into delta.event';
COMMENT ON TABLE delta.external_claim IS 'The claims external workers hold (delta.claim): token, role, lease; a row ends with its run or its rescue';
COMMENT ON TABLE delta.installation IS 'The transaction that installed delta in this database (not dumped): tells restored xids from this cluster''s';
COMMENT ON VIEW delta.stats IS 'Resources by namespace, kind and state: count, age of the oldest due one, synced in the last minute';
COMMENT ON VIEW delta.workers IS 'delta''s processes of the cluster (launcher, leaders, workers, probe) from shared memory: what each does now and its run counts';

-- types
COMMENT ON TYPE delta.resource_state IS 'Where a resource is in its life cycle (README "Resource life cycle")';
COMMENT ON TYPE delta.inform_item IS 'One object for delta.inform_many and for inform functions; NULL fields take the call''s defaults';
COMMENT ON TYPE delta.inform_options IS 'What an inform run asks its inform function for: after, labels, limit, order_by';
COMMENT ON TYPE delta.inform_result IS 'What delta.inform and delta.inform_many return for each resource';

-- namespaces
COMMENT ON FUNCTION delta.create_namespace(text, integer, interval, interval, interval, interval)
    IS 'Creates a namespace with its own workers and retention settings';
COMMENT ON FUNCTION delta.alter_namespace(text, integer, interval, interval, interval, interval, boolean)
    IS 'Changes the settings of a namespace that are given (NULL leaves one unchanged); paused stops its workers';
COMMENT ON FUNCTION delta.drop_namespace(text, boolean)
    IS 'Drops an empty namespace, or with force one with resources and all of them';

-- controllers
COMMENT ON FUNCTION delta.register_controller(text, regprocedure, regprocedure, regprocedure, integer,
        interval, interval, interval, integer, boolean, interval, interval)
    IS 'Registers the controller of a kind (or replaces it): work function, optional inform and compare functions, settings';
COMMENT ON FUNCTION delta.alter_controller(text, regprocedure, regprocedure, regprocedure, integer,
        interval, interval, interval, integer, text[], interval, interval)
    IS 'Changes only the given settings of a controller; reset names the ones to set back to their defaults';
COMMENT ON FUNCTION delta.unregister_controller(text)
    IS 'Removes the controller of a kind; its resources stay';
COMMENT ON FUNCTION delta.pause_kind(text) IS 'Stops new runs of one kind without pausing its namespaces';
COMMENT ON FUNCTION delta.resume_kind(text) IS 'Lets the runs of a paused kind start again';

-- resources
COMMENT ON FUNCTION delta.inform(text, text, jsonb, text, jsonb, text[], integer, timestamptz)
    IS 'Creates or updates one resource and schedules a run, in the caller''s transaction; wakes a worker at commit';
COMMENT ON FUNCTION delta.inform_many(text, delta.inform_item[], text, jsonb, text[], integer)
    IS 'delta.inform for many objects in one statement; every item is checked before anything is written';
COMMENT ON FUNCTION delta.inform_many(text, jsonb, text, jsonb, text[], integer)
    IS 'delta.inform_many with the items as a JSON array of objects with the fields of delta.inform_item';
COMMENT ON FUNCTION delta.invalidate(text, text) IS 'Runs a synced resource again without informing it';
COMMENT ON FUNCTION delta.retry(text, text)
    IS 'Runs a failed, degraded, deleted or expired resource again: scheduled, attempt 0, due now, everything else kept';
COMMENT ON FUNCTION delta.retry_all(text, delta.resource_state[])
    IS 'delta.retry for every resource of a kind in the given states (degraded by default); returns how many';
COMMENT ON FUNCTION delta.cancel(text, text)
    IS 'Stops working a scheduled, failed or pending resource: failed, not due, with a cancel error (SQLSTATE 57014); a pending one''s run is cut short by its worker at commit, unless it ended on its own first; an external worker''s claim ends at once';
COMMENT ON FUNCTION delta.explain(text, text) IS 'Why a resource is or is not running now, for an operator';
COMMENT ON FUNCTION delta.schedule_inform(text, boolean, delta.inform_options)
    IS 'Asks for an inform run of a kind now (process_existing: also the resources the inform function no longer returns)';
COMMENT ON FUNCTION delta.resource_delete(text)
    IS 'In a work function: ends the run with the resource deleted, with a reason';
COMMENT ON FUNCTION delta.resource_snooze(interval)
    IS 'In a work function: ends the run without counting the attempt; the resource is due again after the delay';

-- events
COMMENT ON FUNCTION delta.subscribe(text[], text[], text)
    IS 'Creates a subscription to events of the given categories (and kinds) from now on; returns its id';
COMMENT ON FUNCTION delta.events(bigint, integer)
    IS 'Returns the next events of a subscription and moves its cursor past them, in the caller''s transaction';
COMMENT ON FUNCTION delta.unsubscribe(bigint) IS 'Drops a subscription';

-- external workers
COMMENT ON FUNCTION delta.claim(text, integer, text[], interval, interval)
    IS 'Claims due resources for an external worker, each with a claim token; outside a transaction block; wait blocks until work is due; lease NULL: the session holds the claims';
COMMENT ON FUNCTION delta.complete(uuid) IS 'Ends the run of a claim as synced (as a run that returned)';
COMMENT ON FUNCTION delta.complete_many(uuid[]) IS 'Ends the runs of many claims as synced, all or none; returns how many';
COMMENT ON FUNCTION delta.fail(uuid, text, text) IS 'Ends the run of a claim as failed with error: retried after back-off, degraded at max_attempts';
COMMENT ON FUNCTION delta.snooze(uuid, interval) IS 'Ends the run of a claim without an outcome: due again after delay, the attempt given back';
COMMENT ON FUNCTION delta.delete(uuid, text) IS 'Ends the run of a claim as deleted, with reason';
COMMENT ON FUNCTION delta.heartbeat(uuid) IS 'Extends the lease of a claim by its length; returns the new end (NULL for a claim its session holds)';
