/*-------------------------------------------------------------------------
 *
 * processes.c
 *	  Who is running: the delta.workers view and the liveness test of a
 *	  resource's holder used by the rescue.
 *
 * A holder is named by (pid, process start time): a pid alone could have
 * been reused after a restart.  Liveness is read from the backend status
 * array, so any process (a worker, or a session calling delta._claim in a
 * test) can hold resources, and elapsed time never decides anything.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "compat.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(delta_backend_start);
PG_FUNCTION_INFO_V1(delta_holder_alive);
PG_FUNCTION_INFO_V1(delta_processes);

/* SQL: delta._backend_start() */
Datum
delta_backend_start(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(MyStartTimestamp);
}

static bool
holder_in_status_snapshot(int pid, TimestampTz started_at)
{
	int			n = pgstat_fetch_stat_numbackends();

	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_get_local_beentry_by_index(i);

		if (local != NULL && local->backendStatus.st_procpid == pid &&
			local->backendStatus.st_proc_start_timestamp == started_at)
			return true;
	}
	return false;
}

/*
 * SQL: delta._holder_alive(pid, started_at).  The status snapshot is kept
 * for the transaction, so a holder that started after it was taken would
 * look dead: before answering "dead", look again with a fresh snapshot.
 */
Datum
delta_holder_alive(PG_FUNCTION_ARGS)
{
	int			pid = PG_GETARG_INT32(0);
	TimestampTz started_at = PG_GETARG_TIMESTAMPTZ(1);

	if (pid == MyProcPid && started_at == MyStartTimestamp)
		PG_RETURN_BOOL(true);
	/* a claiming session that is exiting: dead before its status entry goes */
	if (delta_claimer_exited(pid, started_at))
		PG_RETURN_BOOL(false);
	if (holder_in_status_snapshot(pid, started_at))
		PG_RETURN_BOOL(true);
	pgstat_clear_backend_activity_snapshot();
	PG_RETURN_BOOL(holder_in_status_snapshot(pid, started_at));
}

static const char *
role_name(DeltaRole role)
{
	switch (role)
	{
		case DELTA_ROLE_LAUNCHER:
			return "launcher";
		case DELTA_ROLE_PROBE:
			return "probe";
		case DELTA_ROLE_WORKER:
			return "worker";
		default:
			return "free";
	}
}

static const char *
activity_name(DeltaActivity activity)
{
	switch (activity)
	{
		case DELTA_ACTIVITY_STARTING:
			return "starting";
		case DELTA_ACTIVITY_IDLE:
			return "idle";
		case DELTA_ACTIVITY_CLAIMING:
			return "claiming";
		case DELTA_ACTIVITY_RUNNING:
			return "running";
		case DELTA_ACTIVITY_RECORDING:
			return "recording";
		case DELTA_ACTIVITY_PROBING:
			return "probing";
		case DELTA_ACTIVITY_MAINTAINING:
			return "maintaining";
		case DELTA_ACTIVITY_INFORMING:
			return "informing";
	}
	return "unknown";
}

/* SQL: delta._processes(), behind the delta.workers view. */
Datum
delta_processes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DeltaSlot  *copy;
	int			nslots;

	InitMaterializedSRF(fcinfo, 0);
	if (delta_shared == NULL)
		return (Datum) 0;

	nslots = delta_shared->nslots;
	copy = palloc(sizeof(DeltaSlot) * nslots);
	LWLockAcquire(delta_shared->lock, LW_SHARED);
	memcpy(copy, delta_shared->slots, sizeof(DeltaSlot) * nslots);
	LWLockRelease(delta_shared->lock);

	for (int i = 0; i < nslots; i++)
	{
		DeltaSlot  *slot = &copy[i];
		Datum		values[10];
		bool		nulls[10] = {0};
		char	   *dbname;

		if (slot->role == DELTA_ROLE_FREE || slot->pid == 0)
			continue;
		dbname = OidIsValid(slot->dboid) ? get_database_name(slot->dboid) : NULL;

		values[0] = Int32GetDatum(slot->pid);
		nulls[1] = dbname == NULL;
		values[1] = dbname ? DirectFunctionCall1(namein, CStringGetDatum(dbname)) : (Datum) 0;
		nulls[2] = slot->role != DELTA_ROLE_WORKER;
		values[2] = CStringGetTextDatum(slot->namespace);
		values[3] = CStringGetTextDatum(slot->leader ? "leader" : role_name(slot->role));
		values[4] = CStringGetTextDatum(slot->stop_requested ? "stopping" : activity_name(slot->activity));
		nulls[5] = slot->resource_id == 0;
		values[5] = Int64GetDatum(slot->resource_id);
		nulls[6] = slot->kind[0] == '\0';
		values[6] = CStringGetTextDatum(slot->kind);
		values[7] = Int64GetDatum((int64) slot->processed);
		values[8] = Int64GetDatum((int64) slot->failed);
		values[9] = TimestampTzGetDatum(slot->started_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
