/*-------------------------------------------------------------------------
 *
 * callback.c
 *	  Running one work function for one resource: as the controller's owner,
 *	  under its time limit, inside a subtransaction, so that a failure undoes
 *	  exactly that run's writes and nothing else.  Also the two functions a
 *	  work function calls to end its run: delta.resource_delete() and
 *	  delta.resource_snooze().
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "callback.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/prepare.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(delta_resource_delete);
PG_FUNCTION_INFO_V1(delta_resource_snooze);
PG_FUNCTION_INFO_V1(delta_compare_as_owner);

/* The run in progress in this process, if any. */
static DeltaRun *current_run = NULL;

static void
append_json_field(StringInfo buf, const char *key, const char *value)
{
	if (value == NULL)
		return;
	appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	escape_json(buf, value);
}

/* The errors entry of a failed run (or a deletion: no SQLSTATE), as JSON text. */
char *
delta_error_json(ErrorData *edata, int32 attempt)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"at\": ");
	escape_json(&buf, timestamptz_to_str(GetCurrentTimestamp()));
	appendStringInfo(&buf, ", \"attempt\": %d", attempt);
	append_json_field(&buf, "error", edata->message);
	if (edata->sqlerrcode != 0)
		append_json_field(&buf, "sqlstate", unpack_sql_state(edata->sqlerrcode));
	append_json_field(&buf, "detail", edata->detail);
	append_json_field(&buf, "hint", edata->hint);
	append_json_field(&buf, "context", edata->context);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Cancels a statement timeout that fired too late to interrupt anything. */
static void
disarm_timeout(void)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
	if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
		QueryCancelPending = false;
}

volatile sig_atomic_t delta_in_user_code = false;

/*
 * User code has returned or failed: no timeout or delta.cancel that comes
 * too late may cancel the worker's own statements.
 */
static void
leave_user_code(void)
{
	delta_in_user_code = false;
	delta_swallow_cancel();
	disarm_timeout();
}

/*
 * Clears what user code can leave in the worker's session, which every
 * controller of the namespace shares: prepared statements, cursors (WITH
 * HOLD ones outlive the transaction) and session advisory locks (the
 * leader keeps its own).  Settings and temporary tables are dealt with in
 * delta_run_as_owner; LISTEN is refused in background processes.
 */
static void
clean_session(void)
{
	DropAllPreparedStatements();
	PortalHashTableDeleteAll();
	delta_release_session_locks();
}

/* Whom the run's session belongs to: the owner (session_user, is_superuser). */
static void
set_session_user(Oid role)
{
	SetSessionAuthorization(role, superuser_arg(role));
}

/*
 * Runs code(arg) as role owner, under a time limit of timeout_ms (0: none),
 * in a subtransaction.  Returns NULL when it succeeded (its writes are kept
 * in the current transaction), or the error it raised, copied into
 * result_cxt (its writes are undone).  Deferred constraints and triggers
 * fire before it returns, so a violation fails this run alone.  The owner
 * is current_user and session_user of the run.
 */
ErrorData *
delta_run_as_owner(Oid owner, int64 timeout_ms, DeltaUserCode code, void *arg,
				   MemoryContext result_cxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorContextCallback *save_context = error_context_stack;
	ErrorData  *volatile error = NULL;
	Oid			save_session_user = GetSessionUserId();
	Oid			save_user;
	int			save_sec;
	int			guc_nest;

	GetUserIdAndSecContext(&save_user, &save_sec);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	guc_nest = NewGUCNestLevel();

	PG_TRY();
	{
		/* a recorded error's context is the user code's alone */
		error_context_stack = NULL;
		/* DROP ROLE does not know about controllers: never run as a role that is gone */
		if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("the owner of the controller, role %u, no longer exists", owner),
					 errhint("A superuser can register the controller again with replace => true.")));
		set_session_user(owner);
		SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
		/* delta's processes resolve names in pg_catalog; user code as configured */
		if (delta_user_search_path != NULL)
			(void) set_config_option("search_path", delta_user_search_path, PGC_USERSET,
									 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		if (timeout_ms > 0)
			enable_timeout_after(STATEMENT_TIMEOUT, (int) Min(timeout_ms, INT_MAX));
		PushActiveSnapshot(GetTransactionSnapshot());
		delta_in_user_code = true;
		/* a delta.cancel whose signal came too early: the code never starts */
		delta_check_cancel();

		code(arg);
		/* what would fire at commit fires now, inside the run */
		AfterTriggerFireDeferred();

		leave_user_code();
		PopActiveSnapshot();
		/*
		 * Settings the user code changed, even with SET or set_config(...,
		 * false), end with its run: the worker's session is shared by every
		 * controller of the namespace, so one owner's search_path must never
		 * reach another owner's run.  (An error undoes them with the
		 * subtransaction.)
		 */
		AtEOXact_GUC(false, guc_nest);
		error_context_stack = save_context;
		SetUserIdAndSecContext(save_user, save_sec);
		set_session_user(save_session_user);
		/* likewise temporary tables: pg_temp is searched first for tables */
		ResetTempTableNamespace();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		leave_user_code();
		MemoryContextSwitchTo(result_cxt);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		set_session_user(save_session_user);
	}
	PG_END_TRY();
	/* a stop that came when user code no longer checked for interrupts */
	if (delta_stop_signalled)
		QueryCancelPending = false;
	clean_session();
	return error;
}

