/*-------------------------------------------------------------------------
 *
 * history.c
 *	  Counters of the runs recorded in each database since the server
 *	  started, by outcome, for delta.metrics; SQL partner: history.sql
 *	  (delta._record_runs counts what it records, delta.run keeps it).
 *
 * The counters live in the database's entry of shared memory (shmem.c) and
 * are bumped once per recorded chunk of runs, under delta's lock, never per
 * run.  They count what was recorded whether or not delta.run_history is
 * on, and like every Prometheus counter they start again from zero when
 * the server (or shared memory, after a crash) starts again.  A chunk whose
 * transaction then rolls back was counted anyway: the worker records it
 * again, or the rescue ends it, and that is counted too.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(delta_count_runs);
PG_FUNCTION_INFO_V1(delta_run_counters);

static const char *const outcome_names[DELTA_RUN_OUTCOMES] = {
	[DELTA_RUN_SYNCED] = "synced",
	[DELTA_RUN_FAILED] = "failed",
	[DELTA_RUN_DEGRADED] = "degraded",
	[DELTA_RUN_DELETED] = "deleted",
	[DELTA_RUN_SNOOZED] = "snoozed",
	[DELTA_RUN_RESCHEDULED] = "rescheduled",
	[DELTA_RUN_CRASHED] = "crashed",
};

static int
outcome_index(const char *name)
{
	for (int i = 0; i < DELTA_RUN_OUTCOMES; i++)
		if (strcmp(outcome_names[i], name) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown run outcome \"%s\"", name)));
	return -1;					/* keep the compiler quiet */
}

/*
 * SQL: delta._count_runs(outcomes text[]) → bigint.  Adds each outcome to
 * the counters of the calling database; returns how many it counted.
 * Without shared memory (not preloaded) or an entry for the database
 * (none of delta's processes has seen it yet), nothing is counted.
 */
Datum
delta_count_runs(PG_FUNCTION_ARGS)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int64		added[DELTA_RUN_OUTCOMES] = {0};
	DeltaDatabase *db;

	if (PG_ARGISNULL(0))
		PG_RETURN_INT64(0);
	array = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			added[outcome_index(TextDatumGetCString(elems[i]))]++;

	if (delta_shared == NULL)
		PG_RETURN_INT64(0);
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	db = delta_find_database(MyDatabaseId, false);
	if (db != NULL)
		for (int i = 0; i < DELTA_RUN_OUTCOMES; i++)
			db->runs[i] += added[i];
	LWLockRelease(delta_shared->lock);
	PG_RETURN_INT64(db != NULL ? n : 0);
}

/*
 * SQL: delta._run_counters() → setof (outcome text, runs bigint): every
 * outcome, zeros included, for the calling database.
 */
Datum
delta_run_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint64		runs[DELTA_RUN_OUTCOMES] = {0};

	InitMaterializedSRF(fcinfo, 0);
	if (delta_shared != NULL)
	{
		DeltaDatabase *db;

		LWLockAcquire(delta_shared->lock, LW_SHARED);
		db = delta_find_database(MyDatabaseId, false);
		if (db != NULL)
			memcpy(runs, db->runs, sizeof(runs));
		LWLockRelease(delta_shared->lock);
	}
	for (int i = 0; i < DELTA_RUN_OUTCOMES; i++)
	{
		Datum		values[2];
		bool		isnull[2] = {false, false};

		values[0] = CStringGetTextDatum(outcome_names[i]);
		values[1] = Int64GetDatum((int64) runs[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
	}
	return (Datum) 0;
}
