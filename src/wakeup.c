/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Wake-ups that a transaction sends when it ends: idle workers and
 *	  waiting external claimers (external.c) of the namespaces it informed
 *	  (at commit), and the launcher for databases
 *	  whose namespaces or extension changed (at commit or abort).
 *
 * A worker marks itself idle before the snapshot of the claim that finds
 * nothing, and a committing backend looks for idle workers after its
 * commit is visible, so a wake-up can be early but never lost.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(delta_wake);
PG_FUNCTION_INFO_V1(delta_wake_any);
PG_FUNCTION_INFO_V1(delta_namespaces_changed);

/* Both lists live in TopTransactionContext and die with the transaction. */
static List *namespaces_to_wake = NIL;
static List *databases_to_probe = NIL;

/*
 * Wakes one idle worker of namespace in this database, if one sleeps; an
 * empty namespace means any namespace.
 */
static void
wake_idle_workers(const char *namespace, bool all)
{
	LWLockAcquire(delta_shared->lock, LW_SHARED);
	for (int i = 0; i < delta_shared->nslots; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];

		if (slot->role == DELTA_ROLE_WORKER && slot->idle &&
			slot->latch != NULL && slot->dboid == MyDatabaseId &&
			(namespace[0] == '\0' || strcmp(slot->namespace, namespace) == 0))
		{
			/* a benign race: at worst two backends wake the same worker */
			slot->idle = false;
			SetLatch(slot->latch);
			if (!all)
				break;
		}
	}
	LWLockRelease(delta_shared->lock);
}

/* Tells the workers of this database that an inform run was asked for. */
static void
note_inform_request(void)
{
	DeltaDatabase *db;

	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	db = delta_find_database(MyDatabaseId, false);
	if (db != NULL)
		db->inform_requests++;
	LWLockRelease(delta_shared->lock);
}

/* The number of inform runs asked for in database dboid so far. */
uint32
delta_inform_requests(Oid dboid)
{
	DeltaDatabase *db;
	uint32		requests = 0;

	LWLockAcquire(delta_shared->lock, LW_SHARED);
	db = delta_find_database(dboid, false);
	if (db != NULL)
		requests = db->inform_requests;
	LWLockRelease(delta_shared->lock);
	return requests;
}

static void
delta_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			foreach(lc, namespaces_to_wake)
			{
				const char *namespace = (const char *) lfirst(lc);

				if (namespace[0] == '\0')
					note_inform_request();
				wake_idle_workers(namespace, false);
				delta_wake_claim_waiters(namespace);
			}
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:

			/*
			 * PREPARE frees the transaction's memory, lists included.  What a
			 * prepared transaction informed is woken at COMMIT PREPARED (see
			 * delta_wake_after_commit_prepared); the launcher probes now and
			 * again then.
			 */
		case XACT_EVENT_PREPARE:
			foreach(lc, databases_to_probe)
				delta_mark_database_dirty(lfirst_oid(lc));
			namespaces_to_wake = NIL;
			databases_to_probe = NIL;
			break;
		default:
			break;
	}
}

/*
 * After COMMIT PREPARED in this database: the prepared transaction's list
 * of namespaces is gone with its memory, so wake every idle worker of the
 * database (any of them may have work now) and have the launcher probe.
 */
void
delta_wake_after_commit_prepared(void)
{
	if (delta_shared == NULL)
		return;
	note_inform_request();
	wake_idle_workers("", true);
	delta_wake_claim_waiters("");
	delta_mark_database_dirty(MyDatabaseId);
}

/* Called from _PG_init: every backend may inform. */
void
delta_install_xact_callbacks(void)
{
	RegisterXactCallback(delta_xact_callback, NULL);
}

/* Wakes an idle worker of namespace when the current transaction commits. */
void
delta_wake_namespace_at_commit(const char *namespace)
{
	MemoryContext old;
	ListCell   *lc;

	foreach(lc, namespaces_to_wake)
	{
		if (strcmp((const char *) lfirst(lc), namespace) == 0)
			return;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	namespaces_to_wake = lappend(namespaces_to_wake, pstrdup(namespace));
	MemoryContextSwitchTo(old);
}

/* Has the launcher probe dboid again when the current transaction ends. */
void
delta_dirty_database_at_end_of_xact(Oid dboid)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	databases_to_probe = list_append_unique_oid(databases_to_probe, dboid);
	MemoryContextSwitchTo(old);
}

/* SQL: delta._wake(namespace text) */
Datum
delta_wake(PG_FUNCTION_ARGS)
{
	char	   *namespace = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (delta_shared != NULL)
		delta_wake_namespace_at_commit(namespace);
	PG_RETURN_VOID();
}

/* SQL: delta._wake_any(), for inform runs: any worker of the database runs them */
Datum
delta_wake_any(PG_FUNCTION_ARGS)
{
	if (delta_shared != NULL)
		delta_wake_namespace_at_commit("");
	PG_RETURN_VOID();
}

/* SQL: statement trigger on delta.namespace */
Datum
delta_namespaces_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("delta._namespaces_changed() must be called as a trigger")));
	delta_dirty_database_at_end_of_xact(MyDatabaseId);
	return PointerGetDatum(NULL);
}
