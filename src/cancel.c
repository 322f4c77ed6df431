/*-------------------------------------------------------------------------
 *
 * cancel.c
 *	  delta.cancel of a pending resource: the run its worker holds is cut
 *	  short (or never starts), and the worker records it failed, not due.
 *	  SQL partner: operations.sql (delta.cancel calls delta._cancel_run).
 *
 * The cancelling session asks when it commits, never before (a cancel that
 * rolls back cuts nothing): it writes the resource into the cancels of the
 * holder's slot and, if that slot runs the resource now, sends it SIGUSR2.
 * The worker's handler turns the signal into a query cancel only while the
 * user code of that very run executes; at any other time it is swallowed,
 * so the worker's own claim and finish statements, an inform run and the
 * next run are never hit.  A worker looks for a request before it starts a
 * run, so a claimed run that is cancelled never starts.  The requests are
 * forgotten when the batch ends: a resource claimed again later is a new run.
 * (A stopping worker hands back what it did not start, cancelled or not.)
 *
 * The cancel's row lock on the resource lasts until after its commit
 * callback, and the worker's finish or hand-back of that row waits for it:
 * a request always lands while the run's batch is still in hand.
 *
 * Who sees whom: the worker publishes the run (the slot's resource_id,
 * then delta_in_user_code) before it looks for a request, the canceller
 * writes the request before it looks at the slot's run, each with a full
 * barrier in between; so either the worker finds the request, or the
 * canceller finds the run and signals it.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include <signal.h>

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "port/atomics.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(delta_cancel_run);

/* A run to cancel when the current transaction commits. */
typedef struct CancelRequest
{
	int64		resource_id;
	pid_t		pid;
	TimestampTz started_at;
} CancelRequest;

/* in TopTransactionContext: dies with the transaction */
static List *requests = NIL;

/* The resource whose run the signal may cut now (0: none); set by the worker. */
static volatile int64 watched_run = 0;

/* The handler asked for a query cancel that the run may not have taken. */
static volatile sig_atomic_t cancel_signalled = false;

/* The holder's slot of a run: a worker of this database, (pid, started_at). */
static DeltaSlot *
holder_slot(pid_t pid, TimestampTz started_at)
{
	for (int i = 0; i < delta_shared->nslots; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];

		if (slot->role == DELTA_ROLE_WORKER && slot->dboid == MyDatabaseId &&
			slot->pid == pid && slot->pid != 0 && slot->started_at == started_at)
			return slot;
	}
	return NULL;
}

/* Adds resource_id to slot's cancels; false when they are full. */
static bool
add_cancel(DeltaSlot *slot, int64 resource_id)
{
	int			free_entry = -1;

	for (int i = 0; i < DELTA_CANCELS_PER_SLOT; i++)
	{
		if (slot->cancels[i] == resource_id)
			return true;
		if (slot->cancels[i] == 0 && free_entry < 0)
			free_entry = i;
	}
	if (free_entry < 0)
		return false;
	slot->cancels[free_entry] = resource_id;
	return true;
}

/*
 * At commit: writes each request into its holder's slot and signals the
 * holders that run the resource now.  A holder that has left since is not
 * asked: the rescue ends its runs.
 */
static void
deliver_requests(void)
{
	ListCell   *lc;
	List	   *refused = NIL;

	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	foreach(lc, requests)
	{
		CancelRequest *r = lfirst(lc);
		DeltaSlot  *slot = holder_slot(r->pid, r->started_at);

		if (slot == NULL)
			continue;
		if (!add_cancel(slot, r->resource_id))
		{
			refused = lappend(refused, r);
			continue;
		}
		pg_memory_barrier();
		if (slot->resource_id == r->resource_id)
			(void) kill(slot->pid, SIGUSR2);
	}
	LWLockRelease(delta_shared->lock);

	foreach(lc, refused)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("the run of resource %lld was not cancelled: its worker has %d cancelled runs already",
						(long long) ((CancelRequest *) lfirst(lc))->resource_id,
						DELTA_CANCELS_PER_SLOT),
				 errhint("Cancel it again once the worker's other cancelled runs have ended.")));
}

