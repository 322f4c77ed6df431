/*-------------------------------------------------------------------------
 *
 * delta.h
 *	  Declarations shared by the files of the delta extension.
 *
 * Processes (see README "Architecture"):
 *
 *	launcher (static background worker, one per server)
 *	   |  probes each database for the extension and its namespaces
 *	   +-- probe (short-lived, connected to one database)
 *	   +-- namespace workers (max_workers per namespace and database)
 *	          claim due resources, run the work functions, record outcomes
 *
 * All of them meet in one shared memory segment (shmem.c): a slot per
 * process and a table of the databases the launcher knows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DELTA_H
#define DELTA_H

#include "postgres.h"

#include <signal.h>

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#define DELTA_NAME_MAX		NAMEDATALEN /* namespaces and kinds: 1..63 */
#define DELTA_MAX_DATABASES 64
#define DELTA_MAX_NAMESPACES_PER_DB 32
#define DELTA_CANCELS_PER_SLOT 64	/* runs of one batch delta.cancel can end */

/* GUCs (guc.c) */
extern bool delta_enabled;
extern int	delta_max_workers;
extern int	delta_poll_interval_ms;
extern int	delta_maintenance_interval_ms;
extern int	delta_inform_interval_ms;
extern int	delta_inform_jitter_ms;
extern int	delta_work_timeout_ms;
extern int	delta_inform_timeout_ms;
extern int	delta_batch_size;
extern int	delta_commit_delay_ms;
extern int	delta_log_level;
extern int	delta_synced_retention_s;
extern int	delta_degraded_retention_s;
extern int	delta_deleted_retention_s;
extern int	delta_event_retention_s;
extern bool delta_run_history;
extern int	delta_run_history_retention_s;

extern void delta_define_gucs(void);

/* What a slot of shared memory is used for. */
typedef enum DeltaRole
{
	DELTA_ROLE_FREE = 0,
	DELTA_ROLE_LAUNCHER,
	DELTA_ROLE_PROBE,
	DELTA_ROLE_WORKER
} DeltaRole;

/* What a process is doing right now, for delta.workers. */
typedef enum DeltaActivity
{
	DELTA_ACTIVITY_STARTING = 0,
	DELTA_ACTIVITY_IDLE,
	DELTA_ACTIVITY_CLAIMING,
	DELTA_ACTIVITY_RUNNING,
	DELTA_ACTIVITY_RECORDING,
	DELTA_ACTIVITY_PROBING,
	DELTA_ACTIVITY_MAINTAINING,
	DELTA_ACTIVITY_INFORMING
} DeltaActivity;

/* One delta process (or one about to start). */
typedef struct DeltaSlot
{
	DeltaRole	role;
	Oid			dboid;
	char		namespace[DELTA_NAME_MAX];
	int			index;			/* worker number within its namespace */
	pid_t		pid;			/* 0 until the process attaches */
	TimestampTz started_at;		/* with pid: the holder identity */
	TimestampTz registered_at;
	Latch	   *latch;
	bool		idle;			/* sleeping on its latch, ready for work */
	bool		leader;			/* runs its database's maintenance */
	bool		stop_requested;
	DeltaActivity activity;
	int64		resource_id;
	char		kind[DELTA_NAME_MAX];
	uint64		processed;
	uint64		failed;
	/* a worker's claim scan bound is lowered to this (a TimestampTz; wakeup.c) */
	pg_atomic_uint64 due_floor;
	/* resources of its batch whose runs delta.cancel ended (cancel.c); 0: free */
	int64		cancels[DELTA_CANCELS_PER_SLOT];
} DeltaSlot;

/* What the last probe found in one database. */
typedef struct DeltaNamespaceWant
{
	char		name[DELTA_NAME_MAX];
	int			workers;		/* 0 when paused */
} DeltaNamespaceWant;

/*
 * How runs end, as delta.run and delta.metrics name them (history.c): the
 * index of each outcome's counter in DeltaDatabase.runs.
 */
typedef enum DeltaRunOutcome
{
	DELTA_RUN_SYNCED = 0,
	DELTA_RUN_FAILED,
	DELTA_RUN_DEGRADED,
	DELTA_RUN_DELETED,
	DELTA_RUN_SNOOZED,
	DELTA_RUN_RESCHEDULED,
	DELTA_RUN_CRASHED,
	DELTA_RUN_OUTCOMES
} DeltaRunOutcome;

