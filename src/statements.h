/*-------------------------------------------------------------------------
 *
 * statements.h
 *	  The SQL statements delta's C code runs, prepared once per process.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DELTA_STATEMENTS_H
#define DELTA_STATEMENTS_H

#include "executor/spi.h"

typedef enum DeltaStatementId
{
	DELTA_STMT_NEXT_DUE,
	DELTA_STMT_CLAIM,
	DELTA_STMT_FINISH,
	DELTA_STMT_HAND_BACK,
	DELTA_STMT_END_RUNS,
	DELTA_STMT_RESCUE,
	DELTA_STMT_CONTROLLERS_FOR,
	DELTA_STMT_NAMESPACE_EXISTS,
	DELTA_STMT_NAMESPACE_WANTS,
	DELTA_STMT_SCHEDULE_INFORMS,
	DELTA_STMT_EXPIRE,
	DELTA_STMT_CLEAN,
	DELTA_STMT_CLEAN_RUNS,
	DELTA_STMT_CLAIM_INFORM,
	DELTA_STMT_APPLY_INFORM,
	DELTA_STMT_FINISH_INFORM,
	DELTA_STMT_COUNT
} DeltaStatementId;

/* The saved plan of statement id; call inside SPI_connect. */
extern SPIPlanPtr delta_statement(DeltaStatementId id);

/* Runs statement id, again after a deadlock or serialization failure. */
extern ErrorData *delta_try_statement(DeltaStatementId id, Datum *args, const char *nulls);
extern void delta_execute_retrying(DeltaStatementId id, Datum *args, const char *nulls);

#endif							/* DELTA_STATEMENTS_H */
