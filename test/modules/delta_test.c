/*-------------------------------------------------------------------------
 *
 * delta_test.c
 *	  C work functions used by the TAP tests only (never installed by the
 *	  extension's own Makefile): one that crashes its process, as a buggy C
 *	  controller would.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "fmgr.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(delta_test_crash);

/* work(resource delta.resource): kills its own process with SIGSEGV */
Datum
delta_test_crash(PG_FUNCTION_ARGS)
{
	raise(SIGSEGV);
	PG_RETURN_VOID();
}
