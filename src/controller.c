/*-------------------------------------------------------------------------
 *
 * controller.c
 *	  delta.register_controller(), delta.alter_controller() and
 *	  delta.unregister_controller().
 *
 * They are written in C, not SQL, because they must know the calling role
 * (it becomes the controller's owner, and callbacks run as that role) while
 * writing delta.controller, which the caller has no privileges on.  A
 * SECURITY DEFINER function cannot see its caller; here we check everything
 * as the caller and only then write as the owner of the delta schema, with
 * a pinned search_path.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "compat.h"
#include "privilege.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(delta_register_controller);
PG_FUNCTION_INFO_V1(delta_unregister_controller);
PG_FUNCTION_INFO_V1(delta_alter_controller);

/* The oid of type delta.<name>. */
Oid
delta_type_oid(const char *name)
{
	Oid			nsp = get_namespace_oid("delta", false);
	Oid			typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										CStringGetDatum(name), ObjectIdGetDatum(nsp));

	if (!OidIsValid(typid))
		elog(ERROR, "delta: type delta.%s is missing", name);
	return typid;
}

static char *
kind_argument(FunctionCallInfo fcinfo)
{
	char	   *kind;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"kind\" must not be null")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (kind[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"kind\" must not be empty")));
	if (strlen(kind) >= DELTA_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("argument \"kind\" is too long (%d bytes)", (int) strlen(kind)),
				 errhint("A kind can have at most %d bytes.", DELTA_NAME_MAX - 1)));
	return kind;
}

/*
 * Raises unless function fn has the signature a role callback needs and the
 * caller may execute it.
 */
static void
check_callback(const char *argument, Oid fn, int nargs, const Oid *argtypes,
			   Oid rettype, bool retset, const char *expected)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Form_pg_proc proc;
	bool		ok;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %u given as argument \"%s\" does not exist", fn, argument)));
	proc = (Form_pg_proc) GETSTRUCT(tup);
	ok = proc->prokind == PROKIND_FUNCTION && proc->pronargs == nargs &&
		proc->prorettype == rettype && proc->proretset == retset;
	for (int i = 0; ok && i < nargs; i++)
		ok = proc->proargtypes.values[i] == argtypes[i];
	ReleaseSysCache(tup);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("argument \"%s\": function %s has the wrong signature",
						argument, format_procedure(fn)),
				 errdetail("The %s function must be declared %s.", argument, expected)));
	if (object_aclcheck(ProcedureRelationId, fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", format_procedure(fn)),
				 errdetail("The role registering a controller must be allowed to execute its functions.")));
}

/*
 * Raises unless interval argument number argno is NULL (when allowed) or
 * within [min_us microseconds, 100 years], or positive when min_us is 0.
 * The upper bound keeps every time the workers compute from it in range.
 */
static void
check_interval_argument(FunctionCallInfo fcinfo, int argno, const char *argument,
						bool nullable, int64 min_us, int32 max_days)
{
	Interval	zero = {0};
	Interval	low = {0};
	Interval	high = {0};
	Datum		value;
	const char *text;

	if (PG_ARGISNULL(argno))
	{
		if (!nullable)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"%s\" must not be null", argument)));
		return;
	}
	value = PG_GETARG_DATUM(argno);
	text = DatumGetCString(DirectFunctionCall1(interval_out, value));
	low.time = min_us;
	if (max_days > 0)
		high.day = max_days;
	else
		high.month = 1200;		/* 100 years */
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, value, IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" must be a positive interval, not \"%s\"", argument, text)));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, value, IntervalPGetDatum(&low))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" must be at least 1 millisecond, not \"%s\"", argument, text),
				 errhint("A timeout is kept in whole milliseconds.")));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, value, IntervalPGetDatum(&high))) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" must be at most %s, not \"%s\"", argument,
						max_days > 0 ? psprintf("%d days", max_days) : "100 years", text)));
}

/*
 * The owner of kind's controller, locked for update, or InvalidOid.  Runs
 * as the schema owner inside the caller's SPI connection.
 */
