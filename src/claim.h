/*-------------------------------------------------------------------------
 *
 * claim.h
 *	  A namespace worker's batch: claim, work, record (claim.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DELTA_CLAIM_H
#define DELTA_CLAIM_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* A claimed resource (claim.c). */
typedef struct DeltaClaimed DeltaClaimed;

extern int	delta_claim_size(int max_count);
extern int	delta_claim_batch(const char *namespace, int max_count, bool probe,
							  MemoryContext cxt, DeltaClaimed **claimed,
							  TimestampTz *next_due);
extern void delta_work_batch(DeltaClaimed *claimed, int n, MemoryContext cxt);
extern void delta_abandon_batch(ErrorData *edata);

#endif							/* DELTA_CLAIM_H */
