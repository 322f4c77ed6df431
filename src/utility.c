/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  Keeps delta's workers out of the way of DROP EXTENSION delta, DROP
 *	  DATABASE and CREATE DATABASE ... TEMPLATE (which all need the database
 *	  free of them).
 *
 * Before either runs, the database is marked stopping (the launcher starts
 * nothing there), its delta processes are terminated, and we wait for them
 * to exit, so the DROP never waits on a worker's locks or connection.  When
 * the transaction ends, committed or not, the mark is lifted and the
 * launcher probes the database again: if the DROP rolled back, the workers
 * come back.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "compat.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#define STOP_WAIT_MS 10000

static ProcessUtility_hook_type prev_process_utility = NULL;
static List *stopped_databases = NIL;

static void
resume_databases(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event == XACT_EVENT_PRE_PREPARE && stopped_databases != NIL)

		/*
		 * The workers stay out only until this transaction ends, and a
		 * prepared one would hold the database's locks for an unknown time.
		 */
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot PREPARE a transaction that stopped delta's workers"),
				 errdetail("DROP EXTENSION delta, DROP DATABASE and the ALTER and CREATE DATABASE commands that stop delta's workers cannot be prepared.")));
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	if (stopped_databases == NIL)
		return;

	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	foreach(lc, stopped_databases)
	{
		DeltaDatabase *db = delta_find_database(lfirst_oid(lc), true);

		if (db != NULL)
		{
			db->stopping = Max(db->stopping - 1, 0);
			db->dirty = true;
		}
	}
	LWLockRelease(delta_shared->lock);
	stopped_databases = NIL;
	delta_wake_launcher();
}

/* Whether any delta process of dboid still runs. */
static bool
database_has_processes(Oid dboid)
{
	bool		found = false;

	LWLockAcquire(delta_shared->lock, LW_SHARED);
	for (int i = 0; i < delta_shared->nslots && !found; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];

		found = slot->role != DELTA_ROLE_FREE && slot->role != DELTA_ROLE_LAUNCHER &&
			slot->dboid == dboid && slot->pid != 0;
	}
	LWLockRelease(delta_shared->lock);
	return found;
}

/* Marks dboid stopping until the end of the transaction and stops its processes. */
static void
stop_database(Oid dboid)
{
	MemoryContext old;
	DeltaDatabase *db;

	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	db = delta_find_database(dboid, true);
	if (db != NULL)
		db->stopping++;
	for (int i = 0; i < delta_shared->nslots; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];

		if (slot->role != DELTA_ROLE_FREE && slot->role != DELTA_ROLE_LAUNCHER &&
			slot->dboid == dboid)
		{
			slot->stop_requested = true;
			if (slot->pid != 0)
				kill(slot->pid, SIGTERM);
		}
	}
	LWLockRelease(delta_shared->lock);

	old = MemoryContextSwitchTo(TopTransactionContext);
	stopped_databases = lappend_oid(stopped_databases, dboid);
	MemoryContextSwitchTo(old);

	for (int waited = 0; waited < STOP_WAIT_MS && database_has_processes(dboid); waited += 10)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* The OID of database name if the current user owns it, else InvalidOid. */
static Oid
owned_database(const char *name)
{
	Oid			dboid = get_database_oid(name, true);

	if (OidIsValid(dboid) && object_ownercheck(DatabaseRelationId, dboid, GetUserId()))
		return dboid;
	return InvalidOid;
}

/* The database whose delta processes this statement must stop first. */
static Oid
database_to_stop(Node *parsetree)
{
	ListCell   *opt;

	/* only who may drop it stops its workers (anyone may try) */
	if (IsA(parsetree, DropdbStmt))
		return owned_database(((DropdbStmt *) parsetree)->dbname);

	/*
	 * Copying (CREATE DATABASE ... TEMPLATE), renaming and moving a database
	 * also need it to themselves; only its owner gets the workers out of the
	 * way.
	 */
	if (IsA(parsetree, CreatedbStmt))
	{
		foreach(opt, ((CreatedbStmt *) parsetree)->options)
		{
			DefElem    *def = lfirst_node(DefElem, opt);

			if (strcmp(def->defname, "template") == 0 && def->arg != NULL)
				return owned_database(defGetString(def));
		}
	}
	if (IsA(parsetree, RenameStmt) && ((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
		return owned_database(((RenameStmt *) parsetree)->subname);
	if (IsA(parsetree, AlterDatabaseStmt))
	{
		foreach(opt, ((AlterDatabaseStmt *) parsetree)->options)
		{
			if (strcmp(lfirst_node(DefElem, opt)->defname, "tablespace") == 0)
				return owned_database(((AlterDatabaseStmt *) parsetree)->dbname);
		}
	}

	if (IsA(parsetree, DropStmt) && ((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION)
	{
		ListCell   *lc;

		foreach(lc, ((DropStmt *) parsetree)->objects)
		{
			Oid			extension = get_extension_oid("delta", true);

			if (strcmp(strVal(lfirst(lc)), "delta") == 0 && OidIsValid(extension) &&
				object_ownercheck(ExtensionRelationId, extension, GetUserId()))
				return MyDatabaseId;
		}
	}
	return InvalidOid;
}

static void
delta_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (delta_shared != NULL)
	{
		Oid			dboid = database_to_stop(pstmt->utilityStmt);

		if (OidIsValid(dboid))
			stop_database(dboid);
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

	/* a database updated to this library's version gets its workers */
	if (delta_shared != NULL && IsA(pstmt->utilityStmt, AlterExtensionStmt) &&
		strcmp(((AlterExtensionStmt *) pstmt->utilityStmt)->extname, "delta") == 0)
		delta_dirty_database_at_end_of_xact(MyDatabaseId);

	/* now committed: what the prepared transaction informed can run */
	if (delta_shared != NULL && IsA(pstmt->utilityStmt, TransactionStmt) &&
		((TransactionStmt *) pstmt->utilityStmt)->kind == TRANS_STMT_COMMIT_PREPARED)
		delta_wake_after_commit_prepared();
}

void
delta_install_utility_hook(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = delta_process_utility;
	RegisterXactCallback(resume_databases, NULL);
}
