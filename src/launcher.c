/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one static background worker per server that keeps, in
 *	  every database where delta is installed, each namespace's workers
 *	  running.
 *
 * Per database the launcher follows a small state machine kept in shared
 * memory (DeltaDatabase):
 *
 *	  dirty --(probe runs)--> installed with namespaces | not installed
 *	    ^                                   |
 *	    +-- namespace trigger, CREATE/DROP EXTENSION, worker exit at commit
 *
 * A probe (probe.c) is a short-lived worker that connects to the database
 * and reports whether the extension is there and which namespaces want how
 * many workers.  The launcher then reconciles: it registers a dynamic
 * worker for every wanted (namespace, index) without one, and asks every
 * worker nobody wants any more to stop after its current batch.  It never
 * connects to a database itself (only to the shared catalogs, to list the
 * databases), so it never blocks DROP DATABASE.
 *
 * The launcher starts only once recovery is finished, so nothing runs on a
 * standby and everything starts after promotion.  If it dies, the postmaster
 * restarts it and it adopts the workers that are still running.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define LAUNCHER_SLOT 0
#define PROBE_SLOT 1
#define FIRST_WORKER_SLOT 2
#define LAUNCHER_NAP_MS 5000	/* a safety net: every change sets our latch */
#define DATABASE_RESCAN_MS 10000
#define RESTART_DELAY_MS 1000

/* Handles of the processes this launcher registered, by slot. */
static BackgroundWorkerHandle **handles;

/* When each slot last had a process registered, to slow crash loops. */
static TimestampTz *last_start;

static bool capacity_reported = false;

/* Scratch memory of one loop of the launcher, reset at the top of each. */
static MemoryContext loop_cxt;

/* Registers the launcher; called from _PG_init. */
void
delta_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "delta");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "delta_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "delta launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "delta launcher");
	RegisterBackgroundWorker(&worker);
}

/* Registers a dynamic worker (probe or namespace worker) for slot slotno. */
static bool
start_process(int slotno, const char *function, const char *name)
{
	BackgroundWorker worker;
	MemoryContext old;
	bool		started;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	worker.bgw_main_arg = Int32GetDatum(slotno);
	worker.bgw_notify_pid = MyProcPid;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "delta");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "delta worker");

	last_start[slotno] = GetCurrentTimestamp();
	if (handles[slotno] != NULL)
		pfree(handles[slotno]);
	handles[slotno] = NULL;

	/* handles live as long as the launcher */
	old = MemoryContextSwitchTo(TopMemoryContext);
	started = RegisterDynamicBackgroundWorker(&worker, &handles[slotno]);
	MemoryContextSwitchTo(old);
	return started;
}

/* Frees slot slotno; caller holds the lock exclusively. */
static void
release_slot(int slotno)
{
	memset(&delta_shared->slots[slotno], 0, sizeof(DeltaSlot));
}

/*
 * Databases a probe found without delta: they give their shared entry back
 * (the table holds DELTA_MAX_DATABASES), and get one again when CREATE
 * EXTENSION marks them dirty.  Launcher-local.
 */
static List *without_delta = NIL;
static bool table_full_reported = false;

/* Whether an entry waits for a probe or is being probed; lock held. */
static bool
any_database_pending(void)
{
	for (int i = 0; i < DELTA_MAX_DATABASES; i++)
	{
		DeltaDatabase *db = &delta_shared->databases[i];

		if (OidIsValid(db->dboid) && (db->dirty || !db->installed))
			return true;
	}
	return false;
}

/*
 * Reads pg_database: adds an entry (to be probed) for each database we do
 * not know to be without delta, forgets the databases that are gone, and
 * gives back the entries of databases a probe found without delta.
 */
static void
scan_databases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *dboids = NIL;
	MemoryContext caller_cxt = CurrentMemoryContext;
	MemoryContext old;
	Oid			unserved = InvalidOid;
	ListCell   *lc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
		{
			/* the list must outlive the transaction */
			old = MemoryContextSwitchTo(loop_cxt);
			dboids = lappend_oid(dboids, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller_cxt);

	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < DELTA_MAX_DATABASES; i++)
	{
		DeltaDatabase *db = &delta_shared->databases[i];
		DeltaSlot  *probe = &delta_shared->slots[PROBE_SLOT];

		if (!OidIsValid(db->dboid))
			continue;
		if (!list_member_oid(dboids, db->dboid))
			memset(db, 0, sizeof(DeltaDatabase));
		else if (list_member_oid(without_delta, db->dboid))
		{
			/* asked to look again (CREATE EXTENSION marked it dirty) */
			old = MemoryContextSwitchTo(TopMemoryContext);
			without_delta = list_delete_oid(without_delta, db->dboid);
			MemoryContextSwitchTo(old);
		}
		else if (!db->dirty && !db->installed && db->stopping == 0 &&
				 !(probe->role == DELTA_ROLE_PROBE && probe->dboid == db->dboid))
		{
			/* probed, no delta: its entry goes to a database that may have it */
			old = MemoryContextSwitchTo(TopMemoryContext);
			without_delta = lappend_oid(without_delta, db->dboid);
			MemoryContextSwitchTo(old);
			memset(db, 0, sizeof(DeltaDatabase));
		}
	}
	/* forget the databases that are gone */
	foreach(lc, without_delta)
	{
		if (!list_member_oid(dboids, lfirst_oid(lc)))
			without_delta = foreach_delete_current(without_delta, lc);
	}

	for (int i = 0; i < list_length(dboids); i++)
	{
		Oid			dboid = list_nth_oid(dboids, i);

		if (!list_member_oid(without_delta, dboid) && delta_find_database(dboid, true) == NULL)
			unserved = dboid;
	}
	if (OidIsValid(unserved) && !any_database_pending() && !table_full_reported)
	{
		ereport(WARNING,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("delta: more than %d databases have delta, database %u is not served",
						DELTA_MAX_DATABASES, unserved),
				 errhint("Reported once; databases beyond the limit get workers when others drop the extension.")));
		table_full_reported = true;
	}
	LWLockRelease(delta_shared->lock);
}

