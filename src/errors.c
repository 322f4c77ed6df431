/*-------------------------------------------------------------------------
 *
 * errors.c
 *	  Errors of delta's SQL functions as a caller sees them: without the
 *	  CONTEXT lines of delta's own PL/pgSQL and SQL functions.
 *
 *	  A bad argument of delta.inform is raised a few functions deep (the
 *	  checks are shared), and PL/pgSQL adds a CONTEXT line for each of them
 *	  ("PL/pgSQL function delta._check_name(text,text,integer) line 5 at
 *	  RAISE", "SQL statement ..."): noise that names internals.  Before an
 *	  error or message of a client session is reported, the lines of delta's
 *	  frames are taken out; the caller's own frames stay, so an inform from
 *	  the application's function still shows where it came from.
 *
 *-------------------------------------------------------------------------
 */
#include "delta.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/elog.h"

static emit_log_hook_type prev_emit_log_hook = NULL;

/*
 * delta's LANGUAGE sql functions: their frames read 'SQL function "name"
 * ...', unqualified.
 */
static const char *const sql_functions[] = {
	"inform_many", "pause_kind", "resume_kind", "_ago", "_backoff", "_external_complete",
	"_external_complete_many",
	"_external_delete", "_finish_inform",
	"_last_errors", "_later", "_restored_xid", "_retry_delay", "_schedule_due_informs",
	"_run_lost", "_unchanged", NULL
};

/* Whether line (len bytes) is the CONTEXT line of a frame of delta's. */
static bool
delta_frame(const char *line, int len)
{
	static const char plpgsql[] = "PL/pgSQL function delta.";
	static const char sql[] = "SQL function \"";
	/* the statement of a C wrapper (privilege.c's call_as_caller) */
	static const char wrapper[] = "SQL statement \"SELECT * FROM delta._";

	if (len >= (int) strlen(plpgsql) && strncmp(line, plpgsql, strlen(plpgsql)) == 0)
		return true;
	if (len >= (int) strlen(wrapper) && strncmp(line, wrapper, strlen(wrapper)) == 0)
		return true;
	if (len > (int) strlen(sql) && strncmp(line, sql, strlen(sql)) == 0)
	{
		const char *name = line + strlen(sql);

		for (int i = 0; sql_functions[i] != NULL; i++)
		{
			size_t		n = strlen(sql_functions[i]);

			if ((int) (strlen(sql) + n) < len && strncmp(name, sql_functions[i], n) == 0 && name[n] == '"')
				return true;
		}
	}
	return false;
}

/*
 * Takes delta's frames out of edata->context.  A 'SQL statement "..."' entry
 * belongs to the frame after it (the statement that frame was running), and
 * goes with it.
 */
static void
strip_delta_frames(ErrorData *edata)
{
	const char *lines[64];
	int			lens[64];
	int			n = 0;
	const char *p = edata->context;
	StringInfoData kept;
	bool		stripped = false;

	/* one entry a frame; a statement's text may have lines of its own */
	while (*p != '\0' && n < lengthof(lines))
	{
		bool		statement = strncmp(p, "SQL statement \"", 15) == 0;
		const char *end = strchr(p, '\n');

		while (statement && end != NULL && end[-1] != '"')
			end = strchr(end + 1, '\n');
		lines[n] = p;
		lens[n] = end ? (int) (end - p) : (int) strlen(p);
		n++;
		p = end ? end + 1 : p + strlen(p);
	}
	if (*p != '\0')
		return;					/* too deep to judge: leave it */

	initStringInfo(&kept);
	for (int i = 0; i < n; i++)
	{
		bool		statement = strncmp(lines[i], "SQL statement \"", 15) == 0;

		if (delta_frame(lines[i], lens[i]) ||
			(statement && i + 1 < n && delta_frame(lines[i + 1], lens[i + 1])))
		{
			stripped = true;
			continue;
		}
		if (kept.len > 0)
			appendStringInfoChar(&kept, '\n');
		appendBinaryStringInfo(&kept, lines[i], lens[i]);
	}
	if (!stripped)
		pfree(kept.data);
	else if (kept.len == 0)
		edata->context = NULL;
	else
		edata->context = kept.data;
}

static void
delta_emit_log(ErrorData *edata)
{
	/* the workers' own log lines keep every frame */
	if (edata->context != NULL && MyBackendType == B_BACKEND &&
		strstr(edata->context, "delta") != NULL)
		strip_delta_frames(edata);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
delta_install_error_hook(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = delta_emit_log;
}
