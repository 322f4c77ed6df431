/*-------------------------------------------------------------------------
 *
 * informer.c
 *	  Running inform runs: any namespace worker of the database claims the
 *	  due run (delta._claim_inform, committed first, like a resource claim),
 *	  calls the controller's inform function as its owner under
 *	  inform_timeout, and applies what it returned (delta._apply_inform) in
 *	  the same subtransaction, so a bad item or a timeout schedules nothing
 *	  and leaves the cursor where it was.  The outcome is recorded by
 *	  delta._finish_inform in the same transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "callback.h"
#include "statements.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "access/xact.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

/* One claimed inform run. */
typedef struct InformRun
{
	char	   *kind;
	Oid			inform;
	Oid			owner;
	int64		timeout_ms;
	bool		process_existing;
	Datum		options;
	Oid			options_type;
	int32		attempt;
	TimestampTz started_at;
	Oid			worker_user;
} InformRun;

/* Claims the inform run due first; false when none is due. */
static bool
claim_inform_run(InformRun *run, MemoryContext cxt)
{
	int			ret;
	bool		found = false;

	delta_begin_transaction("delta: claim inform run");
	if (delta_extension_installed())
	{
		ret = SPI_execute_plan(delta_statement(DELTA_STMT_CLAIM_INFORM), NULL, NULL, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "delta: claiming an inform run failed: %s", SPI_result_code_string(ret));
		found = SPI_processed > 0;
	}
	if (found)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		timeout;
		MemoryContext old = MemoryContextSwitchTo(cxt);

		run->kind = pstrdup(SPI_getvalue(tup, desc, 1));
		run->inform = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		run->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		timeout = SPI_getbinval(tup, desc, 4, &isnull);
		run->timeout_ms = isnull ? delta_inform_timeout_ms : DatumGetInt64(timeout);
		run->process_existing = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		run->options = datumCopy(SPI_getbinval(tup, desc, 6, &isnull), false, -1);
		run->options_type = SPI_gettypeid(desc, 6);
		run->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
		MemoryContextSwitchTo(old);
	}
	delta_commit_transaction();
	return found;
}

/*
 * The user code of an inform run: called as the owner, it calls the inform
 * function, then (as the worker again) applies the items it returned.
 */
static void
call_inform_function(void *arg)
{
	InformRun  *run = (InformRun *) arg;
	char	   *name = get_func_name(run->inform);
	char	   *schema = get_namespace_name(get_func_namespace(run->inform));
	char	   *fn;
	char	   *sql;
	Datum		items;
	Datum		args[4];
	bool		isnull;
	int			ret;
	int			save_sec;
	Oid			current;

	/* dropped since it was registered: the run fails, and stops after its attempts */
	if (name == NULL || schema == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("inform function %u of kind \"%s\" no longer exists", run->inform, run->kind),
				 errhint("Register the controller again with an inform function, or without one.")));
	fn = quote_qualified_identifier(schema, name);
	sql = psprintf("SELECT COALESCE(pg_catalog.jsonb_agg(i), '[]'::pg_catalog.jsonb)"
				   " FROM %s($1) AS i", fn);
	ret = SPI_execute_with_args(sql, 1, &run->options_type, &run->options, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: calling inform function %s failed: %s", fn, SPI_result_code_string(ret));
	items = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	GetUserIdAndSecContext(&current, &save_sec);
	SetUserIdAndSecContext(run->worker_user, save_sec);
	args[0] = CStringGetTextDatum(run->kind);
	args[1] = items;
	args[2] = BoolGetDatum(run->process_existing);
	args[3] = TimestampTzGetDatum(run->started_at);
	ret = SPI_execute_plan(delta_statement(DELTA_STMT_APPLY_INFORM), args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: applying an inform run failed: %s", SPI_result_code_string(ret));
}

/* The kind of the inform run this worker holds, for delta_abandon_inform_run. */
static char held_kind[DELTA_NAME_MAX] = "";
static int32 held_attempt = 0;

/* Records error as the outcome of the inform run held by this worker. */
static void
finish_inform_run(const char *kind, ErrorData *error, int32 attempt)
{
	Datum		args[2];
	char		nulls[2] = {' ', 'n'};

	args[0] = CStringGetTextDatum(kind);
	args[1] = (Datum) 0;
	if (error != NULL)
	{
		args[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(delta_error_json(error, attempt)));
		nulls[1] = ' ';
	}
	delta_execute_retrying(DELTA_STMT_FINISH_INFORM, args, nulls);
}

/*
 * After an error outside the inform function (the transaction is aborted):
 * the held inform run fails with that error.  Call outside a transaction.
 */
void
delta_abandon_inform_run(ErrorData *edata)
{
	char		kind[DELTA_NAME_MAX];

	if (held_kind[0] == '\0')
		return;
	strlcpy(kind, held_kind, sizeof(kind));
	held_kind[0] = '\0';
	delta_begin_transaction("delta: abandon inform run");
	finish_inform_run(kind, edata, held_attempt);
	delta_commit_transaction();
}

/* Runs the inform run that is due first, if any; returns whether one ran. */
bool
delta_run_due_inform(MemoryContext cxt)
{
	InformRun	run = {0};
	ErrorData  *error;
	int			save_sec;

	if (!claim_inform_run(&run, cxt))
		return false;
	strlcpy(held_kind, run.kind, sizeof(held_kind));
	held_attempt = run.attempt;

	delta_set_activity(DELTA_ACTIVITY_INFORMING, 0, run.kind);
	GetUserIdAndSecContext(&run.worker_user, &save_sec);
	delta_begin_transaction("delta: inform run");
	run.started_at = GetCurrentTransactionStartTimestamp();
	error = delta_run_as_owner(run.owner, run.timeout_ms, call_inform_function, &run, cxt);
	if (error != NULL)
		ereport(delta_log_level,
				(errcode(error->sqlerrcode),
				 errmsg("delta: inform run of kind \"%s\" failed on attempt %d: %s",
						run.kind, run.attempt, error->message)));
	finish_inform_run(run.kind, error, run.attempt);
	delta_commit_transaction();
	held_kind[0] = '\0';
	return true;
}
