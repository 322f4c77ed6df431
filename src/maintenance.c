/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  The leader: in each database, one namespace worker at a time runs the
 *	  maintenance passes -- the one holding the session advisory lock
 *	  (1684368500, 0).  Every worker tries to take it once per
 *	  delta.maintenance_interval, so when the leader exits another takes
 *	  over within one interval.
 *
 * A pass: rescue the pending resources and inform runs of every namespace
 * whose holder is gone (after a restart, the first pass does it before any
 * timeout), queue the inform runs that are due, expire synced resources
 * past their namespace's resource_expiry, and delete what is past its
 * retention.  Every write re-checks the state it changes in its WHERE
 * clause, so a stale snapshot cannot undo newer work, and the expirer and
 * cleaner work in batches of DELTA_MAINTENANCE_BATCH rows, each its own
 * transaction, at most DELTA_MAINTENANCE_BATCHES per pass.  The run
 * history (delta.run, never updated, so nothing to re-check or skip) is
 * cleaned in batches of DELTA_HISTORY_BATCH rows.
 *
 * A worker that is not the leader only rescues its own namespace.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "statements.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"

#define DELTA_MAINTENANCE_BATCH 1000
#define DELTA_MAINTENANCE_BATCHES 100
#define DELTA_HISTORY_BATCH 10000

static bool is_leader = false;

/* The leader's session advisory lock: pg_locks shows it as advisory, classid 1684368500, objid 0, objsubid 2. */
static void
leader_lock_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 1684368500, 0, 2);
}

static void
step_down(const char *why)
{
	is_leader = false;
	MyDeltaSlot->leader = false;
	ereport(LOG,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("delta: this worker no longer leads maintenance: %s", why)));
}

/*
 * Releases the session advisory locks user code took, so a run leaves none
 * behind in the worker's session, and keeps the leader's lock: taken again
 * at once (even if the run released it with pg_advisory_unlock_all); if
 * another worker took it meanwhile, this one steps down.
 */
void
delta_release_session_locks(void)
{
	LOCKTAG		tag;

	LockReleaseSession(USER_LOCKMETHOD);
	if (!is_leader)
		return;
	leader_lock_tag(&tag);
	if (LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_OK)
		step_down("another worker took the leader lock while user code had released it");
}

/*
 * Returns the pending resources of namespace (NULL: all namespaces, and
 * the inform runs) whose holder is gone to failed or degraded; see
 * delta._rescue.
 */
int
delta_rescue(const char *namespace)
{
	Datum		arg = namespace ? CStringGetTextDatum(namespace) : (Datum) 0;
	char		isnull_arg = namespace ? ' ' : 'n';
	int			rescued = 0;
	int			ret;

	delta_begin_transaction("delta: rescue");
	if (delta_extension_installed())
	{
		bool		isnull;

		ret = SPI_execute_plan(delta_statement(DELTA_STMT_RESCUE), &arg, &isnull_arg, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "delta: rescue failed: %s", SPI_result_code_string(ret));
		rescued = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	delta_commit_transaction();
	if (rescued > 0)
		ereport(delta_log_level,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("delta: %d resources were held by exited workers and are tried again",
						rescued)));
	return rescued;
}

/* Runs statement id with args in its own transaction; returns its integer. */
static int
run_counting(DeltaStatementId id, Datum *args, const char *activity)
{
	int			ret;
	int			result = 0;
	bool		isnull;

	delta_begin_transaction(activity);
	ret = SPI_execute_plan(delta_statement(id), args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: %s failed: %s", activity, SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = DatumGetInt32(d);
	}
	delta_commit_transaction();
	return result;
}

/* Takes the leader lock if nobody holds it; returns whether we lead. */
static bool
try_to_lead(void)
{
	LOCKTAG		tag;

	delta_begin_transaction("delta: leader election");
	if (delta_extension_installed())
	{
		leader_lock_tag(&tag);
		is_leader = LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_OK;
	}
	delta_commit_transaction();

	if (is_leader)
	{
		MyDeltaSlot->leader = true;
		ereport(delta_log_level,
				(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
				 errmsg("delta: this worker now leads maintenance")));
	}
	return is_leader;
}

/*
 * Runs statement id (taking the batch size first) until a batch is short,
 * at most DELTA_MAINTENANCE_BATCHES times.
 */
static void
run_in_batches(DeltaStatementId id, int batch, Datum extra, const char *activity)
{
	Datum		args[2] = {Int32GetDatum(batch), extra};

	for (int i = 0; i < DELTA_MAINTENANCE_BATCHES; i++)
	{
		if (run_counting(id, args, activity) < batch)
			break;
	}
}

/* One maintenance tick of a worker of namespace. */
void
delta_maintenance(const char *namespace)
{
	Datum		arg;

	if (!is_leader && !try_to_lead())
	{
		delta_rescue(namespace);
		return;
	}

	delta_set_activity(DELTA_ACTIVITY_MAINTAINING, 0, NULL);
	delta_rescue(NULL);
	arg = Int32GetDatum(delta_inform_jitter_ms);
	run_counting(DELTA_STMT_SCHEDULE_INFORMS, &arg, "delta: schedule informs");
	run_in_batches(DELTA_STMT_EXPIRE, DELTA_MAINTENANCE_BATCH, (Datum) 0, "delta: expire");
	run_in_batches(DELTA_STMT_CLEAN, DELTA_MAINTENANCE_BATCH,
				   Int32GetDatum(delta_event_retention_s), "delta: clean");
	run_in_batches(DELTA_STMT_CLEAN_RUNS, DELTA_HISTORY_BATCH,
				   Int32GetDatum(delta_run_history_retention_s), "delta: clean run history");
}