typedef struct WorkCall
{
	DeltaController *ctl;
	Datum		resource;
} WorkCall;

static void
call_work_function(void *arg)
{
	WorkCall   *call = (WorkCall *) arg;
	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, &call->ctl->flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = call->resource;
	fcinfo->args[0].isnull = false;
	(void) FunctionCallInvoke(fcinfo);
}

/*
 * The server log's line for a failed run: which resource, which attempt,
 * why (the SQLSTATE in the text too, whatever log_line_prefix); and a line of its own when that was the last attempt, so that an
 * operator can alert on degraded resources alone.
 */
static void
log_failed_run(DeltaController *ctl, Datum resource, int32 attempt, ErrorData *edata)
{
	HeapTupleHeader tuple = DatumGetHeapTupleHeader(resource);
	bool		isnull;
	int64		id = DatumGetInt64(GetAttributeByName(tuple, "id", &isnull));
	char	   *object_id = TextDatumGetCString(GetAttributeByName(tuple, "object_id", &isnull));
	int32		max_attempts = DatumGetInt32(GetAttributeByName(tuple, "max_attempts", &isnull));

	ereport(delta_log_level,
			(errcode(edata->sqlerrcode),
			 errmsg("delta: run of resource %lld (kind \"%s\", object_id \"%s\") failed on attempt %d of %d with SQLSTATE %s: %s",
					(long long) id, ctl->kind, object_id, attempt, max_attempts,
					unpack_sql_state(edata->sqlerrcode), edata->message)));
	if (attempt >= max_attempts)
		ereport(delta_log_level,
				(errcode(edata->sqlerrcode),
				 errmsg("delta: resource %lld (kind \"%s\", object_id \"%s\") is degraded after %d attempts",
						(long long) id, ctl->kind, object_id, attempt),
				 errhint("It is not tried again until it is informed again or retried with delta.retry().")));
}

/*
 * The outcome of a run delta.cancel ended (cancel.c), whether it had
 * started or not: failed, not due, with the cancel's errors entry.
 */
static void
cancelled_run(DeltaController *ctl, Datum resource, int32 attempt, DeltaRun *run,
			  MemoryContext result_cxt)
{
	HeapTupleHeader tuple = DatumGetHeapTupleHeader(resource);
	bool		isnull;
	ErrorData	cancel = {0};

	cancel.message = "cancelled by delta.cancel";
	cancel.sqlerrcode = ERRCODE_QUERY_CANCELED;
	run->outcome = DELTA_OUTCOME_CANCELLED;
	run->error = MemoryContextStrdup(result_cxt, delta_error_json(&cancel, attempt));
	ereport(delta_log_level,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("delta: run of resource %lld (kind \"%s\", object_id \"%s\") on attempt %d was cancelled by delta.cancel",
					(long long) DatumGetInt64(GetAttributeByName(tuple, "id", &isnull)), ctl->kind,
					TextDatumGetCString(GetAttributeByName(tuple, "object_id", &isnull)), attempt)));
}

/*
 * Calls ctl's work function with resource, a composite delta.resource (its
 * id and attempt given, as the worker has them already).
 * Fills run with the outcome; error texts are allocated in result_cxt.
 */
