/*-------------------------------------------------------------------------
 *
 * statements.c
 *	  Every SQL statement the background workers run, in one place.
 *
 * The statements are thin calls of internal functions of the install script
 * (delta._claim, delta._finish, ...), which hold the logic, so tests can
 * call the same code the workers do.  Each is prepared once per process
 * with SPI_keepplan; the plan cache replans it when the schema changes.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "statements.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

typedef struct DeltaStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[7];
} DeltaStatement;

static const DeltaStatement statements[DELTA_STMT_COUNT] = {
	/*
	 * The earliest due time from $2 (the worker's scan bound, wakeup.c) of
	 * the namespace's kinds that are not paused (delta.pause_kind), and
	 * whether it has come.  The ORDER BY is resource_due_idx's, so the plan
	 * reads the index's first entries at any table size; paused kinds are
	 * left out by an anti-join, which the planner estimates from
	 * delta.controller (a filter such as "kind <> ALL (paused)" is estimated
	 * from kind's statistics and, with one kind in the table, made it
	 * seq-scan the whole table on every probe).
	 */
	[DELTA_STMT_NEXT_DUE] = {
		"SELECT d.due_at, d.due_at OPERATOR(pg_catalog.<=) pg_catalog.now() FROM delta.resource AS d"
		" WHERE d.namespace OPERATOR(pg_catalog.=) $1 AND d.due_at OPERATOR(pg_catalog.>=) $2"
		" AND NOT EXISTS (SELECT FROM delta.controller AS c"
		" WHERE c.kind OPERATOR(pg_catalog.=) d.kind AND c.paused)"
		" ORDER BY d.due_at LIMIT 1",
		2, {TEXTOID, TIMESTAMPTZOID}
	},
	[DELTA_STMT_CLAIM] = {
		"SELECT r FROM delta._claim($1, $3, scan_from => $2) AS r",
		3, {TEXTOID, TIMESTAMPTZOID, INT4OID}
	},
	[DELTA_STMT_FINISH] = {
		"SELECT delta._finish($1, $2, $3, $4, $5, $6, $7)",
		7, {INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, JSONBARRAYOID, INTERVALARRAYOID,
			TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID}
	},
	[DELTA_STMT_HAND_BACK] = {
		"SELECT delta._hand_back($1)",
		1, {INT8ARRAYOID}
	},
	/* the runs a worker could not record: it locks them in id order first */
	[DELTA_STMT_END_RUNS] = {
		"SELECT delta._end_runs(pg_catalog.array_agg(l.id), $2, $3) FROM"
		" (SELECT r.id FROM delta.resource AS r WHERE r.id OPERATOR(pg_catalog.=) ANY ($1)"
		" AND r.holder_pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()"
		" ORDER BY r.id FOR UPDATE) AS l",
		3, {INT8ARRAYOID, TEXTOID, TEXTOID}
	},
	[DELTA_STMT_RESCUE] = {
		"SELECT delta._rescue($1)",
		1, {TEXTOID}
	},
	[DELTA_STMT_CONTROLLERS_FOR] = {
		"SELECT c.kind, c.work::pg_catalog.oid, c.owner::pg_catalog.oid,"
		" (pg_catalog.date_part('epoch', c.work_timeout) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8"
		" FROM delta.controller AS c WHERE c.kind OPERATOR(pg_catalog.=) ANY ($1)",
		1, {TEXTARRAYOID}
	},
	[DELTA_STMT_SCHEDULE_INFORMS] = {
		"SELECT delta._schedule_due_informs(pg_catalog.make_interval(secs => $1::pg_catalog.float8 OPERATOR(pg_catalog./) 1000.0::pg_catalog.float8))",
		1, {INT4OID}
	},
	[DELTA_STMT_EXPIRE] = {
		"SELECT delta._expire($1)",
		1, {INT4OID}
	},
	[DELTA_STMT_CLEAN] = {
		"SELECT delta._clean($1, pg_catalog.make_interval(secs => $2))",
		2, {INT4OID, INT4OID}
	},
	[DELTA_STMT_CLEAN_RUNS] = {
		"SELECT delta._clean_runs($1, pg_catalog.make_interval(secs => $2))",
		2, {INT4OID, INT4OID}
	},
	[DELTA_STMT_CLAIM_INFORM] = {
		"SELECT kind, inform, owner, timeout_ms, process_existing, options, attempt"
		" FROM delta._claim_inform()",
		0, {InvalidOid}
	},
	[DELTA_STMT_APPLY_INFORM] = {
		"SELECT delta._apply_inform($1, $2, $3, $4)",
		4, {TEXTOID, JSONBOID, BOOLOID, TIMESTAMPTZOID}
	},
	[DELTA_STMT_FINISH_INFORM] = {
		"SELECT delta._finish_inform($1, $2)",
		2, {TEXTOID, JSONBOID}
	},
	[DELTA_STMT_NAMESPACE_WANTS] = {
		"SELECT name, max_workers FROM delta.namespace"
		" WHERE NOT paused AND max_workers OPERATOR(pg_catalog.>) 0 ORDER BY name",
		0, {InvalidOid}
	},
	[DELTA_STMT_NAMESPACE_EXISTS] = {
		"SELECT 1 FROM delta.namespace WHERE name OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
};

static SPIPlanPtr plans[DELTA_STMT_COUNT];

SPIPlanPtr
delta_statement(DeltaStatementId id)
{
	if (plans[id] == NULL)
	{
		const DeltaStatement *s = &statements[id];
		SPIPlanPtr	plan = SPI_prepare(s->sql, s->nargs, (Oid *) s->argtypes);

		if (plan == NULL)
			elog(ERROR, "delta: could not prepare \"%s\": %s", s->sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "delta: could not keep the plan of \"%s\"", s->sql);
		plans[id] = plan;
	}
	return plans[id];
}

/* Errors after which the same statement may well succeed. */
static bool
transient(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
}

#define STATEMENT_TRIES 5

/*
 * Runs statement id (a write of delta's own bookkeeping) in a
 * subtransaction, tried again after a deadlock, a serialization failure or
 * a lock timeout, up to five times.  Returns NULL when it succeeded, else
 * the error (its subtransaction rolled back, the transaction usable).
 * Call inside SPI_connect, in a transaction.
 */
ErrorData *
delta_try_statement(DeltaStatementId id, Datum *args, const char *nulls)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	SPIPlanPtr	plan = delta_statement(id);

	for (int try = 1;; try++)
	{
		ErrorData  *edata;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			int			ret = SPI_execute_plan(plan, args, nulls, false, 0);

			if (ret < 0)
				elog(ERROR, "delta: \"%s\" failed: %s", statements[id].sql,
					 SPI_result_code_string(ret));
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			return NULL;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_END_TRY();
		if (!transient(edata->sqlerrcode) || try == STATEMENT_TRIES)
			return edata;
		ereport(delta_log_level,
				(errcode(edata->sqlerrcode),
				 errmsg("delta: trying again after: %s", edata->message)));
		FreeErrorData(edata);
		/* the other transaction may need a moment to finish */
		pg_usleep(10000L * try);
	}
}

/* delta_try_statement, raising the error it returns. */
void
delta_execute_retrying(DeltaStatementId id, Datum *args, const char *nulls)
{
	ErrorData  *edata = delta_try_statement(id, args, nulls);

	if (edata != NULL)
		ReThrowError(edata);
}
