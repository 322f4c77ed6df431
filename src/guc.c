/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  The delta.* configuration parameters: server-wide defaults that
 *	  namespaces and controllers override.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

bool		delta_enabled = true;
int			delta_max_workers = 8;
int			delta_poll_interval_ms = 5000;
int			delta_maintenance_interval_ms = 60000;
int			delta_inform_interval_ms = 3600000;
int			delta_inform_jitter_ms = 60000;
int			delta_work_timeout_ms = 60000;
int			delta_inform_timeout_ms = 60000;
int			delta_batch_size = 100;
int			delta_commit_delay_ms = 20;
int			delta_log_level = LOG;
int			delta_synced_retention_s = 86400;
int			delta_degraded_retention_s = 86400;
int			delta_deleted_retention_s = 86400;
int			delta_event_retention_s = 86400;
bool		delta_run_history = true;
int			delta_run_history_retention_s = 3 * 86400;

static const struct config_enum_entry log_level_options[] = {
	{"debug5", DEBUG5, false},
	{"debug4", DEBUG4, false},
	{"debug3", DEBUG3, false},
	{"debug2", DEBUG2, false},
	{"debug1", DEBUG1, false},
	{"debug", DEBUG2, true},
	{"info", INFO, false},
	{"notice", NOTICE, false},
	{"log", LOG, false},
	{"warning", WARNING, false},
	{NULL, 0, false}
};

/* Defines every delta.* parameter; called from _PG_init. */
void
delta_define_gucs(void)
{
	DefineCustomBoolVariable("delta.enabled",
							 "Whether delta's workers claim and run resources.",
							 "When off, workers stay connected but idle.",
							 &delta_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	/*
	 * A postmaster setting can only be defined while preloading: loaded
	 * later (CREATE EXTENSION without shared_preload_libraries) nothing runs
	 * the workers, and defining it would end the session with FATAL.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("delta.max_workers",
								"Most namespace workers delta runs on this server, all databases together.",
								"Each also needs a slot of max_worker_processes.",
								&delta_max_workers, 8, 0, 1024,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.poll_interval",
							"How often an idle worker looks for due resources without being woken.",
							"Informs wake workers at commit; this is only the safety net.",
							&delta_poll_interval_ms, 5000, 10, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.maintenance_interval",
							"How often maintenance (rescue, expiry, cleaning, informers) runs.",
							NULL,
							&delta_maintenance_interval_ms, 60000, 100, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.inform_interval",
							"Default interval between two runs of a controller's inform function.",
							NULL,
							&delta_inform_interval_ms, 3600000, 1000, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.inform_jitter",
							"Largest random delay added to a scheduled inform run.",
							NULL,
							&delta_inform_jitter_ms, 60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.work_timeout",
							"Default time limit of one run of a work function (0 = none).",
							"A controller's work_timeout overrides it.",
							&delta_work_timeout_ms, 60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.inform_timeout",
							"Default time limit of one run of an inform function (0 = none).",
							"A controller's inform_timeout overrides it.",
							&delta_inform_timeout_ms, 60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.batch_size",
							"Most resources a worker claims and records in one transaction.",
							NULL,
							&delta_batch_size, 100, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.commit_delay",
							"Longest a run's outcome waits for the runs after it before it is committed.",
							"Also the time a worker's claim is sized to last, so slow work spreads over the workers.",
							&delta_commit_delay_ms, 20, 1, 10000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomEnumVariable("delta.log_level",
							 "Level of the messages delta's processes log about their work.",
							 NULL,
							 &delta_log_level, LOG, log_level_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.synced_retention",
							"Default synced_retention of new namespaces.",
							NULL,
							&delta_synced_retention_s, 86400, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.degraded_retention",
							"Default degraded_retention of new namespaces.",
							NULL,
							&delta_degraded_retention_s, 86400, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.deleted_retention",
							"Default deleted_retention of new namespaces.",
							NULL,
							&delta_deleted_retention_s, 86400, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.event_retention",
							"How long an event is kept when a subscription does not read it.",
							NULL,
							&delta_event_retention_s, 86400, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	/*
	 * Superuser-settable rather than reloaded only, so that it can be
	 * switched per database (ALTER DATABASE ... SET) or for one session;
	 * delta._record_runs reads it with current_setting().
	 */
	DefineCustomBoolVariable("delta.run_history",
							 "Whether every run's outcome is kept in delta.run.",
							 "Off: nothing is written to delta.run; delta.metrics still counts runs.",
							 &delta_run_history, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("delta.run_history_retention",
							"How long a row of delta.run is kept.",
							"The leader deletes older rows in batches.",
							&delta_run_history_retention_s, 3 * 86400, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	MarkGUCPrefixReserved("delta");
}