/* Whether some database waits for a probe. */
static bool
any_database_dirty(void)
{
	bool		dirty = false;

	LWLockAcquire(delta_shared->lock, LW_SHARED);
	for (int i = 0; i < DELTA_MAX_DATABASES; i++)
	{
		DeltaDatabase *db = &delta_shared->databases[i];

		if (OidIsValid(db->dboid) && db->dirty && db->stopping == 0)
			dirty = true;
	}
	LWLockRelease(delta_shared->lock);
	return dirty;
}

/* Starts a probe for one dirty database, unless a probe already runs. */
static void
start_probe(void)
{
	DeltaSlot  *slot = &delta_shared->slots[PROBE_SLOT];
	DeltaDatabase *target = NULL;

	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	if (slot->role == DELTA_ROLE_FREE)
	{
		for (int i = 0; i < DELTA_MAX_DATABASES && target == NULL; i++)
		{
			DeltaDatabase *db = &delta_shared->databases[i];

			if (OidIsValid(db->dboid) && db->dirty && db->stopping == 0)
				target = db;
		}
		if (target != NULL)
		{
			target->dirty = false;
			slot->role = DELTA_ROLE_PROBE;
			slot->dboid = target->dboid;
			slot->registered_at = GetCurrentTimestamp();
		}
	}
	LWLockRelease(delta_shared->lock);

	if (target == NULL)
		return;
	if (!start_process(PROBE_SLOT, "delta_probe_main", "delta probe"))
	{
		LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
		release_slot(PROBE_SLOT);
		target->dirty = true;
		LWLockRelease(delta_shared->lock);
		if (!capacity_reported)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("delta: could not start a probe of database %u", target->dboid),
					 errhint("Consider increasing the configuration parameter \"max_worker_processes\".")));
		capacity_reported = true;
	}
}

/* Whether the worker in slot is still wanted by its database's namespaces. */
static bool
worker_wanted(DeltaSlot *slot)
{
	DeltaDatabase *db = delta_find_database(slot->dboid, false);

	if (db == NULL || !db->installed || db->stopping > 0)
		return false;
	for (int i = 0; i < db->nnamespaces; i++)
	{
		if (strcmp(db->namespaces[i].name, slot->namespace) == 0)
			return slot->index < db->namespaces[i].workers;
	}
	return false;
}

static DeltaSlot *
find_worker(Oid dboid, const char *namespace, int index)
{
	for (int i = FIRST_WORKER_SLOT; i < delta_shared->nslots; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];

		if (slot->role == DELTA_ROLE_WORKER && slot->dboid == dboid &&
			slot->index == index && strcmp(slot->namespace, namespace) == 0)
			return slot;
	}
	return NULL;
}

static int
find_free_worker_slot(void)
{
	for (int i = FIRST_WORKER_SLOT; i < delta_shared->nslots; i++)
	{
		if (delta_shared->slots[i].role == DELTA_ROLE_FREE)
			return i;
	}
	return -1;
}

/*
 * Makes the running workers match what the probes found: asks unwanted
 * workers to stop, registers the missing ones.  Returns how long the
 * launcher may sleep before a worker held back by the restart delay can
 * start.
 */
