/*-------------------------------------------------------------------------
 *
 * claim.c
 *	  One batch of a namespace worker, in two transactions:
 *
 *	  1. claim: up to delta.batch_size due resources become pending, held by
 *	     this process, attempt + 1 -- and that is committed before any user
 *	     code runs, so a crash during a run still counts the attempt;
 *	  2. work: each resource's work function runs in its own subtransaction,
 *	     then one statement records every outcome; the runs' writes and the
 *	     outcomes commit together.
 *
 *	  Between the two, nobody holds a row lock, so delta.inform never waits
 *	  for a run: it bumps the generation, and the outcome of a run of an older
 *	  generation sends the resource back to scheduled.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "compat.h"
#include "callback.h"
#include "claim.h"
#include "statements.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/timestamp.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

/* A claimed resource: the fields the worker reads, deformed once. */
struct DeltaClaimed
{
	Datum		resource;		/* the delta.resource datum the work function gets */
	int64		id;
	int32		attempt;
	Datum		generation;
	Datum		kind;			/* text */
};

/* Deforms the n claimed delta.resource datums into claimed, in one pass each. */
static void
deform_claimed(Datum *resources, int n, DeltaClaimed *claimed)
{
	TupleDesc	desc = NULL;
	int			id_no = -1,
				attempt_no = -1,
				generation_no = -1,
				kind_no = -1;
	Datum	   *values = NULL;
	bool	   *nulls = NULL;

	for (int i = 0; i < n; i++)
	{
		HeapTupleHeader header = DatumGetHeapTupleHeader(resources[i]);
		HeapTupleData tuple;

		if (desc == NULL)
		{
			desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(header),
										  HeapTupleHeaderGetTypMod(header));
			for (int a = 0; a < desc->natts; a++)
			{
				const char *name = NameStr(TupleDescAttr(desc, a)->attname);

				if (strcmp(name, "id") == 0)
					id_no = a;
				else if (strcmp(name, "attempt") == 0)
					attempt_no = a;
				else if (strcmp(name, "generation") == 0)
					generation_no = a;
				else if (strcmp(name, "kind") == 0)
					kind_no = a;
			}
			if (id_no < 0 || attempt_no < 0 || generation_no < 0 || kind_no < 0)
				elog(ERROR, "delta: delta.resource lacks a column the worker reads");
			values = palloc(sizeof(Datum) * desc->natts);
			nulls = palloc(sizeof(bool) * desc->natts);
		}
		tuple.t_len = HeapTupleHeaderGetDatumLength(header);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = header;
		heap_deform_tuple(&tuple, desc, values, nulls);
		if (nulls[id_no] || nulls[attempt_no] || nulls[generation_no] || nulls[kind_no])
			elog(ERROR, "delta: claimed resource has a NULL id, attempt, generation or kind");
		claimed[i].resource = resources[i];
		claimed[i].id = DatumGetInt64(values[id_no]);
		claimed[i].attempt = DatumGetInt32(values[attempt_no]);
		claimed[i].generation = values[generation_no];
		claimed[i].kind = values[kind_no];
	}
	if (desc != NULL)
		ReleaseTupleDesc(desc);
}

/*
 * What the claim looks at first, in the claim's transaction: whether the
 * extension and namespace (args[0]) still exist (-1 if not), and whether
 * anything is due from the scan bound args[1] on (1) or not (0: *next_due
 * gets the earliest due time of the namespace from there, DT_NOEND if
 * none).
 */
