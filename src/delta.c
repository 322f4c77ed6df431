/*-------------------------------------------------------------------------
 *
 * delta.c
 *	  Module entry point: GUCs, shared memory, the launcher and the hooks.
 *
 * delta must be in shared_preload_libraries for its workers to run.  When it
 * is merely loaded (CREATE EXTENSION without preloading), its SQL functions
 * work but nothing claims resources; the README says so.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	delta_define_gucs();

	if (process_shared_preload_libraries_in_progress)
	{
		delta_install_shmem_hooks();
		/* pg_upgrade's server must run nothing but what it is told */
		if (!IsBinaryUpgrade)
			delta_register_launcher();
	}

	delta_install_xact_callbacks();
	delta_install_cancel_callback();
	delta_install_claimer_callbacks();
	delta_install_utility_hook();
	delta_install_error_hook();
}
