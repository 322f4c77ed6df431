/*-------------------------------------------------------------------------
 *
 * probe.c
 *	  The probe: a short-lived worker the launcher starts in one database to
 *	  learn whether delta is installed there and how many workers each
 *	  namespace wants.  It writes the answer into shared memory and exits.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"
#include "statements.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

void
delta_probe_main(Datum main_arg)
{
	DeltaSlot  *slot = delta_attach_slot(DatumGetInt32(main_arg));
	DeltaDatabase *db;
	bool		installed;
	DeltaNamespaceWant wants[DELTA_MAX_NAMESPACES_PER_DB];
	int			nwants = 0;

	delta_background_setup(slot, "delta probe", false);
	delta_set_activity(DELTA_ACTIVITY_PROBING, 0, NULL);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "delta probe");

	installed = delta_extension_installed();
	if (installed)
	{
		/* only namespaces that want workers count against the limit */
		int			ret = SPI_execute_plan(delta_statement(DELTA_STMT_NAMESPACE_WANTS),
										   NULL, NULL, true, 0);

		if (ret != SPI_OK_SELECT)
			elog(ERROR, "delta probe: reading delta.namespace failed: %d", ret);
		if (SPI_processed > DELTA_MAX_NAMESPACES_PER_DB)
			ereport(WARNING,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("delta: only the first %d namespaces of this database (by name) that want workers get them",
							DELTA_MAX_NAMESPACES_PER_DB)));
		for (uint64 i = 0; i < SPI_processed && nwants < DELTA_MAX_NAMESPACES_PER_DB; i++)
		{
			bool		isnull;
			HeapTuple	tup = SPI_tuptable->vals[i];
			char	   *name = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);
			int32		workers = DatumGetInt32(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));

			strlcpy(wants[nwants].name, name, DELTA_NAME_MAX);
			wants[nwants].workers = isnull ? 0 : workers;
			nwants++;
		}
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	LWLockAcquire(delta_shared->lock, LW_EXCLUSIVE);
	db = delta_find_database(MyDatabaseId, true);
	if (db != NULL)
	{
		db->installed = installed;
		db->nnamespaces = nwants;
		memcpy(db->namespaces, wants, sizeof(DeltaNamespaceWant) * nwants);
	}
	LWLockRelease(delta_shared->lock);
	/* the launcher is woken when this slot is freed at exit */
}
