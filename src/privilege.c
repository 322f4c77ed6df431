/*-------------------------------------------------------------------------
 *
 * privilege.c
 *	  Acting for a caller: checks are made as the calling role, writes to
 *	  delta's tables as the owner of schema delta.
 *
 * A SECURITY DEFINER function cannot tell who called it, but controllers
 * and subscriptions belong to the role that creates them.  So the public
 * functions that need the caller are C functions that run as the caller,
 * switch to the schema owner with a pinned search_path, and pass the
 * caller's oid to an internal SQL function that PUBLIC cannot execute.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "privilege.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(delta_call_as_caller);
PG_FUNCTION_INFO_V1(delta_call_external_as_caller);

/* The owner of schema delta. */
Oid
delta_schema_owner(void)
{
	Oid			nsp = get_namespace_oid("delta", false);
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "delta: cache lookup failed for schema %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Switches to the owner of schema delta with search_path pinned to
 * pg_catalog, pg_temp, and connects SPI.  Returns the GUC nest level for
 * delta_end_as_schema_owner.  An error on the way is undone by the abort.
 */
int
delta_begin_as_schema_owner(Oid *save_user, int *save_sec)
{
	int			nest;

	GetUserIdAndSecContext(save_user, save_sec);
	SetUserIdAndSecContext(delta_schema_owner(), *save_sec | SECURITY_LOCAL_USERID_CHANGE);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "delta: SPI_connect failed");
	return nest;
}

void
delta_end_as_schema_owner(int nest, Oid save_user, int save_sec)
{
	SPI_finish();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_user, save_sec);
}

/*
 * delta.<name>(args) runs SELECT * FROM delta.<prefix><name>(caller, args)
 * as the schema owner and returns its result: a set, a scalar or nothing.
 */
static Datum
call_as_caller(FunctionCallInfo fcinfo, const char *prefix)
{
	Oid			caller = GetUserId();
	HeapTuple	proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
	Form_pg_proc proc;
	int			nargs;
	bool		retset;
	Oid			rettype;
	Oid		   *argtypes;
	Datum	   *values;
	char	   *nulls;
	StringInfoData sql;
	Oid			save_user;
	int			save_sec;
	int			nest;
	int			ret;
	Datum		result = (Datum) 0;
	bool		isnull = true;

	if (!HeapTupleIsValid(proctup))
		elog(ERROR, "delta: cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
	proc = (Form_pg_proc) GETSTRUCT(proctup);
	nargs = proc->pronargs;
	retset = proc->proretset;
	rettype = proc->prorettype;

	argtypes = palloc(sizeof(Oid) * (nargs + 1));
	values = palloc(sizeof(Datum) * (nargs + 1));
	nulls = palloc(nargs + 2);
	argtypes[0] = OIDOID;
	values[0] = ObjectIdGetDatum(caller);
	nulls[0] = ' ';
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT * FROM delta.%s($1",
					 quote_identifier(psprintf("%s%s", prefix, NameStr(proc->proname))));
	for (int i = 0; i < nargs; i++)
	{
		argtypes[i + 1] = proc->proargtypes.values[i];
		values[i + 1] = PG_GETARG_DATUM(i);
		nulls[i + 1] = PG_ARGISNULL(i) ? 'n' : ' ';
		appendStringInfo(&sql, ", $%d", i + 2);
	}
	appendStringInfoChar(&sql, ')');
	nulls[nargs + 1] = '\0';
	ReleaseSysCache(proctup);

	if (retset)
		InitMaterializedSRF(fcinfo, 0);

	nest = delta_begin_as_schema_owner(&save_user, &save_sec);
	ret = SPI_execute_with_args(sql.data, nargs + 1, argtypes, values, nulls, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "delta: \"%s\" failed: %s", sql.data, SPI_result_code_string(ret));

	if (retset)
	{
		ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
		int			natts = SPI_tuptable->tupdesc->natts;
		Datum	   *row = palloc(sizeof(Datum) * natts);
		bool	   *rownulls = palloc(sizeof(bool) * natts);

		for (uint64 i = 0; i < SPI_processed; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, row, rownulls);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, rownulls);
		}
	}
	else if (rettype != VOIDOID && SPI_processed == 1)
	{
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			result = SPI_datumTransfer(result, get_typbyval(rettype), get_typlen(rettype));
	}
	delta_end_as_schema_owner(nest, save_user, save_sec);

	if (retset || rettype == VOIDOID)
		return (Datum) 0;
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/* SQL: the body of delta.subscribe, delta.events and delta.unsubscribe (delta._<name>) */
Datum
delta_call_as_caller(PG_FUNCTION_ARGS)
{
	return call_as_caller(fcinfo, "_");
}

/* SQL: the body of delta.claim, delta.complete and the others (delta._external_<name>) */
Datum
delta_call_external_as_caller(PG_FUNCTION_ARGS)
{
	return call_as_caller(fcinfo, "_external_");
}