static int
probe_namespace(Datum *args, TimestampTz *next_due)
{
	int			ret;
	bool		isnull;
	Datum		due_at;

	if (!delta_extension_installed())
		return -1;
	ret = SPI_execute_plan(delta_statement(DELTA_STMT_NAMESPACE_EXISTS), args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: namespace lookup failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return -1;

	*next_due = DT_NOEND;
	ret = SPI_execute_plan(delta_statement(DELTA_STMT_NEXT_DUE), args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: looking for the next due time failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return 0;
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
		return 1;
	/* when the first resource becomes due: the idle worker wakes then */
	due_at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*next_due = DatumGetTimestampTz(due_at);
	return 0;
}

/*
 * Claims due resources of namespace and commits the claim.  Returns how
 * many; *claimed gets them (their delta.resource datums and the fields
 * the worker reads), allocated in cxt.
 * Returns -1 when the extension or the namespace no longer exists.  When
 * nothing is due, returns 0 and sets *next_due to the earliest due time of
 * the namespace (DT_NOEND if none).
 *
 * The probes (probe_namespace) skip the claim, the only costly statement of
 * an idle loop, when nothing is due.  Right after a full batch something
 * most likely still is: with probe false the claim comes first, and the
 * probes run only if it finds nothing.
 */
int
delta_claim_batch(const char *namespace, int max_count, bool probe, MemoryContext cxt,
				  DeltaClaimed **claimed, TimestampTz *next_due)
{
	Datum		args[3];
	Datum	   *resources;
	int			ret;
	int			n = 0;
	/* before the snapshot: what commits later is in the next claim's bound */
	TimestampTz scan_from = delta_claim_scan_from();

	delta_begin_transaction("delta: claim");
	args[0] = CStringGetTextDatum(namespace);
	args[1] = TimestampTzGetDatum(scan_from);
	if (probe && (ret = probe_namespace(args, next_due)) <= 0)
	{
		delta_commit_transaction();
		return ret;
	}

	args[2] = Int32GetDatum(max_count);
	ret = SPI_execute_plan(delta_statement(DELTA_STMT_CLAIM), args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: claim failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0 && !probe)
	{
		ret = probe_namespace(args, next_due);
		delta_commit_transaction();
		/* due, yet nothing claimable: locked by others, or capped */
		return Min(ret, 0);
	}

	resources = palloc(sizeof(Datum) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		resources[n++] = PointerGetDatum(DatumGetHeapTupleHeaderCopy(d));
		MemoryContextSwitchTo(old);
	}
	*claimed = MemoryContextAlloc(cxt, sizeof(DeltaClaimed) * n);
	deform_claimed(resources, n, *claimed);
	delta_commit_transaction();
	return n;
}

/* Why ctl's runs cannot start, or NULL: checked once per batch. */
static void
check_controller(DeltaController *ctl, Oid resource_type)
{
	HeapTuple	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(ctl->work));
	Form_pg_proc form;

	if (!HeapTupleIsValid(proc))
	{
		ctl->problem = psprintf("work function %u of kind \"%s\" no longer exists", ctl->work, ctl->kind);
		ctl->problem_code = ERRCODE_UNDEFINED_FUNCTION;
		return;
	}
	form = (Form_pg_proc) GETSTRUCT(proc);
	if (form->pronargs != 1 || form->proargtypes.values[0] != resource_type ||
		form->proretset || form->prokind != PROKIND_FUNCTION)
	{
		ctl->problem = psprintf("work function %s of kind \"%s\" no longer takes (delta.resource)",
								format_procedure(ctl->work), ctl->kind);
		ctl->problem_code = ERRCODE_INVALID_FUNCTION_DEFINITION;
	}
	else if (object_aclcheck(ProcedureRelationId, ctl->work, ctl->owner, ACL_EXECUTE) != ACLCHECK_OK)
	{
		ctl->problem = psprintf("permission denied for function %s: the owner of kind \"%s\" cannot execute it",
								format_procedure(ctl->work), ctl->kind);
		ctl->problem_code = ERRCODE_INSUFFICIENT_PRIVILEGE;
	}
	ReleaseSysCache(proc);
}

/* Loads the controllers of the kinds claimed, in one query. */
static List *
load_controllers(DeltaClaimed *claimed, int n, MemoryContext cxt)
{
	Datum	   *kinds = palloc(sizeof(Datum) * n);
	ArrayType  *array;
	Datum		arg;
	int			ret;
	List	   *controllers = NIL;
	Oid			resource_type = delta_type_oid("resource");

	for (int i = 0; i < n; i++)
		kinds[i] = claimed[i].kind;
	array = construct_array(kinds, n, TEXTOID, -1, false, TYPALIGN_INT);
	arg = PointerGetDatum(array);
	ret = SPI_execute_plan(delta_statement(DELTA_STMT_CONTROLLERS_FOR), &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: loading controllers failed: %s", SPI_result_code_string(ret));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		DeltaController *ctl = palloc0(sizeof(DeltaController));
		Datum		timeout;

		ctl->kind = SPI_getvalue(tup, desc, 1);
		ctl->work = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		if (isnull)
		{
			/* made external between the claim and now */
			ctl->problem = psprintf("the controller of kind \"%s\" has no work function: external workers work it",
									ctl->kind);
			ctl->problem_code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		}
		ctl->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		timeout = SPI_getbinval(tup, desc, 4, &isnull);
		ctl->timeout_ms = isnull ? delta_work_timeout_ms : DatumGetInt64(timeout);
		if (ctl->problem == NULL)
			check_controller(ctl, resource_type);
		if (ctl->problem == NULL)
			fmgr_info_cxt(ctl->work, &ctl->flinfo, cxt);
		controllers = lappend(controllers, ctl);
		MemoryContextSwitchTo(old);
	}
	return controllers;
}

static DeltaController *
find_controller(List **controllers, const char *kind, MemoryContext cxt)
{
	ListCell   *lc;
	DeltaController *ctl;

	foreach(lc, *controllers)
	{
		ctl = lfirst(lc);
		if (strcmp(ctl->kind, kind) == 0)
			return ctl;
	}
	/* unregistered between the claim and now */
	ctl = MemoryContextAllocZero(cxt, sizeof(DeltaController));
	ctl->kind = MemoryContextStrdup(cxt, kind);
	ctl->problem = psprintf("no controller is registered for kind \"%s\"", kind);
	ctl->problem_code = ERRCODE_UNDEFINED_OBJECT;
	*controllers = lappend(*controllers, ctl);
	return ctl;
}

const char *
delta_outcome_name(DeltaOutcome outcome)
{
	switch (outcome)
	{
		case DELTA_OUTCOME_SYNCED:
			return "synced";
		case DELTA_OUTCOME_FAILED:
			return "failed";
		case DELTA_OUTCOME_DELETED:
			return "deleted";
		case DELTA_OUTCOME_SNOOZED:
			return "snoozed";
		case DELTA_OUTCOME_CANCELLED:
			return "cancelled";
		default:
			return "none";
	}
}

/*
 * How long runs of each kind took in this worker (a moving average), so a
 * claim holds only what the worker will start within delta.commit_delay
 * and an outcome is committed before a run that will take longer starts.
 */
typedef struct KindTiming
{
	char		kind[DELTA_NAME_MAX];
	double		avg_ms;
} KindTiming;

#define KIND_TIMINGS 64
static KindTiming kind_timings[KIND_TIMINGS];
static int	n_kind_timings = 0;
static int	next_evicted = 0;

/* Moving average of all runs of this worker: what the next claim will take. */
static double run_avg_ms = -1;

static KindTiming *
kind_timing(const char *kind, bool create)
{
	KindTiming *t;

	for (int i = 0; i < n_kind_timings; i++)
		if (strcmp(kind_timings[i].kind, kind) == 0)
			return &kind_timings[i];
	if (!create)
		return NULL;
	if (n_kind_timings < KIND_TIMINGS)
		t = &kind_timings[n_kind_timings++];
	else
	{
		t = &kind_timings[next_evicted];
		next_evicted = (next_evicted + 1) % KIND_TIMINGS;
	}
	strlcpy(t->kind, kind, DELTA_NAME_MAX);
	t->avg_ms = -1;
	return t;
}

static double
moving_average(double avg, double sample)
{
	return avg < 0 ? sample : 0.7 * avg + 0.3 * sample;
}

static void
note_run_time(const char *kind, double ms)
{
	KindTiming *t = kind_timing(kind, true);

	t->avg_ms = moving_average(t->avg_ms, ms);
	run_avg_ms = moving_average(run_avg_ms, ms);
}

/*
 * How many resources the next claim takes: as many as the worker's recent
 * runs say it will start within delta.commit_delay, at least one, at most
 * max_count.  A worker that has not run anything yet claims one, so the
 * first runs of slow work already spread over the idle workers.
 */
int
delta_claim_size(int max_count)
{
	double		n;

	if (run_avg_ms < 0)
		return 1;
	n = delta_commit_delay_ms / Max(run_avg_ms, 0.001);
	return (int) Max(1, Min((double) max_count, n));
}

/* Expected duration of a run of kind: unknown kinds are assumed slow. */
static double
expected_run_ms(const char *kind)
{
	KindTiming *t = kind_timing(kind, false);

	return t == NULL || t->avg_ms < 0 ? (double) delta_commit_delay_ms : t->avg_ms;
}

/* The outcomes of a batch's runs, recorded in chunks as they end. */
typedef struct Outcomes
{
	int			n;				/* runs since the last commit */
	Datum	   *ids;
	Datum	   *generations;
	Datum	   *outcomes;
	Datum	   *errors;
	bool	   *errors_null;
	Datum	   *delays;
	bool	   *delays_null;
	Datum	   *started;
	Datum	   *ended;
	TimestampTz first_ended;	/* when the oldest of them ended */
} Outcomes;

/*
 * The batch this worker is working on, so that an error outside a run
 * (delta_abandon_batch) knows which runs it lost and which it never started.
 */
typedef struct Batch
{
	DeltaClaimed *claimed;
	int			n;
	int			next;			/* the first resource not started */
	Outcomes	o;
} Batch;

static Batch *current_batch = NULL;

/*
 * Whether one more run and the statement that records the outcomes could
 * overflow this process's cache of subtransaction ids (64 in PostgreSQL):
 * every run that wrote left its subtransaction's xid there until the
 * commit, and past 64 every snapshot in the server gets slower.  Runs that
 * wrote nothing take no room, so read-only work commits once a batch.
 */
static bool
subxid_cache_nearly_full(void)
{
	return MyProc->subxidStatus.count >= PGPROC_MAX_CACHED_SUBXIDS - 1;
}

static ArrayType *
int8_array(Datum *values, int n)
{
	return construct_array(values, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* The ids of the resources of the batch from index first on. */
static ArrayType *
ids_from(Batch *b, int first)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(b->n - first, 1));

	for (int i = first; i < b->n; i++)
		ids[i - first] = Int64GetDatum(b->claimed[i].id);
	return int8_array(ids, b->n - first);
}

static int
compare_by_id(const void *a, const void *b, void *arg)
{
	Datum	   *ids = (Datum *) arg;
	int64		x = DatumGetInt64(ids[*(const int *) a]);
	int64		y = DatumGetInt64(ids[*(const int *) b]);

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The arguments of delta._finish for the pending outcomes first .. first +
 * n - 1, in id order: its update then locks the rows in id order, like the
 * rescue and the hand-back, so that it rarely meets an application
 * transaction in a deadlock (and is tried again when it does).
 */
static void
finish_args(Outcomes *o, int first, int n, Datum *args)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int		   *order = palloc(sizeof(int) * n);
	Datum	   *v[7];
	bool	   *errors_null = palloc(sizeof(bool) * n);
	bool	   *delays_null = palloc(sizeof(bool) * n);
	Datum	   *columns[7] = {o->ids, o->generations, o->outcomes, o->errors, o->delays,
	o->started, o->ended};

	for (int k = 0; k < n; k++)
		order[k] = first + k;
	qsort_arg(order, n, sizeof(int), compare_by_id, o->ids);
	for (int c = 0; c < 7; c++)
	{
		v[c] = palloc(sizeof(Datum) * n);
		for (int k = 0; k < n; k++)
			v[c][k] = columns[c][order[k]];
	}
	for (int k = 0; k < n; k++)
	{
		errors_null[k] = o->errors_null[order[k]];
		delays_null[k] = o->delays_null[order[k]];
	}

	args[0] = PointerGetDatum(int8_array(v[0], n));
	args[1] = PointerGetDatum(int8_array(v[1], n));
	args[2] = PointerGetDatum(construct_array(v[2], n, TEXTOID, -1, false, TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_md_array(v[3], errors_null, 1, dims, lbs,
												 JSONBOID, -1, false, TYPALIGN_INT));
	args[4] = PointerGetDatum(construct_md_array(v[4], delays_null, 1, dims, lbs,
												 INTERVALOID, sizeof(Interval), false, TYPALIGN_DOUBLE));
	args[5] = PointerGetDatum(construct_array(v[5], n, TIMESTAMPTZOID, 8,
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[6] = PointerGetDatum(construct_array(v[6], n, TIMESTAMPTZOID, 8,
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Ends the runs ids (an int8[]) with "the worker could not record ...: error". */
static void
end_runs(Datum ids, ErrorData *edata)
{
	Datum		args[3];

	args[0] = ids;
	args[1] = CStringGetTextDatum(psprintf("the worker could not record the outcome of this run: %s",
										   edata->message));
	args[2] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	delta_execute_retrying(DELTA_STMT_END_RUNS, args, NULL);
}

/*
 * Records the pending outcomes in one statement, hands back the resources
 * from index unstarted on (when the worker stops), and commits.  If the
 * statement fails for good (a trigger on delta.resource, a constraint),
 * each outcome is recorded alone, and a run whose outcome still cannot be
 * recorded fails with that error: the others keep theirs.
 */
static void
record_outcomes(Batch *b, int unstarted)
{
	Outcomes   *o = &b->o;
	Datum		args[7];

	delta_set_activity(DELTA_ACTIVITY_RECORDING, 0, NULL);
	if (o->n > 0)
	{
		ErrorData  *edata;

		finish_args(o, 0, o->n, args);
		edata = delta_try_statement(DELTA_STMT_FINISH, args, NULL);
		for (int k = 0; edata != NULL && k < o->n; k++)
		{
			ErrorData  *one;

			finish_args(o, k, 1, args);
			one = delta_try_statement(DELTA_STMT_FINISH, args, NULL);
			if (one != NULL)
			{
				ereport(LOG,
						(errcode(one->sqlerrcode),
						 errmsg("delta: could not record the outcome of resource %lld: %s",
								(long long) DatumGetInt64(o->ids[k]), one->message)));
				end_runs(args[0], one);
			}
		}
	}
	if (unstarted < b->n)
	{
		args[0] = PointerGetDatum(ids_from(b, unstarted));
		delta_execute_retrying(DELTA_STMT_HAND_BACK, args, NULL);
	}
	/* reruns, snoozes and retries may be due before the siblings' bounds */
	delta_report_outcomes_at_commit(MyDeltaSlot->namespace);
	delta_commit_transaction();
	o->n = 0;
}

/* Whether the worker was asked to stop: it starts no further run. */
static bool
stopping(void)
{
	return delta_stop_signalled || MyDeltaSlot->stop_requested;
}

/*
 * Runs the work function of each claimed resource.  Outcomes (with the
 * runs' writes) are committed in chunks: before a run starts, the outcomes
 * of the runs before it are committed if waiting for it would keep them
 * longer than delta.commit_delay, or if 64 runs are waiting.  A worker asked
 * to stop starts no further run and hands back the resources it did not
 * start (a run cancelled because the worker stops counts as not started).
 */
void
delta_work_batch(DeltaClaimed *claimed, int n, MemoryContext cxt)
{
	List	   *controllers;
	Batch	   *b = MemoryContextAllocZero(cxt, sizeof(Batch));
	Outcomes   *o = &b->o;

	b->claimed = claimed;
	b->n = n;
	o->ids = palloc(sizeof(Datum) * n);
	o->generations = palloc(sizeof(Datum) * n);
	o->outcomes = palloc(sizeof(Datum) * n);
	o->errors = palloc(sizeof(Datum) * n);
	o->errors_null = palloc(sizeof(bool) * n);
	o->delays = palloc(sizeof(Datum) * n);
	o->delays_null = palloc(sizeof(bool) * n);
	o->started = palloc(sizeof(Datum) * n);
	o->ended = palloc(sizeof(Datum) * n);
	current_batch = b;

	delta_begin_transaction("delta: work");
	controllers = load_controllers(claimed, n, cxt);

	for (; b->next < n && !stopping(); b->next++)
	{
		DeltaClaimed *c = &b->claimed[b->next];
		char	   *kind = TextDatumGetCString(c->kind);
		int64		id = c->id;
		DeltaController *ctl = find_controller(&controllers, kind, cxt);
		DeltaRun	run;
		TimestampTz started;
		TimestampTz ended;
		int			k;

		if (o->n > 0 &&
			(subxid_cache_nearly_full() ||
			 TimestampDifferenceMilliseconds(o->first_ended, GetCurrentTimestamp()) +
			 expected_run_ms(kind) > delta_commit_delay_ms))
		{
			record_outcomes(b, n);
			delta_begin_transaction("delta: work");
		}

		delta_set_activity(DELTA_ACTIVITY_RUNNING, id, kind);
		started = GetCurrentTimestamp();
		delta_run_work(ctl, c->resource, id, c->attempt, &run, cxt);
		ended = GetCurrentTimestamp();
		/* cancelled because the worker stops: handed back with the rest */
		if (run.cancelled_by_stop)
			break;
		note_run_time(kind, (double) (ended - started) / 1000.0);

		k = o->n++;
		if (k == 0)
			o->first_ended = ended;
		o->ids[k] = Int64GetDatum(id);
		o->generations[k] = c->generation;
		o->outcomes[k] = CStringGetTextDatum(delta_outcome_name(run.outcome));
		o->errors_null[k] = run.error == NULL;
		o->errors[k] = run.error ? DirectFunctionCall1(jsonb_in, CStringGetDatum(run.error)) : (Datum) 0;
		o->delays_null[k] = run.outcome != DELTA_OUTCOME_SNOOZED;
		o->delays[k] = (Datum) 0;
		if (run.outcome == DELTA_OUTCOME_SNOOZED)
		{
			Interval   *copy = palloc(sizeof(Interval));

			*copy = run.snooze;
			o->delays[k] = IntervalPGetDatum(copy);
		}
		o->started[k] = TimestampTzGetDatum(started);
		o->ended[k] = TimestampTzGetDatum(ended);
		MyDeltaSlot->processed++;
		if (run.outcome == DELTA_OUTCOME_FAILED || run.outcome == DELTA_OUTCOME_CANCELLED)
			MyDeltaSlot->failed++;
	}
	record_outcomes(b, b->next);
	current_batch = NULL;
	delta_forget_cancels();
}

/*
 * After an error outside a run (the worker's transaction is aborted): the
 * runs whose outcomes were lost with it fail with that error, the
 * resources not started yet are handed back.  Call outside a transaction.
 */
void
delta_abandon_batch(ErrorData *edata)
{
	Batch	   *b = current_batch;
	Datum		args[1];

	if (b == NULL)
		return;
	/* if this fails too, the worker exits and the rescue takes over */
	current_batch = NULL;
	delta_begin_transaction("delta: abandon batch");
	if (b->o.n > 0)
		end_runs(PointerGetDatum(int8_array(b->o.ids, b->o.n)), edata);
	if (b->next < b->n)
	{
		args[0] = PointerGetDatum(ids_from(b, b->next));
		delta_execute_retrying(DELTA_STMT_HAND_BACK, args, NULL);
	}
	delta_commit_transaction();
	delta_forget_cancels();
}