static long
reconcile_workers(void)
{
	long		nap_ms = LAUNCHER_NAP_MS;
	List	   *to_start = NIL;
	bool		short_of_slots = false;
	TimestampTz now = GetCurrentTimestamp();
	ListCell   *lc;

	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	for (int i = FIRST_WORKER_SLOT; i < delta_shared->nslots; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];

		if (slot->role == DELTA_ROLE_WORKER && !slot->stop_requested &&
			!worker_wanted(slot))
		{
			slot->stop_requested = true;
			if (slot->latch != NULL)
				SetLatch(slot->latch);
		}
	}
	/*
	 * Worker index outermost: when slots run short, every namespace gets its
	 * first worker before any gets a second.
	 */
	for (int index = 0; index < delta_max_workers && !short_of_slots; index++)
	{
		for (int d = 0; d < DELTA_MAX_DATABASES && !short_of_slots; d++)
		{
			DeltaDatabase *db = &delta_shared->databases[d];

			if (!OidIsValid(db->dboid) || !db->installed || db->stopping > 0)
				continue;
			for (int n = 0; n < db->nnamespaces; n++)
			{
				int			slotno;
				DeltaSlot  *slot;

				if (index >= db->namespaces[n].workers ||
					find_worker(db->dboid, db->namespaces[n].name, index) != NULL)
					continue;
				slotno = find_free_worker_slot();
				if (slotno < 0)
				{
					short_of_slots = true;
					break;
				}
				if (last_start[slotno] != 0 &&
					TimestampDifferenceMilliseconds(last_start[slotno], now) < RESTART_DELAY_MS)
				{
					/* come back exactly when the delay has passed */
					long		wait = RESTART_DELAY_MS -
						TimestampDifferenceMilliseconds(last_start[slotno], now);

					nap_ms = Min(nap_ms, Max(wait, 1));
					continue;
				}
				slot = &delta_shared->slots[slotno];
				slot->role = DELTA_ROLE_WORKER;
				slot->dboid = db->dboid;
				strlcpy(slot->namespace, db->namespaces[n].name, DELTA_NAME_MAX);
				slot->index = index;
				slot->registered_at = now;
				to_start = lappend_int(to_start, slotno);
			}
		}
	}
	LWLockRelease(delta_shared->lock);

	if (short_of_slots && !capacity_reported)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("delta: namespaces want more workers than delta.max_workers (%d) allows",
						delta_max_workers),
				 errdetail("Some namespaces run fewer workers than their max_workers."),
				 errhint("Increase delta.max_workers (and max_worker_processes), or lower the namespaces' max_workers.")));
		capacity_reported = true;
	}

	foreach(lc, to_start)
	{
		int			slotno = lfirst_int(lc);
		DeltaSlot  *slot = &delta_shared->slots[slotno];
		char		name[BGW_MAXLEN];

		snprintf(name, sizeof(name), "delta worker %s/%d", slot->namespace, slot->index);
		if (!start_process(slotno, "delta_worker_main", name))
		{
			if (!capacity_reported)
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("delta: could not start worker %d of namespace \"%s\" in database %u",
								slot->index, slot->namespace, slot->dboid),
						 errdetail("No background worker slot is free."),
						 errhint("Consider increasing the configuration parameter \"max_worker_processes\".")));
			capacity_reported = true;
			LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
			release_slot(slotno);
			LWLockRelease(delta_shared->lock);
		}
	}
	if (to_start == NIL && !short_of_slots)
		capacity_reported = false;
	return nap_ms;
}

/*
 * Frees slots whose process was registered but will never attach: the
 * postmaster could not start it, or it died before attaching.
 */
static void
reap_unstarted(void)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = PROBE_SLOT; i < delta_shared->nslots; i++)
	{
		DeltaSlot  *slot = &delta_shared->slots[i];
		bool		gone = false;
		pid_t		pid;

		LWLockAcquire(delta_shared->lock, LW_SHARED);
		if (slot->role == DELTA_ROLE_FREE || slot->pid != 0)
		{
			LWLockRelease(delta_shared->lock);
			continue;
		}
		LWLockRelease(delta_shared->lock);

		if (handles[i] != NULL)
			gone = GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED;
		else
			/* registered by a launcher before us: give it a while */
			gone = TimestampDifferenceMilliseconds(slot->registered_at, now) > 10000;

		if (gone)
		{
			LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
			if (slot->pid == 0)
				release_slot(i);
			LWLockRelease(delta_shared->lock);
		}
	}
}

void
delta_launcher_main(Datum main_arg)
{
	DeltaSlot  *slot;
	TimestampTz last_scan = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	slot = &delta_shared->slots[LAUNCHER_SLOT];
	memset(slot, 0, sizeof(DeltaSlot));
	slot->role = DELTA_ROLE_LAUNCHER;
	LWLockRelease(delta_shared->lock);
	delta_attach_slot(LAUNCHER_SLOT);
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	delta_shared->launcher_latch = MyLatch;
	slot->activity = DELTA_ACTIVITY_IDLE;
	LWLockRelease(delta_shared->lock);

	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(BackgroundWorkerHandle *) * delta_shared->nslots);
	last_start = MemoryContextAllocZero(TopMemoryContext,
										sizeof(TimestampTz) * delta_shared->nslots);

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("delta launcher");
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "delta launcher loop",
									 ALLOCSET_DEFAULT_SIZES);
	ereport(LOG, (errcode(ERRCODE_SUCCESSFUL_COMPLETION), errmsg("delta launcher started")));

	for (;;)
	{
		TimestampTz now;
		long		nap_ms;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);

		now = GetCurrentTimestamp();
		if (last_scan == 0 || any_database_dirty() ||
			TimestampDifferenceMilliseconds(last_scan, now) >= DATABASE_RESCAN_MS)
		{
			scan_databases();
			last_scan = now;
		}
		reap_unstarted();
		start_probe();
		nap_ms = reconcile_workers();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap_ms, PG_WAIT_EXTENSION);
	}
}
