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
		"SELECT kind, work, owner, work_timeout_ms FROM delta._controllers_for($1)",
		1, {TEXTARRAYOID}
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
