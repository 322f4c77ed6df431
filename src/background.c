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
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "catalog/pg_namespace.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/guc.h"
#include "utils/memutils.h"

static ErrorContextCallback delta_errcontext;
static char delta_context_text[256];

static void
delta_error_context(void *arg)
{
	errcontext("%s", delta_context_text);
}

/* Makes the process's own error context the only one again (after an error). */
void
delta_reset_error_context(void)
{
	delta_errcontext.callback = delta_error_context;
	delta_errcontext.arg = NULL;
	delta_errcontext.previous = NULL;
	error_context_stack = &delta_errcontext;
}

/*
 * Settings of the database or of postgresql.conf that would make every
 * statement of a delta process fail or wait, overridden in its session
 * (user code may still SET them for its own run).  A work function's own
 * time limit is its controller's work_timeout.
 */
static const char *const overridden_settings[][2] = {
	{"default_transaction_read_only", "off"},
	{"default_transaction_isolation", "read committed"},
	{"default_transaction_deferrable", "off"},
	{"statement_timeout", "0"},
	{"lock_timeout", "0"},
	{"idle_in_transaction_session_timeout", "0"},
	{"idle_session_timeout", "0"},
};

/* The search_path the database and postgresql.conf give: user code's. */
char	   *delta_user_search_path = NULL;

/*
 * Also search_path: delta's own statements resolve names in pg_catalog
 * only, whatever the database says (they are schema-qualified as well);
 * user code gets the configured one back for its run (delta_run_as_owner).
 */
static void
override_settings(void)
{
	for (int i = 0; i < lengthof(overridden_settings); i++)
		SetConfigOption(overridden_settings[i][0], overridden_settings[i][1],
						PGC_SUSET, PGC_S_OVERRIDE);
	delta_user_search_path = MemoryContextStrdup(TopMemoryContext,
												 GetConfigOption("search_path", false, false));
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
}

volatile sig_atomic_t delta_stop_signalled = false;

/*
 * SIGTERM of a namespace worker (fast shutdown, pg_terminate_backend, DROP
 * EXTENSION, the launcher): stop gracefully.  A run in progress is
 * cancelled; the worker records the outcomes it has, hands back what it
 * did not start, and exits.
 */
static void
handle_stop(SIGNAL_ARGS)
{
	int			save_errno = errno;

	delta_stop_signalled = true;
	if (delta_in_user_code)
	{
		InterruptPending = true;
		QueryCancelPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * Signals, the slot, the database connection, its settings and the error
 * context of a probe or namespace worker.  A probe dies at SIGTERM; a
 * namespace worker (graceful) stops as handle_stop says, and SIGUSR2 is
 * delta.cancel's signal to it (cancel.c).  Workers connect
 * as the bootstrap superuser and run callbacks as each controller's owner.
 */
void
delta_background_setup(DeltaSlot *slot, const char *what, bool graceful)
{
	char	   *dbname;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, graceful ? handle_stop : die);
	if (graceful)
		delta_install_cancel_handler();
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnectionByOid(slot->dboid, InvalidOid, 0);
	override_settings();

	StartTransactionCommand();
	dbname = get_database_name(MyDatabaseId);
	snprintf(delta_context_text, sizeof(delta_context_text),
			 "%s in database \"%s\"", what, dbname ? dbname : "?");
	CommitTransactionCommand();

	delta_reset_error_context();
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
extension_schema(Oid extoid, char **version)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	Oid			nspoid = InvalidOid;

	*version = NULL;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		nspoid = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
		if (!isnull)
			*version = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nspoid;
}

static bool
schema_trusted(Oid nspoid)
{
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
 * Whether CREATE EXTENSION delta was run here, its schema can be trusted,
 * and its SQL is the version of this library; call in a transaction.  If
 * not, the database is treated as having no delta, and why is logged once
 * per process: a database still at an older version waits for ALTER
 * EXTENSION delta UPDATE (which makes the launcher look again), as the
 * library calls the SQL functions of its own version.
 */
bool
delta_extension_installed(void)
{
	static bool warned = false;
	Oid			extoid = get_extension_oid("delta", true);
	char	   *version;
	Oid			nspoid;

	if (!OidIsValid(extoid))
		return false;
	nspoid = extension_schema(extoid, &version);
	if (!schema_trusted(nspoid))
	{
		if (!warned)
			ereport(LOG,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("delta does nothing in this database: schema \"delta\" is not the extension's schema or is not owned by a superuser"),
					 errhint("Make a superuser the owner of the extension's schema and name it \"delta\".")));
		warned = true;
		return false;
	}
	if (version == NULL || strcmp(version, DELTA_VERSION) != 0)
	{
		if (!warned)
			ereport(LOG,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("delta does nothing in this database: its extension is version %s, the loaded library is version %s",
							version ? version : "?", DELTA_VERSION),
					 errhint("Run ALTER EXTENSION delta UPDATE in this database.")));
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