static Oid
lock_existing_owner(const char *kind)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(kind)};
	bool		isnull;
	int			ret;

	ret = SPI_execute_with_args("SELECT owner::oid FROM delta.controller"
								" WHERE kind OPERATOR(pg_catalog.=) $1 FOR UPDATE",
								1, argtypes, args, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: reading delta.controller failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return InvalidOid;
	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static void
check_may_change(const char *kind, Oid owner, const char *action)
{
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of the controller of kind \"%s\" to %s it", kind, action),
				 errdetail("The controller is owned by role \"%s\".",
						   GetUserNameFromId(owner, false))));
}

/*
 * Checks, as the caller, the settings of register_controller's arguments
 * 1 .. 11 (alter_controller passes the merged settings in the same places).
 */
static void
check_settings(FunctionCallInfo fcinfo)
{
	Oid			resource_type = delta_type_oid("resource");
	Oid			options_type = delta_type_oid("inform_options");
	Oid			item_type = delta_type_oid("inform_item");
	Oid			compare_args[2] = {JSONBOID, JSONBOID};

	/* no work function: an external controller, worked through delta.claim */
	if (!PG_ARGISNULL(1))
		check_callback("work", PG_GETARG_OID(1), 1, &resource_type, VOIDOID, false,
					   "work(resource delta.resource) RETURNS void");
	if (!PG_ARGISNULL(2))
		check_callback("inform", PG_GETARG_OID(2), 1, &options_type, item_type, true,
					   "inform(options delta.inform_options) RETURNS SETOF delta.inform_item");
	if (!PG_ARGISNULL(3))
		check_callback("compare", PG_GETARG_OID(3), 2, compare_args, INT4OID, false,
					   "compare(old jsonb, new jsonb) RETURNS integer");
	if (!PG_ARGISNULL(4) && (PG_GETARG_INT32(4) < 1 || PG_GETARG_INT32(4) > 1024))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"parallelism\" must be between 1 and 1024, not %d", PG_GETARG_INT32(4)),
				 errhint("Use NULL for no limit but the namespace's workers.")));
	check_interval_argument(fcinfo, 5, "inform_interval", false, 0, 0);
	/* 24 days: a timeout must fit statement_timeout's milliseconds in an int */
	check_interval_argument(fcinfo, 6, "work_timeout", true, 1000, 24);
	check_interval_argument(fcinfo, 7, "inform_timeout", true, 1000, 24);
	if (PG_ARGISNULL(8) || PG_GETARG_INT32(8) < 1)
		ereport(ERROR,
				(errcode(PG_ARGISNULL(8) ? ERRCODE_NULL_VALUE_NOT_ALLOWED : ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"max_attempts\" must be at least 1, not %s",
						PG_ARGISNULL(8) ? "NULL" : psprintf("%d", PG_GETARG_INT32(8)))));
	check_interval_argument(fcinfo, 10, "backoff_base", false, 0, 0);
	check_interval_argument(fcinfo, 11, "backoff_max", false, 0, 0);
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, PG_GETARG_DATUM(11),
										  PG_GETARG_DATUM(10))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"backoff_max\" must not be shorter than \"backoff_base\"")));
}