static void
cancel_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			/* its list would not outlive PREPARE: the cancel would be lost */
			if (requests != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that cancelled a pending run"),
						 errdetail("delta.cancel of a pending resource asks its worker when the transaction commits.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (requests != NIL && delta_shared != NULL)
				deliver_requests();
			requests = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			requests = NIL;
			break;
		default:
			break;
	}
}

/* Called from _PG_init: every backend may cancel. */
void
delta_install_cancel_callback(void)
{
	RegisterXactCallback(cancel_xact_callback, NULL);
}

/*
 * SQL: delta._cancel_run(resource_id, holder_pid, holder_started_at) →
 * boolean.  Whether the holder is a worker of this database now; if so,
 * its run of resource_id is cancelled when the transaction commits.
 */
Datum
delta_cancel_run(PG_FUNCTION_ARGS)
{
	CancelRequest *r;
	MemoryContext old;
	bool		found;

	if (delta_shared == NULL)
		PG_RETURN_BOOL(false);
	LWLockAcquire(delta_shared->lock, LW_SHARED);
	found = holder_slot(PG_GETARG_INT32(1), PG_GETARG_TIMESTAMPTZ(2)) != NULL;
	LWLockRelease(delta_shared->lock);
	if (!found)
		PG_RETURN_BOOL(false);

	old = MemoryContextSwitchTo(TopTransactionContext);
	r = palloc(sizeof(CancelRequest));
	r->resource_id = PG_GETARG_INT64(0);
	r->pid = PG_GETARG_INT32(1);
	r->started_at = PG_GETARG_TIMESTAMPTZ(2);
	requests = lappend(requests, r);
	MemoryContextSwitchTo(old);
	PG_RETURN_BOOL(true);
}

/* Whether this process's slot holds a request for resource_id. */
static bool
requested(int64 resource_id)
{
	DeltaSlot  *slot = MyDeltaSlot;

	if (slot == NULL || resource_id == 0)
		return false;
	for (int i = 0; i < DELTA_CANCELS_PER_SLOT; i++)
		if (slot->cancels[i] == resource_id)
			return true;
	return false;
}

/*
 * SIGUSR2 of a namespace worker: a cancel of its run in progress.  A query
 * cancel, but only while the user code of the watched run executes and
 * its resource was asked for; else nothing (the latch wakes the worker).
 */
static void
handle_cancel(SIGNAL_ARGS)
{
	int			save_errno = errno;

	if (delta_in_user_code && requested(watched_run))
	{
		cancel_signalled = true;
		InterruptPending = true;
		QueryCancelPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Called by a namespace worker at start, before it unblocks signals. */
void
delta_install_cancel_handler(void)
{
	pqsignal(SIGUSR2, handle_cancel);
}

/*
 * Whether delta.cancel asked this worker to end its run of resource_id.
 * The caller published the run (delta_set_activity) first.
 */
bool
delta_cancel_requested(int64 resource_id)
{
	pg_memory_barrier();
	return requested(resource_id);
}

/* The run of resource_id may be cut by a signal from now on (0: no run). */
void
delta_watch_cancel(int64 resource_id)
{
	watched_run = resource_id;
}

/*
 * Called once user code may run (delta_in_user_code set): a request that
 * came before, and whose signal was swallowed, cancels the run now.
 */
void
delta_check_cancel(void)
{
	if (watched_run != 0 && delta_cancel_requested(watched_run))
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling statement due to delta.cancel")));
}

/*
 * Called as user code ends (delta_in_user_code cleared): a cancel the run
 * never took must not hit the worker's next statement.
 */
void
delta_swallow_cancel(void)
{
	if (cancel_signalled)
	{
		cancel_signalled = false;
		QueryCancelPending = false;
	}
}

/*
 * At the end of a batch, or when an error abandoned it: its requests are
 * moot, and no run is watched any more.
 */
void
delta_forget_cancels(void)
{
	DeltaSlot  *slot = MyDeltaSlot;

	watched_run = 0;
	if (slot == NULL)
		return;
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	memset(slot->cancels, 0, sizeof(slot->cancels));
	LWLockRelease(delta_shared->lock);
}
