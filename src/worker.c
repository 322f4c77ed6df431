/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  A namespace worker: a dynamic background worker that loops over
 *	  batches (claim.c) of its namespace and sleeps on its latch when there
 *	  is nothing due.
 *
 * The loop never sleeps after a claim that found work.  A claim takes only
 * what the worker will start within delta.commit_delay (claim.c sizes it
 * from the run times it saw), and a full claim wakes an idle sibling, so
 * slow work spreads over the namespace's workers.  When idle it is woken by
 * a committed inform of its namespace (wakeup.c), by the launcher asking it
 * to stop, when the earliest due time of its namespace comes (a back-off
 * retry, a snooze), or after delta.poll_interval as a safety net.  Before
 * its first claim, and again every maintenance interval, it runs a
 * maintenance tick (maintenance.c): the leader's passes if it leads its
 * database, else a rescue of its own namespace.  It also runs the inform
 * runs that are due (informer.c): at once when delta.schedule_inform
 * commits, and, if it leads, once a second.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "claim.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

/* Marks this worker idle (or not) where committing backends look. */
static void
set_idle(bool idle)
{
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	MyDeltaSlot->idle = idle;
	LWLockRelease(delta_shared->lock);
}

/* After claiming a full batch, another idle worker may find work too. */
static void
wake_a_sibling(void)
{
	LWLockAcquire(delta_shared->lock, LW_SHARED);
	for (int i = 0; i < delta_shared->nslots; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];

		if (slot != MyDeltaSlot && slot->role == DELTA_ROLE_WORKER && slot->idle &&
			slot->latch != NULL && slot->dboid == MyDeltaSlot->dboid &&
			strcmp(slot->namespace, MyDeltaSlot->namespace) == 0)
		{
			slot->idle = false;
			SetLatch(slot->latch);
			break;
		}
	}
	LWLockRelease(delta_shared->lock);
}

/* How often one repeating error is logged. */
#define ERROR_LOG_INTERVAL_MS 60000

/*
 * Logs an error the worker caught outside a run, but the same message at
 * most once per ERROR_LOG_INTERVAL_MS.
 */
static void
log_caught_error(ErrorData *edata)
{
	static char last_message[256] = "";
	static TimestampTz last_logged = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (strncmp(last_message, edata->message, sizeof(last_message) - 1) == 0 &&
		!TimestampDifferenceExceeds(last_logged, now, ERROR_LOG_INTERVAL_MS))
		return;
	strlcpy(last_message, edata->message, sizeof(last_message));
	last_logged = now;
	ereport(LOG,
			(errcode(edata->sqlerrcode),
			 errmsg("delta: the worker goes on after an error: %s", edata->message),
			 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
			 errhint("The same error is logged at most once a minute.")));
}

/*
 * The worker's recovery from an ERROR outside a run (a run's own errors
 * are caught by callback.c): abort the transaction, log the error, fail
 * the runs it lost and hand back what was not started, then go on.  If
 * even that fails, the worker exits and the rescue takes over.
 */
static void
recover_from_error(MemoryContext cxt)
{
	ErrorData  *edata;
	static int	depth = 0;

	delta_reset_error_context();
	HOLD_INTERRUPTS();
	disable_all_timeouts(false);
	QueryCancelPending = false;
	delta_in_user_code = false;
	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(cxt);
	RESUME_INTERRUPTS();

	log_caught_error(edata);
	if (++depth > 1)
	{
		ereport(LOG,
				(errcode(edata->sqlerrcode),
				 errmsg("delta: the worker exits: it could not record the runs it lost to an error")));
		proc_exit(1);
	}
	delta_abandon_batch(edata);
	delta_abandon_inform_run(edata);
	depth = 0;
}

