/*-------------------------------------------------------------------------
 *
 * external.c
 *	  The sessions of external workers: the C side of delta.claim (README
 *	  "External workers").
 *
 * A session that claims is a holder like a worker: its claims are lost
 * when it exits.  So that the rescue need not wait for the session's
 * status entry to go, the session records its exit in shared memory first
 * (before_shmem_exit: the open transaction is aborted after that, and a
 * rescuer waits for its row locks), delta._holder_alive treats a recorded
 * exit as dead, and the exit wakes the database's workers and waiting
 * claimers, which rescue at once.
 *
 * delta.claim with a wait registers the session as a waiter of its
 * namespace before the claim's snapshot and sleeps on its latch; a
 * committing inform sets the latches of the namespace's waiters as it does
 * for idle workers (wakeup.c), so a wake-up can be early but never lost.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(delta_check_claim_outside_block);
PG_FUNCTION_INFO_V1(delta_enlist_claimer);
PG_FUNCTION_INFO_V1(delta_claimer_exited_since);
PG_FUNCTION_INFO_V1(delta_await_begin);
PG_FUNCTION_INFO_V1(delta_await_work);

static bool enlisted = false;
static DeltaClaimWaiter *my_waiter = NULL;

/* One waiter per backend. */
Size
delta_claim_waiters_size(void)
{
	return mul_size(MaxBackends, sizeof(DeltaClaimWaiter));
}

static void
forget_waiter(void)
{
	if (my_waiter == NULL)
		return;
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	memset(my_waiter, 0, sizeof(DeltaClaimWaiter));
	LWLockRelease(delta_shared->lock);
	my_waiter = NULL;
}

/* A wait ends with its transaction, however that ends. */
static void
claimer_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		forget_waiter();
}

/* Called from _PG_init. */
void
delta_install_claimer_callbacks(void)
{
	RegisterXactCallback(claimer_xact_callback, NULL);
}

/*
 * Sets the latches of the waiters of namespace in this database (an empty
 * namespace: of every namespace), all of them: the first to claim wins.
 */
void
delta_wake_claim_waiters(const char *namespace)
{
	if (delta_shared == NULL)
		return;
	LWLockAcquire(delta_shared->lock, LW_SHARED);
	for (int i = 0; i < delta_shared->nwaiters; i++)
	{
		DeltaClaimWaiter *w = &delta_shared->waiters[i];

		if (w->pid != 0 && w->dboid == MyDatabaseId &&
			(namespace[0] == '\0' || strcmp(w->namespace, namespace) == 0))
			SetLatch(w->latch);
	}
	LWLockRelease(delta_shared->lock);
}

/* Whether the session (pid, started_at) claimed and has exited since. */
bool
delta_claimer_exited(int pid, TimestampTz started_at)
{
	bool		exited = false;

	if (delta_shared == NULL)
		return false;
	LWLockAcquire(delta_shared->lock, LW_SHARED);
	for (int i = 0; i < DELTA_CLAIMER_EXITS_KEPT && !exited; i++)
		exited = delta_shared->exits[i].pid == pid &&
			delta_shared->exits[i].started_at == started_at;
	LWLockRelease(delta_shared->lock);
	return exited;
}

uint32
delta_claimer_exit_count(void)
{
	uint32		count;

	if (delta_shared == NULL)
		return 0;
	LWLockAcquire(delta_shared->lock, LW_SHARED);
	count = delta_shared->claimer_exits;
	LWLockRelease(delta_shared->lock);
	return count;
}

/*
 * before_shmem_exit of a session that claimed: records the exit, then
 * wakes this database's workers (the rescue of their namespace, or of all
 * for the leader) and waiting claimers (the rescue of theirs).
 */
static void
claimer_exit(int code, Datum arg)
{
	DeltaClaimerExit *entry;

	if (delta_shared == NULL)
		return;
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	if (my_waiter != NULL)
		memset(my_waiter, 0, sizeof(DeltaClaimWaiter));
	my_waiter = NULL;
	entry = &delta_shared->exits[delta_shared->claimer_exits % DELTA_CLAIMER_EXITS_KEPT];
	entry->pid = MyProcPid;
	entry->started_at = MyStartTimestamp;
	delta_shared->claimer_exits++;
	for (int i = 0; i < delta_shared->nslots; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];

		if (slot->role == DELTA_ROLE_WORKER && slot->dboid == MyDatabaseId && slot->latch != NULL)
			SetLatch(slot->latch);
	}
	for (int i = 0; i < delta_shared->nwaiters; i++)
	{
		DeltaClaimWaiter *w = &delta_shared->waiters[i];

		if (w->pid != 0 && w->dboid == MyDatabaseId)
			SetLatch(w->latch);
	}
	LWLockRelease(delta_shared->lock);
}

/* SQL: delta._check_claim_outside_block() */
Datum
delta_check_claim_outside_block(PG_FUNCTION_ARGS)
{
	if (IsTransactionBlock())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("delta.claim cannot run inside a transaction block"),
				 errdetail("A claim must be committed before its work starts, and a transaction block commits later."),
				 errhint("Call delta.claim alone, in autocommit mode.")));
	PG_RETURN_VOID();
}

/* SQL: delta._enlist_claimer() -- this session holds claims from now on */
Datum
delta_enlist_claimer(PG_FUNCTION_ARGS)
{
	if (!enlisted)
	{
		before_shmem_exit(claimer_exit, (Datum) 0);
		enlisted = true;
	}
	PG_RETURN_VOID();
}

/*
 * SQL: delta._claimer_exited_since() -- whether a claiming session exited
 * since this session last asked (the first time: whether one ever did).
 */
Datum
delta_claimer_exited_since(PG_FUNCTION_ARGS)
{
	static uint32 seen = 0;
	uint32		count = delta_claimer_exit_count();
	bool		changed = count != seen;

	seen = count;
	PG_RETURN_BOOL(changed);
}

/*
 * SQL: delta._await_begin(namespace) -- from now until the transaction
 * ends, a commit that wakes namespace sets this session's latch.  Call it
 * before the claim that may find nothing, then delta._await_work.
 */
Datum
delta_await_begin(PG_FUNCTION_ARGS)
{
	char	   *namespace = text_to_cstring(PG_GETARG_TEXT_PP(0));

	ResetLatch(MyLatch);
	if (delta_shared == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < delta_shared->nwaiters && my_waiter == NULL; i++)
	{
		if (delta_shared->waiters[i].pid == 0)
			my_waiter = &delta_shared->waiters[i];
	}
	if (my_waiter != NULL)
	{
		my_waiter->pid = MyProcPid;
		my_waiter->dboid = MyDatabaseId;
		strlcpy(my_waiter->namespace, namespace, DELTA_NAME_MAX);
		my_waiter->latch = MyLatch;
	}
	LWLockRelease(delta_shared->lock);
	PG_RETURN_VOID();
}

/*
 * SQL: delta._await_work(timeout interval) -> boolean: sleeps until woken
 * (true) or timeout.  A cancel or a terminate ends the wait as usual.
 */
Datum
delta_await_work(PG_FUNCTION_ARGS)
{
	Interval   *timeout = PG_GETARG_INTERVAL_P(0);
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
																TimestampTzGetDatum(now),
																IntervalPGetDatum(timeout)));
	long		ms = TimestampDifferenceMilliseconds(now, until);
	int			rc;

	if (ms <= 0)
		PG_RETURN_BOOL(false);
	rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
				   ms, PG_WAIT_EXTENSION);
	CHECK_FOR_INTERRUPTS();
	PG_RETURN_BOOL((rc & WL_LATCH_SET) != 0);
}
