/*-------------------------------------------------------------------------
 *
 * background.c
 *	  What every delta background process does first: signals, its slot,
 *	  its database connection, and an error context that names it.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/snapmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

static ErrorContextCallback delta_errcontext;
static char delta_context_text[256];

static void
delta_error_context(void *arg)
{
	errcontext("%s", delta_context_text);
}

/*
 * Signals, the slot, the database connection and the error context of a
 * probe or namespace worker.  Workers connect as the bootstrap superuser
 * and run callbacks as each controller's owner.
 */
void
delta_background_setup(DeltaSlot *slot, const char *what)
{
	char	   *dbname;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnectionByOid(slot->dboid, InvalidOid, 0);

	StartTransactionCommand();
	dbname = get_database_name(MyDatabaseId);
	snprintf(delta_context_text, sizeof(delta_context_text),
			 "%s in database \"%s\"", what, dbname ? dbname : "?");
	CommitTransactionCommand();

	delta_errcontext.callback = delta_error_context;
	delta_errcontext.arg = NULL;
	delta_errcontext.previous = NULL;
	error_context_stack = &delta_errcontext;

	pgstat_report_appname(what);
}

/* Whether CREATE EXTENSION delta was run here; call in a transaction. */
bool
delta_extension_installed(void)
{
	return OidIsValid(get_extension_oid("delta", true));
}

/* Where the caller of delta_begin_transaction allocated; restored at commit. */
static MemoryContext caller_cxt = NULL;

/* Starts a transaction with an SPI connection and a snapshot. */
void
delta_begin_transaction(const char *activity)
{
	caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "delta: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/* Commits what delta_begin_transaction started. */
void
delta_commit_transaction(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* commit leaves TopMemoryContext current: allocations would pile up there */
	if (caller_cxt != NULL)
		MemoryContextSwitchTo(caller_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);
}
