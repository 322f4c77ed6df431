/*-------------------------------------------------------------------------
 *
 * privilege.h
 *	  Acting for a caller as the owner of schema delta (privilege.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DELTA_PRIVILEGE_H
#define DELTA_PRIVILEGE_H

#include "postgres.h"

extern Oid	delta_schema_owner(void);
extern int	delta_begin_as_schema_owner(Oid *save_user, int *save_sec);
extern void delta_end_as_schema_owner(int nest, Oid save_user, int save_sec);

#endif							/* DELTA_PRIVILEGE_H */