/* SQL: delta.register_controller(kind, work, inform, compare, ...) */
Datum
delta_register_controller(PG_FUNCTION_ARGS)
{
	char	   *kind = kind_argument(fcinfo);
	Oid			caller = GetUserId();
	bool		replace = !PG_ARGISNULL(9) && PG_GETARG_BOOL(9);
	Oid			existing;
	Oid			save_user;
	int			save_sec;
	int			nest;
	int			ret;
	bool		isnull;
	Datum		result;
	Oid			argtypes[12] = {TEXTOID, OIDOID, OIDOID, OIDOID, INT4OID, INTERVALOID,
	INTERVALOID, INTERVALOID, INT4OID, OIDOID, INTERVALOID, INTERVALOID};
	Datum		values[12];
	char		nulls[12];

	check_settings(fcinfo);

	nest = delta_begin_as_schema_owner(&save_user, &save_sec);
	existing = lock_existing_owner(kind);
	if (OidIsValid(existing))
	{
		if (!replace)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("a controller for kind \"%s\" is already registered", kind),
					 errhint("Use replace => true to replace it.")));
		/* the check is the caller's, not the schema owner's */
		SetUserIdAndSecContext(save_user, save_sec);
		check_may_change(kind, existing, "replace");
		SetUserIdAndSecContext(delta_schema_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	}

	for (int i = 0; i < 12; i++)
	{
		values[i] = PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	values[0] = CStringGetTextDatum(kind);
	values[9] = ObjectIdGetDatum(caller);	/* the replace flag's place: the owner */
	nulls[9] = ' ';

	ret = SPI_execute_with_args(
								"INSERT INTO delta.controller AS c (kind, work, inform, compare, parallelism,"
								" inform_interval, work_timeout, inform_timeout, max_attempts, owner,"
								" backoff_base, backoff_max)"
								" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
								" ON CONFLICT (kind) DO UPDATE SET work = EXCLUDED.work,"
								" inform = EXCLUDED.inform, compare = EXCLUDED.compare,"
								" parallelism = EXCLUDED.parallelism, inform_interval = EXCLUDED.inform_interval,"
								" work_timeout = EXCLUDED.work_timeout, inform_timeout = EXCLUDED.inform_timeout,"
								" max_attempts = EXCLUDED.max_attempts, owner = EXCLUDED.owner,"
								" backoff_base = EXCLUDED.backoff_base, backoff_max = EXCLUDED.backoff_max,"
								" updated_at = now()"
								" RETURNING c",
								12, argtypes, values, nulls, false, 1);
	if (ret != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "delta: writing delta.controller failed: %s", SPI_result_code_string(ret));
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	delta_end_as_schema_owner(nest, save_user, save_sec);

	PG_RETURN_DATUM(result);
}

/* SQL: delta.unregister_controller(kind) — the controller and its resources. */
Datum
delta_unregister_controller(PG_FUNCTION_ARGS)
{
	char	   *kind = kind_argument(fcinfo);
	Oid			owner;
	Oid			save_user;
	int			save_sec;
	int			nest;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(kind)};

	nest = delta_begin_as_schema_owner(&save_user, &save_sec);
	owner = lock_existing_owner(kind);
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no controller is registered for kind \"%s\"", kind)));
	SetUserIdAndSecContext(save_user, save_sec);
	check_may_change(kind, owner, "unregister");
	SetUserIdAndSecContext(delta_schema_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);

	if (SPI_execute_with_args("DELETE FROM delta.resource WHERE kind OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_with_args("DELETE FROM delta.controller WHERE kind OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "delta: deleting the controller of kind \"%s\" failed", kind);
	delta_end_as_schema_owner(nest, save_user, save_sec);

	PG_RETURN_VOID();
}

/* The settings alter_controller can reset to NULL, by argument number. */
static const char *const resettable[] = {
	[2] = "inform", [3] = "compare", [4] = "parallelism",
	[6] = "work_timeout", [7] = "inform_timeout",
};

/* Whether reset (a text[] of setting names, checked) names argument argno's setting. */
static bool
resets(ArrayType *reset, int argno)
{
	Datum	   *names;
	bool	   *nulls;
	int			n;

	deconstruct_array(reset, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name;
		bool		known = false;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument \"reset\" must not contain null")));
		name = TextDatumGetCString(names[i]);
		for (int a = 0; a < lengthof(resettable); a++)
			known |= resettable[a] != NULL && strcmp(resettable[a], name) == 0;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("argument \"reset\" names \"%s\", which cannot be reset", name),
					 errhint("Settings that can be reset: inform, compare, parallelism, work_timeout, inform_timeout; give the others a value.")));
		if (argno < lengthof(resettable) && resettable[argno] != NULL &&
			strcmp(resettable[argno], name) == 0)
			return true;
	}
	return false;
}