void
delta_worker_main(Datum main_arg)
{
	DeltaSlot  *slot = delta_attach_slot(DatumGetInt32(main_arg));
	char		namespace[DELTA_NAME_MAX];
	char		what[DELTA_NAME_MAX + 32];
	MemoryContext batch_cxt;
	MemoryContext error_cxt;
	sigjmp_buf	local_sigjmp_buf;
	/* kept across an error (longjmp): not in registers */
	volatile TimestampTz next_maintenance = 0;
	volatile TimestampTz next_inform_check = 0;
	volatile uint32 seen_requests = 0;
	volatile uint32 seen_claimer_exits = 0;
	/* the last claim took all it asked for: the next one skips the probes */
	volatile bool after_full_claim = false;

	strlcpy(namespace, slot->namespace, DELTA_NAME_MAX);
	snprintf(what, sizeof(what), "delta worker %s/%d", namespace, slot->index);
	delta_background_setup(slot, what, true);

	batch_cxt = AllocSetContextCreate(TopMemoryContext, "delta batch",
									  ALLOCSET_DEFAULT_SIZES);
	error_cxt = AllocSetContextCreate(TopMemoryContext, "delta error",
									  ALLOCSET_DEFAULT_SIZES);
	ereport(DEBUG1, (errmsg("%s started", what)));

	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		MemoryContextReset(error_cxt);
		recover_from_error(error_cxt);
		after_full_claim = false;
		/* an error that repeats at once must not make the worker spin */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000, PG_WAIT_EXTENSION);
	}
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		DeltaClaimed *claimed = NULL;
		int			n;
		long		timeout = delta_poll_interval_ms;
		uint32		requests;
		int			claim_size;
		TimestampTz next_due = DT_NOEND;

		/* before the checks: a request that comes after them sets it again */
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (slot->stop_requested || delta_stop_signalled)
			break;

		MemoryContextSwitchTo(batch_cxt);
		MemoryContextReset(batch_cxt);

		if (delta_enabled)
		{
			TimestampTz now = GetCurrentTimestamp();
			uint32		claimer_exits = delta_claimer_exit_count();

			if (now >= next_maintenance)
			{
				/* set first: a pass that fails is tried again an interval later */
				next_maintenance = TimestampTzPlusMilliseconds(now, delta_maintenance_interval_ms);
				seen_claimer_exits = claimer_exits;
				delta_maintenance(namespace);
			}
			else if (claimer_exits != seen_claimer_exits)
			{
				/* an external worker's session ended: its claims are lost now */
				seen_claimer_exits = claimer_exits;
				delta_rescue(slot->leader ? NULL : namespace);
			}

			/*
			 * Inform runs: any worker runs one at once when schedule_inform
			 * asks; the leader also looks for due ones once a second (it
			 * queues the periodic ones), so idle workers stay cheap.
			 */
			requests = delta_inform_requests(MyDatabaseId);
			if ((slot->leader && now >= next_inform_check) || requests != seen_requests)
			{
				seen_requests = requests;
				next_inform_check = TimestampTzPlusMilliseconds(now, 1000);
				if (delta_run_due_inform(batch_cxt))
					continue;
			}

			/* idle before the claim's snapshot: no wake-up is lost */
			set_idle(true);
			delta_set_activity(DELTA_ACTIVITY_CLAIMING, 0, NULL);
			claim_size = delta_claim_size(delta_batch_size);
			n = delta_claim_batch(namespace, claim_size, !after_full_claim, batch_cxt,
								  &claimed, &next_due);
			after_full_claim = n == claim_size;
			if (n < 0)
			{
				/* extension or namespace gone: let the launcher look again */
				delta_mark_database_dirty(MyDatabaseId);
				break;
			}
			if (n > 0)
			{
				set_idle(false);
				/* a full claim leaves work behind: an idle sibling takes it */
				if (n == claim_size)
					wake_a_sibling();
				delta_work_batch(claimed, n, batch_cxt);
				continue;
			}
			timeout = Min(timeout, TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
																   next_maintenance) + 1);
			/* back-off retries and snoozes: wake when the first one is due */
			if (next_due != DT_NOEND)
				timeout = Min(timeout, TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
																	   next_due) + 1);
		}

		delta_set_activity(DELTA_ACTIVITY_IDLE, 0, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
	}

	ereport(DEBUG1, (errmsg("%s stopping", what)));
	proc_exit(0);
}