typedef struct DeltaDatabase
{
	Oid			dboid;			/* InvalidOid: entry unused */
	bool		dirty;			/* needs a probe */
	bool		installed;		/* the extension exists there */
	int			stopping;		/* DROPs in progress: start nothing */
	uint32		inform_requests;	/* bumped by each committed schedule_inform */
	int			nnamespaces;
	DeltaNamespaceWant namespaces[DELTA_MAX_NAMESPACES_PER_DB];
	uint64		runs[DELTA_RUN_OUTCOMES];	/* runs recorded since server start */
} DeltaDatabase;

/*
 * A session that waits in delta.claim for work of namespace (external.c);
 * pid 0: free.  One per backend at most.
 */
typedef struct DeltaClaimWaiter
{
	pid_t		pid;
	Oid			dboid;
	char		namespace[DELTA_NAME_MAX];
	Latch	   *latch;
} DeltaClaimWaiter;

/* A session that claimed with delta.claim and has exited (external.c). */
typedef struct DeltaClaimerExit
{
	pid_t		pid;
	TimestampTz started_at;
} DeltaClaimerExit;

#define DELTA_CLAIMER_EXITS_KEPT 128

typedef struct DeltaShared
{
	LWLock	   *lock;
	Latch	   *launcher_latch;
	DeltaDatabase databases[DELTA_MAX_DATABASES];
	/* external workers: the sessions waiting for work, and the last exits */
	DeltaClaimWaiter *waiters;
	int			nwaiters;
	uint32		claimer_exits;	/* how many claiming sessions exited */
	DeltaClaimerExit exits[DELTA_CLAIMER_EXITS_KEPT];	/* the last ones, a ring */
	int			nslots;
	DeltaSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} DeltaShared;

/* shmem.c */
extern DeltaShared *delta_shared;
extern DeltaSlot *MyDeltaSlot;

extern void delta_request_shmem(void);
extern void delta_install_shmem_hooks(void);
extern DeltaSlot *delta_attach_slot(int slotno);
extern DeltaDatabase *delta_find_database(Oid dboid, bool create);
extern void delta_wake_launcher(void);
extern void delta_mark_database_dirty(Oid dboid);
extern void delta_set_activity(DeltaActivity activity, int64 resource_id, const char *kind);

/* wakeup.c: wake-ups sent when a transaction commits */
extern void delta_install_xact_callbacks(void);
extern void delta_wake_namespace_at_commit(const char *namespace);
extern void delta_dirty_database_at_end_of_xact(Oid dboid);
extern void delta_wake_after_commit_prepared(void);
extern uint32 delta_inform_requests(Oid dboid);
extern void delta_report_outcomes_at_commit(const char *namespace);
extern TimestampTz delta_claim_scan_from(void);

/* external.c: the sessions of external workers (delta.claim) */
extern Size delta_claim_waiters_size(void);
extern void delta_install_claimer_callbacks(void);
extern void delta_wake_claim_waiters(const char *namespace);
extern bool delta_claimer_exited(int pid, TimestampTz started_at);
extern uint32 delta_claimer_exit_count(void);

/* launcher.c */
extern void delta_register_launcher(void);
extern PGDLLEXPORT void delta_launcher_main(Datum main_arg);

/* probe.c */
extern PGDLLEXPORT void delta_probe_main(Datum main_arg);

/* worker.c */
extern PGDLLEXPORT void delta_worker_main(Datum main_arg);

/* utility.c */
extern void delta_install_utility_hook(void);

/* errors.c */
extern void delta_install_error_hook(void);

/* background.c: what every delta background process does first */
extern void delta_background_setup(DeltaSlot *slot, const char *appname, bool graceful);
extern void delta_reset_error_context(void);
extern bool delta_extension_installed(void);
extern volatile sig_atomic_t delta_stop_signalled;	/* SIGTERM of a worker */
extern char *delta_user_search_path;	/* for user code, in delta's processes */
extern void delta_begin_transaction(const char *activity);
extern void delta_commit_transaction(void);

/* maintenance.c: the leader's passes, and the rescue every worker does */
extern void delta_maintenance(const char *namespace);
extern int	delta_rescue(const char *namespace);
extern void delta_release_session_locks(void);

/* controller.c */
extern Oid	delta_type_oid(const char *name);

/* informer.c */
extern bool delta_run_due_inform(MemoryContext cxt);
extern void delta_abandon_inform_run(ErrorData *edata);

/* callback.c: set while user code runs (a stop then cancels it) */
extern volatile sig_atomic_t delta_in_user_code;

/* cancel.c: delta.cancel of a run in progress */
extern void delta_install_cancel_callback(void);
extern void delta_install_cancel_handler(void);
extern bool delta_cancel_requested(int64 resource_id);
extern void delta_watch_cancel(int64 resource_id);
extern void delta_check_cancel(void);
extern void delta_swallow_cancel(void);
extern void delta_forget_cancels(void);

#endif							/* DELTA_H */