/*
 * SQL: delta.alter_controller(kind, work, inform, ..., reset, ...) — changes
 * the settings given (not NULL), sets those named in reset to NULL, and
 * keeps every other setting and the owner.  The owner (or a member of the
 * owning role) or a superuser only; the merged settings are checked as by
 * register_controller.
 */
Datum
delta_alter_controller(PG_FUNCTION_ARGS)
{
	char	   *kind = kind_argument(fcinfo);
	ArrayType  *reset;
	Oid			save_user;
	int			save_sec;
	int			nest;
	int			ret;
	bool		isnull;
	Datum		result;
	Oid			owner;
	Oid			argtypes[12] = {TEXTOID, OIDOID, OIDOID, OIDOID, INT4OID, INTERVALOID,
	INTERVALOID, INTERVALOID, INT4OID, OIDOID, INTERVALOID, INTERVALOID};
	Datum		values[12];
	char		nulls[12];
	HeapTuple	current;
	TupleDesc	desc;

	LOCAL_FCINFO(merged, 12);

	if (PG_ARGISNULL(9))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"reset\" must not be null")));
	reset = PG_GETARG_ARRAYTYPE_P(9);
	/* the names are checked even when nothing else is to change */
	(void) resets(reset, 0);

	nest = delta_begin_as_schema_owner(&save_user, &save_sec);
	values[0] = CStringGetTextDatum(kind);
	ret = SPI_execute_with_args("SELECT kind, work::oid, inform::oid, compare::oid, parallelism,"
								" inform_interval, work_timeout, inform_timeout, max_attempts,"
								" owner::oid, backoff_base, backoff_max FROM delta.controller"
								" WHERE kind OPERATOR(pg_catalog.=) $1 FOR UPDATE",
								1, argtypes, values, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: reading delta.controller failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no controller is registered for kind \"%s\"", kind),
				 errhint("Register one with delta.register_controller().")));
	current = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	owner = DatumGetObjectId(SPI_getbinval(current, desc, 10, &isnull));

	/* what the caller gave, else what reset says, else what it was */
	InitFunctionCallInfoData(*merged, NULL, 12, InvalidOid, NULL, NULL);
	for (int i = 0; i < 12; i++)
	{
		if (i == 9)
		{
			merged->args[i].value = ObjectIdGetDatum(owner);
			merged->args[i].isnull = false;
		}
		else if (i > 0 && !PG_ARGISNULL(i))
			merged->args[i] = fcinfo->args[i];
		else if (i > 0 && resets(reset, i))
		{
			merged->args[i].value = (Datum) 0;
			merged->args[i].isnull = true;
		}
		else
			merged->args[i].value = SPI_getbinval(current, desc, i + 1, &merged->args[i].isnull);
	}

	/* the checks are the caller's, not the schema owner's */
	SetUserIdAndSecContext(save_user, save_sec);
	check_may_change(kind, owner, "alter");
	check_settings(merged);
	SetUserIdAndSecContext(delta_schema_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);

	for (int i = 0; i < 12; i++)
	{
		values[i] = merged->args[i].value;
		nulls[i] = merged->args[i].isnull ? 'n' : ' ';
	}
	ret = SPI_execute_with_args("UPDATE delta.controller AS c SET work = $2, inform = $3, compare = $4,"
								" parallelism = $5, inform_interval = $6, work_timeout = $7,"
								" inform_timeout = $8, max_attempts = $9, backoff_base = $11,"
								" backoff_max = $12, updated_at = now()"
								" WHERE c.kind OPERATOR(pg_catalog.=) $1 AND c.owner OPERATOR(pg_catalog.=) $10"
								" RETURNING c",
								12, argtypes, values, nulls, false, 1);
	if (ret != SPI_OK_UPDATE_RETURNING || SPI_processed != 1)
		elog(ERROR, "delta: updating delta.controller failed: %s", SPI_result_code_string(ret));
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	delta_end_as_schema_owner(nest, save_user, save_sec);

	PG_RETURN_DATUM(result);
}
