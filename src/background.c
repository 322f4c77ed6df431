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
#include "access/genam.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "utils/fmgroids.h"
#include "catalog/pg_namespace.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
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

/*
 * Whether the schema of extension extoid can be trusted: it is the schema
 * "delta" that name lookups find, and it is owned by a superuser, so no
 * non-superuser can rename it, plant objects in it, or replace it.
 * Workers run delta.* as the bootstrap superuser: without this, a database
 * owner who owned the schema could have them run anything.
 */
static Oid
extension_schema(Oid extoid)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	Oid			nspoid = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		nspoid = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nspoid;
}

static bool
extension_schema_trusted(Oid extoid)
{
	Oid			nspoid = extension_schema(extoid);
	HeapTuple	tuple;
	bool		trusted = false;

	if (!OidIsValid(nspoid) || get_namespace_oid("delta", true) != nspoid)
		return false;
	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nspoid));
	if (HeapTupleIsValid(tuple))
	{
		trusted = superuser_arg(((Form_pg_namespace) GETSTRUCT(tuple))->nspowner);
		ReleaseSysCache(tuple);
	}
	return trusted;
}

/*
 * Whether CREATE EXTENSION delta was run here and its schema can be
 * trusted; call in a transaction.  An untrusted schema is logged once per
 * process and the database is treated as having no delta.
 */
bool
delta_extension_installed(void)
{
	static bool warned = false;
	Oid			extoid = get_extension_oid("delta", true);

	if (!OidIsValid(extoid))
		return false;
	if (!extension_schema_trusted(extoid))
	{
		if (!warned)
			ereport(LOG,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("delta does nothing in this database: schema \"delta\" is not the extension's schema or is not owned by a superuser"),
					 errhint("Make a superuser the owner of the extension's schema and name it \"delta\".")));
		warned = true;
		return false;
	}
	return true;
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
