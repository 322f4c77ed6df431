/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  delta's shared memory: one slot per delta process, the table of
 *	  databases the launcher follows, and what external.c keeps of the
 *	  sessions of external workers.
 *
 * A slot is taken by the launcher when it registers a process and filled
 * in by the process when it starts; the process frees it when it exits, so
 * a slot with a pid always names a live process (a crash resets all of
 * shared memory).  One LWLock protects everything but the activity fields,
 * which only their owner writes; it is taken a few times per batch, never
 * per resource.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

DeltaShared *delta_shared = NULL;
DeltaSlot  *MyDeltaSlot = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* One slot per namespace worker, plus the launcher and one probe. */
static int
delta_slot_count(void)
{
	return delta_max_workers + 2;
}

/* The slots, then the claim waiters (external.c) */
static Size
delta_slots_size(void)
{
	return add_size(offsetof(DeltaShared, slots),
					mul_size(delta_slot_count(), sizeof(DeltaSlot)));
}

static Size
delta_shmem_size(void)
{
	return add_size(MAXALIGN(delta_slots_size()), delta_claim_waiters_size());
}

static void
delta_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(delta_shmem_size());
	RequestNamedLWLockTranche("delta", 1);
}

static void
delta_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	delta_shared = ShmemInitStruct("delta", delta_shmem_size(), &found);
	if (!found)
	{
		memset(delta_shared, 0, delta_shmem_size());
		delta_shared->lock = &(GetNamedLWLockTranche("delta"))->lock;
		delta_shared->nslots = delta_slot_count();
		delta_shared->waiters = (DeltaClaimWaiter *)
			((char *) delta_shared + MAXALIGN(delta_slots_size()));
		delta_shared->nwaiters = MaxBackends;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init when loaded by shared_preload_libraries. */
void
delta_install_shmem_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = delta_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = delta_shmem_startup;
}

static void
delta_detach_slot(int code, Datum arg)
{
	DeltaSlot  *slot = MyDeltaSlot;

	if (slot == NULL)
		return;
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	if (slot->role == DELTA_ROLE_LAUNCHER)
	{
		delta_shared->launcher_latch = NULL;
	}
	memset(slot, 0, sizeof(DeltaSlot));
	LWLockRelease(delta_shared->lock);
	MyDeltaSlot = NULL;

	/* the launcher replaces whatever process just left */
	delta_wake_launcher();
}

/*
 * Makes slot number slotno this process's own: records pid, start time and
 * latch, and frees the slot again when the process exits.
 */
DeltaSlot *
delta_attach_slot(int slotno)
{
	DeltaSlot  *slot;

	if (delta_shared == NULL || slotno < 0 || slotno >= delta_shared->nslots)
		elog(FATAL, "delta: invalid slot number %d", slotno);

	slot = &delta_shared->slots[slotno];
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	if (slot->role == DELTA_ROLE_FREE || slot->pid != 0)
	{
		LWLockRelease(delta_shared->lock);
		ereport(FATAL,
				(errmsg("delta: slot %d was given up before this process started", slotno)));
	}
	slot->pid = MyProcPid;
	slot->started_at = MyStartTimestamp;
	/* nothing reported yet: its first claim scans from the start anyway */
	pg_atomic_init_u64(&slot->due_floor, (uint64) DT_NOEND);
	slot->latch = MyLatch;
	slot->activity = DELTA_ACTIVITY_STARTING;
	LWLockRelease(delta_shared->lock);

	MyDeltaSlot = slot;

	/*
	 * on_shmem_exit, registered before InitPostgres: runs after this
	 * process's backend status entry is cleared, so the replacement the
	 * launcher starts never sees us alive in delta._holder_alive and its
	 * start-up rescue takes over what we held.
	 */
	on_shmem_exit(delta_detach_slot, (Datum) 0);
	return slot;
}

/*
 * The entry of database dboid; with create, makes one if there is none.
 * Caller holds the lock exclusively when create is true.
 */
DeltaDatabase *
delta_find_database(Oid dboid, bool create)
{
	DeltaDatabase *free_entry = NULL;

	for (int i = 0; i < DELTA_MAX_DATABASES; i++)
	{
		DeltaDatabase *db = &delta_shared->databases[i];

		if (db->dboid == dboid)
			return db;
		if (db->dboid == InvalidOid && free_entry == NULL)
			free_entry = db;
	}
	if (!create || free_entry == NULL)
		return NULL;
	memset(free_entry, 0, sizeof(DeltaDatabase));
	free_entry->dboid = dboid;
	free_entry->dirty = true;
	return free_entry;
}

/* Sets the launcher's latch, if it runs. */
void
delta_wake_launcher(void)
{
	Latch	   *latch;

	if (delta_shared == NULL)
		return;
	LWLockAcquire(delta_shared->lock, LW_SHARED);
	latch = delta_shared->launcher_latch;
	if (latch != NULL)
		SetLatch(latch);
	LWLockRelease(delta_shared->lock);
}

/* Asks the launcher to probe dboid again (namespaces or extension changed). */
void
delta_mark_database_dirty(Oid dboid)
{
	DeltaDatabase *db;

	if (delta_shared == NULL)
		return;
	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	db = delta_find_database(dboid, true);
	if (db != NULL)
		db->dirty = true;
	LWLockRelease(delta_shared->lock);
	delta_wake_launcher();
}

/*
 * Publishes what this process is doing, for delta.workers.  Only the owner
 * writes these fields and readers only display them, so no lock is taken:
 * this runs once per resource.
 */
void
delta_set_activity(DeltaActivity activity, int64 resource_id, const char *kind)
{
	DeltaSlot  *slot = MyDeltaSlot;

	if (slot == NULL)
		return;
	slot->activity = activity;
	slot->resource_id = resource_id;
	strlcpy(slot->kind, kind != NULL ? kind : "", DELTA_NAME_MAX);
	pg_write_barrier();
}
