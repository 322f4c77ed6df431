/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The PostgreSQL APIs delta uses that changed between the majors it
 *	  builds against (README "Supported PostgreSQL versions").
 *
 * The sources call the newest spelling; on an older server this header maps
 * it to the old one, so a conditional on PG_VERSION_NUM lives here and
 * nowhere else.
 *
 *	16: pg_proc_aclcheck and pg_<object>_ownercheck became object_aclcheck
 *	    and object_ownercheck, taking the catalog of the object
 *	17: pgstat_fetch_stat_local_beentry became
 *	    pgstat_get_local_beentry_by_index (the same 1-based index)
 *
 *-------------------------------------------------------------------------
 */
#ifndef DELTA_COMPAT_H
#define DELTA_COMPAT_H

#include "postgres.h"

#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "utils/acl.h"
#include "utils/backend_status.h"

#if PG_VERSION_NUM < 160000
static inline AclResult
object_aclcheck(Oid classid, Oid objectid, Oid roleid, AclMode mode)
{
	if (classid != ProcedureRelationId)
		elog(ERROR, "object_aclcheck of catalog %u is not mapped for this server", classid);
	return pg_proc_aclcheck(objectid, roleid, mode);
}

static inline bool
object_ownercheck(Oid classid, Oid objectid, Oid roleid)
{
	switch (classid)
	{
		case DatabaseRelationId:
			return pg_database_ownercheck(objectid, roleid);
		case ExtensionRelationId:
			return pg_extension_ownercheck(objectid, roleid);
		default:
			elog(ERROR, "object_ownercheck of catalog %u is not mapped for this server", classid);
	}
	return false;				/* not reached */
}
#endif

#if PG_VERSION_NUM < 170000
#define pgstat_get_local_beentry_by_index(idx) pgstat_fetch_stat_local_beentry(idx)
#endif

#endif							/* DELTA_COMPAT_H */