void
delta_run_work(DeltaController *ctl, Datum resource, int64 id, int32 attempt,
			   DeltaRun *run, MemoryContext result_cxt)
{
	WorkCall	call = {ctl, resource};
	ErrorData  *edata;

	memset(run, 0, sizeof(DeltaRun));
	/* claimed, then cancelled before it started: it never starts */
	if (delta_cancel_requested(id))
	{
		cancelled_run(ctl, resource, attempt, run, result_cxt);
		return;
	}
	if (ctl->problem != NULL)
	{
		ErrorData	problem = {0};

		problem.message = ctl->problem;
		problem.sqlerrcode = ctl->problem_code;
		run->outcome = DELTA_OUTCOME_FAILED;
		run->error = MemoryContextStrdup(result_cxt, delta_error_json(&problem, attempt));
		return;
	}

	run->cxt = result_cxt;
	current_run = run;
	delta_watch_cancel(id);
	edata = delta_run_as_owner(ctl->owner, ctl->timeout_ms, call_work_function, &call, result_cxt);
	delta_watch_cancel(0);
	current_run = NULL;

	/* a run that ended on its own before the cancel reached it keeps its outcome */
	if (edata != NULL && edata->sqlerrcode == ERRCODE_QUERY_CANCELED && delta_cancel_requested(id))
		cancelled_run(ctl, resource, attempt, run, result_cxt);
	else if (edata == NULL && run->requested == DELTA_OUTCOME_DELETED)
	{
		ErrorData	deleted = {0};

		deleted.message = run->delete_reason;
		run->outcome = DELTA_OUTCOME_DELETED;
		run->error = MemoryContextStrdup(result_cxt, delta_error_json(&deleted, attempt));
	}
	else if (edata == NULL)
		run->outcome = run->requested == DELTA_OUTCOME_SNOOZED ?
			DELTA_OUTCOME_SNOOZED : DELTA_OUTCOME_SYNCED;
	else if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && delta_stop_signalled)
		run->cancelled_by_stop = true;
	else
	{
		run->outcome = DELTA_OUTCOME_FAILED;
		run->error = MemoryContextStrdup(result_cxt, delta_error_json(edata, attempt));
		log_failed_run(ctl, resource, attempt, edata);
	}
}

/* SQL: delta._compare_as_owner(compare, owner, old, new) */
Datum
delta_compare_as_owner(PG_FUNCTION_ARGS)
{
	Oid			save_user;
	int			save_sec;
	Datum		result;
	bool		isnull;
	LOCAL_FCINFO(call, 2);
	FmgrInfo	flinfo;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_NULL();
	/* dropped since it was registered: a clean error, not "cache lookup failed" */
	if (!SearchSysCacheExists1(PROCOID, PG_GETARG_DATUM(0)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the compare function %u of this controller does not exist", PG_GETARG_OID(0)),
				 errhint("Register the controller again with a compare function, or without one.")));
	fmgr_info(PG_GETARG_OID(0), &flinfo);
	InitFunctionCallInfoData(*call, &flinfo, 2, InvalidOid, NULL, NULL);
	call->args[0].value = PG_GETARG_DATUM(2);
	call->args[0].isnull = false;
	call->args[1].value = PG_GETARG_DATUM(3);
	call->args[1].isnull = false;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(PG_GETARG_OID(1), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	result = FunctionCallInvoke(call);
	isnull = call->isnull;
	SetUserIdAndSecContext(save_user, save_sec);

	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

static void
require_current_run(const char *function)
{
	if (current_run == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s can only be called from a work function run by delta", function)));
}

/*
 * SQL: delta.resource_delete(reason text) — the run ends as deleted when its
 * work function returns; the reason is kept in errors.
 */
Datum
delta_resource_delete(PG_FUNCTION_ARGS)
{
	char	   *reason = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));

	require_current_run("delta.resource_delete()");
	current_run->requested = DELTA_OUTCOME_DELETED;
	/* the run's memory lives until its outcome is recorded */
	current_run->delete_reason = MemoryContextStrdup(current_run->cxt,
		psprintf("resource deleted by its work function%s%s",
				 reason ? ": " : "", reason ? reason : ""));
	PG_RETURN_VOID();
}

/*
 * SQL: delta.resource_snooze(delay interval) — the run ends when its work
 * function returns, the resource due again after delay, the attempt not
 * counted.
 */
Datum
delta_resource_snooze(PG_FUNCTION_ARGS)
{
	Interval   *delay;
	Interval	zero = {0};
	Interval	century = {.month = 1200};

	require_current_run("delta.resource_snooze()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"delay\" must not be null")));
	delay = PG_GETARG_INTERVAL_P(0);
	/* at most 100 years, as every interval delta stores: due times never overflow */
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(delay),
										  IntervalPGetDatum(&zero))) < 0 ||
		DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(delay),
										  IntervalPGetDatum(&century))) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"delay\" must be between 0 and 100 years, not \"%s\"",
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(delay))))));

	current_run->requested = DELTA_OUTCOME_SNOOZED;
	current_run->snooze = *delay;
	PG_RETURN_VOID();
}
