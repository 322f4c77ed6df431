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
#include "postgres.h"

#include "catalog/pg_type.h"
#include "statements.h"

typedef struct DeltaStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[5];
} DeltaStatement;

static const DeltaStatement statements[DELTA_STMT_COUNT] = {
	[DELTA_STMT_ANY_DUE] = {
		"SELECT 1 FROM delta.resource"
		" WHERE namespace OPERATOR(pg_catalog.=) $1 AND due_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
		" LIMIT 1",
		1, {TEXTOID}
	},
	/* served by resource_due_idx (namespace, due_at): the index's first entry */
	[DELTA_STMT_NEXT_DUE] = {
		"SELECT due_at FROM delta.resource"
		" WHERE namespace OPERATOR(pg_catalog.=) $1 AND due_at IS NOT NULL"
		" ORDER BY due_at LIMIT 1",
		1, {TEXTOID}
	},
	[DELTA_STMT_CLAIM] = {
		"SELECT r FROM delta._claim($1, $2) AS r",
		2, {TEXTOID, INT4OID}
	},
	[DELTA_STMT_FINISH] = {
		"SELECT delta._finish($1, $2, $3, $4, $5)",
		5, {INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, JSONBARRAYOID, INTERVALARRAYOID}
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
	/* the leader's session lock; pg_locks: advisory, classid 1684368500, objid 0, objsubid 2 */
	[DELTA_STMT_TRY_LEAD] = {
		"SELECT pg_catalog.pg_try_advisory_lock(1684368500, 0)",
		0, {InvalidOid}
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
