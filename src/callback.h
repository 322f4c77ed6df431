/*-------------------------------------------------------------------------
 *
 * callback.h
 *	  Running work functions (callback.c) and what a run produces.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DELTA_CALLBACK_H
#define DELTA_CALLBACK_H

#include "fmgr.h"
#include "datatype/timestamp.h"

typedef enum DeltaOutcome
{
	DELTA_OUTCOME_NONE = 0,
	DELTA_OUTCOME_SYNCED,
	DELTA_OUTCOME_FAILED,
	DELTA_OUTCOME_DELETED,
	DELTA_OUTCOME_SNOOZED,
	DELTA_OUTCOME_CANCELLED		/* by delta.cancel: failed, not due */
} DeltaOutcome;

/* The result of one run of a work function. */
typedef struct DeltaRun
{
	DeltaOutcome outcome;
	DeltaOutcome requested;		/* by resource_delete / resource_snooze */
	char	   *error;			/* JSON text of the errors entry, or NULL */
	Interval	snooze;			/* resource_snooze's delay */
	char	   *delete_reason;	/* resource_delete's message */
	MemoryContext cxt;			/* where the run's results live */
	bool		cancelled_by_stop;	/* the worker stops: hand it back */
} DeltaRun;

/* What a worker knows of one kind's controller during a batch. */
typedef struct DeltaController
{
	char	   *kind;
	Oid			work;
	Oid			owner;
	int64		timeout_ms;
	FmgrInfo	flinfo;
	char	   *problem;		/* why its runs cannot start, or NULL */
	int			problem_code;
} DeltaController;

typedef void (*DeltaUserCode) (void *arg);

extern ErrorData *delta_run_as_owner(Oid owner, int64 timeout_ms, DeltaUserCode code,
									 void *arg, MemoryContext result_cxt);
extern char *delta_error_json(ErrorData *edata, int32 attempt);
extern void delta_run_work(DeltaController *ctl, Datum resource, int64 id, int32 attempt,
						   DeltaRun *run, MemoryContext result_cxt);

extern const char *delta_outcome_name(DeltaOutcome outcome);

#endif							/* DELTA_CALLBACK_H */
