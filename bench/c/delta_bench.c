/*-------------------------------------------------------------------------
 *
 * delta_bench.c
 *	  The no-op work function in C of delta's benchmark (bench/setup.sql):
 *	  bench.c_noop(delta.resource) RETURNS void, which does nothing, so
 *	  that a drain with it measures delta's own cost per resource without
 *	  the SQL function executor's parse and plan of each call.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(delta_bench_noop);

Datum
delta_bench_noop(PG_FUNCTION_ARGS)
{
	PG_RETURN_VOID();
}
