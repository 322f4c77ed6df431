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
 * Claim scan bounds (delta._claim's scan_from).  Under a held xmin, every
 * resource that left the due set leaves a dead entry at the front of
 * resource_due_idx that vacuum cannot remove, and a claim that scans from
 * the start walks and heap-visits all of them.  So a worker starts its scan
 * at a bound: the due time up to which its last claim accounted for every
 * row it met (claimed it, or remembered the earliest it left due).  Rows
 * that become visible below that bound later are reported to the bound by
 * the transactions that write them, at their end, in the due floor of each
 * worker slot of the namespace:
 *
 *   - a transaction that called delta._wake(namespace) (inform, retry,
 *     invalidate, expiry, hand-back, end of lost runs) or recorded a
 *     worker's outcomes writes no due time before its own start: at commit
 *     the floor goes down to its start time; at abort, to -infinity (rows it
 *     locked, and claims skipped, stay due with their old due times);
 *   - a claim (delta._claim_begin) that aborts: -infinity, for the same
 *     reason; a claim that commits and left locked rows due (caps,
 *     suspects): their earliest due time.
 *
 * A floor is lowered after the commit is visible and taken (exchanged for
 * "none") before the claim's snapshot, so a row committed in between is
 * either seen by the claim or in the floor of the next one.  What no
 * report covers (a row a user locked by hand, a prepared transaction
 * rolled back, a snooze shorter than its own commit) is found by the scan
 * from the start that every worker makes at least every
 * delta.poll_interval.
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
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(delta_wake);
PG_FUNCTION_INFO_V1(delta_wake_any);
PG_FUNCTION_INFO_V1(delta_namespaces_changed);
PG_FUNCTION_INFO_V1(delta_claim_begin);
PG_FUNCTION_INFO_V1(delta_claim_end);

/* What the end of this transaction reports to the due floors of a namespace. */
typedef struct DueReport
{
	char	   *namespace;		/* "" = every namespace of the database */
	TimestampTz at_commit;		/* lowest due time made visible; DT_NOEND: none */
	bool		at_abort;		/* an abort lowers the floors to -infinity */
	bool		wake;			/* and wakes an idle worker (not for outcomes) */
} DueReport;

/* The lists live in TopTransactionContext and die with the transaction. */
static List *namespaces_to_wake = NIL;
static List *databases_to_probe = NIL;
static List *due_reports = NIL;

/* This worker's claim scan bound, and when it last scanned from the start. */
static TimestampTz claim_scan_from = DT_NOBEGIN;
static TimestampTz last_full_scan = 0;

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

/*
 * Lowers to at the due floor of every worker of namespace ("" = all) in
 * this database; call after the commit is visible.
 */
static void
lower_due_floors(const char *namespace, TimestampTz at)
{
	LWLockAcquire(delta_shared->lock, LW_SHARED);
	for (int i = 0; i < delta_shared->nslots; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];
		uint64		old;

		if (slot->role != DELTA_ROLE_WORKER || slot->dboid != MyDatabaseId ||
			(namespace[0] != '\0' && strcmp(slot->namespace, namespace) != 0))
			continue;
		old = pg_atomic_read_u64(&slot->due_floor);
		while ((TimestampTz) old > at &&
			   !pg_atomic_compare_exchange_u64(&slot->due_floor, &old, (uint64) at))
			;
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

/*
 * The due floors this transaction's end lowers (see the banner): call
 * after the commit is visible, or at abort.
 */
static void
report_due_floors(bool committed)
{
	ListCell   *lc;
	TimestampTz started = GetCurrentTransactionStartTimestamp();

	foreach(lc, namespaces_to_wake)
	{
		lower_due_floors((const char *) lfirst(lc), committed ? started : DT_NOBEGIN);
		/* at commit, the caller wakes them */
		if (!committed)
			wake_idle_workers((const char *) lfirst(lc), false);
	}
	foreach(lc, due_reports)
	{
		DueReport  *r = lfirst(lc);
		TimestampTz at = committed ? r->at_commit : r->at_abort ? DT_NOBEGIN : DT_NOEND;

		if (at == DT_NOEND)
			continue;
		lower_due_floors(r->namespace, at);
		/* an idle worker may now have work it did not see */
		if (r->wake || !committed)
			wake_idle_workers(r->namespace, false);
	}
}

static void
delta_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			report_due_floors(true);
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
			if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
				report_due_floors(false);

			/*
			 * PREPARE frees the transaction's memory, lists included.  What a
			 * prepared transaction informed is woken at COMMIT PREPARED (see
			 * delta_wake_after_commit_prepared); the launcher probes now and
			 * again then.
			 */
			/* FALLTHROUGH */
		case XACT_EVENT_PREPARE:
			foreach(lc, databases_to_probe)
				delta_mark_database_dirty(lfirst_oid(lc));
			namespaces_to_wake = NIL;
			databases_to_probe = NIL;
			due_reports = NIL;
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
	lower_due_floors("", DT_NOBEGIN);
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

/* The report of namespace in this transaction's due_reports, made if new. */
static DueReport *
due_report(const char *namespace)
{
	ListCell   *lc;
	MemoryContext old;
	DueReport  *r;

	foreach(lc, due_reports)
	{
		r = lfirst(lc);
		if (strcmp(r->namespace, namespace) == 0)
			return r;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	r = palloc(sizeof(DueReport));
	r->namespace = pstrdup(namespace);
	r->at_commit = DT_NOEND;
	r->at_abort = false;
	r->wake = false;
	due_reports = lappend(due_reports, r);
	MemoryContextSwitchTo(old);
	return r;
}

/*
 * The worker recorded outcomes: due times it wrote (a rerun, a snooze, a
 * retry) are no earlier than this transaction's start.
 */
void
delta_report_outcomes_at_commit(const char *namespace)
{
	DueReport  *r;

	if (delta_shared == NULL)
		return;
	r = due_report(namespace);
	r->at_commit = Min(r->at_commit, GetCurrentTransactionStartTimestamp());
}

/*
 * Where the next claim of this worker starts its scan of the due index:
 * its bound lowered by what was reported since the last claim, or
 * -infinity when it has not scanned from the start for delta.poll_interval.
 * Call before the claim's transaction starts.
 */
TimestampTz
delta_claim_scan_from(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz reported = (TimestampTz) pg_atomic_exchange_u64(&MyDeltaSlot->due_floor,
																  (uint64) DT_NOEND);

	claim_scan_from = Min(claim_scan_from, reported);
	if (claim_scan_from == DT_NOBEGIN ||
		now - last_full_scan >= (TimestampTz) delta_poll_interval_ms * 1000)
	{
		claim_scan_from = DT_NOBEGIN;
		last_full_scan = now;
	}
	return claim_scan_from;
}

/*
 * SQL: delta._claim_begin(namespace text), before a claim locks rows: if
 * the transaction aborts, rows it locked stay due with their old due times
 * below the bounds of claims that skipped them.
 */
Datum
delta_claim_begin(PG_FUNCTION_ARGS)
{
	if (delta_shared != NULL)
		due_report(text_to_cstring(PG_GETARG_TEXT_PP(0)))->at_abort = true;
	PG_RETURN_VOID();
}

/*
 * SQL: delta._claim_end(namespace text, next_from timestamptz, left_behind
 * timestamptz), after a claim: left_behind (if not NULL) is the earliest
 * due time of a row it locked and left due, which the other workers' bounds
 * may have passed; next_from (if not NULL) is this worker's next bound.
 */
Datum
delta_claim_end(PG_FUNCTION_ARGS)
{
	if (delta_shared == NULL)
		PG_RETURN_VOID();
	if (!PG_ARGISNULL(2))
	{
		DueReport  *r = due_report(text_to_cstring(PG_GETARG_TEXT_PP(0)));

		r->at_commit = Min(r->at_commit, PG_GETARG_TIMESTAMPTZ(2));
		r->wake = true;
	}
	if (!PG_ARGISNULL(1) && MyDeltaSlot != NULL && MyDeltaSlot->role == DELTA_ROLE_WORKER)
		claim_scan_from = PG_GETARG_TIMESTAMPTZ(1);
	PG_RETURN_VOID();
}
