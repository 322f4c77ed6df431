/*-------------------------------------------------------------------------
 *
 * delta_example.c
 *	  A delta work function written in C (see example.sql and README.md).
 *
 *	  example_c.checksum_work(resource delta.resource) is called by a delta
 *	  worker once per run of a resource of kind 'checksum'.  It reads fields
 *	  of the delta.resource composite by name (object_id, attempt, object),
 *	  takes the string "data" of the object, and upserts its SHA-256 into
 *	  example_c.checksums through SPI.
 *
 *	  What delta does with the outcome:
 *	  - returning normally: the resource becomes synced, and the row written
 *	    through SPI commits together with that state change;
 *	  - ereport(ERROR, ...): the run's writes are rolled back, the error
 *	    (message, SQLSTATE, detail, hint) is appended to the resource's
 *	    errors, and the resource is retried after a back-off until
 *	    max_attempts, then degraded.
 *
 *	  No PG_TRY is needed: the worker runs each call in a subtransaction
 *	  and cleans up after an error (SPI, memory, the hash context).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(delta_example_checksum);

/* Upsert of one checksum; the table is schema-qualified (search_path safe). */
#define UPSERT_CHECKSUM \
	"INSERT INTO example_c.checksums AS c (object_id, sha256, bytes, attempt) " \
	"VALUES ($1, $2, $3, $4) " \
	"ON CONFLICT (object_id) DO UPDATE SET " \
	"sha256 = EXCLUDED.sha256, bytes = EXCLUDED.bytes, attempt = EXCLUDED.attempt, " \
	"runs = c.runs + 1, computed_at = pg_catalog.now()"

/* A field of the resource that must not be NULL. */
static Datum
resource_field(HeapTupleHeader resource, const char *name)
{
	bool		isnull;
	Datum		value = GetAttributeByName(resource, name, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("field \"%s\" of the resource is null", name)));
	return value;
}

/* SHA-256 of len bytes at data, as a bytea. */
static bytea *
sha256_of(const char *data, int len)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(result), PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return result;
}

/*
 * SQL: example_c.checksum_work(resource delta.resource) RETURNS void
 */
Datum
delta_example_checksum(PG_FUNCTION_ARGS)
{
	HeapTupleHeader resource = PG_GETARG_HEAPTUPLEHEADER(0);
	char	   *object_id;
	int32		attempt;
	Jsonb	   *object;
	JsonbValue	buf;
	JsonbValue *data = NULL;
	Oid			argtypes[4] = {TEXTOID, BYTEAOID, INT4OID, INT4OID};
	Datum		values[4];
	int			ret;

	object_id = TextDatumGetCString(resource_field(resource, "object_id"));
	attempt = DatumGetInt32(resource_field(resource, "attempt"));
	object = DatumGetJsonbP(resource_field(resource, "object"));

	if (JB_ROOT_IS_OBJECT(object))
		data = getKeyJsonValueFromContainer(&object->root, "data", strlen("data"), &buf);
	if (data == NULL || data->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("object \"%s\" has no string field \"data\"", object_id),
				 errdetail("The object is %s.",
						   JsonbToCString(NULL, &object->root, VARSIZE(object))),
				 errhint("Inform it again with an object like {\"data\": \"some text\"}.")));

	values[0] = CStringGetTextDatum(object_id);
	values[1] = PointerGetDatum(sha256_of(data->val.string.val, data->val.string.len));
	values[2] = Int32GetDatum(data->val.string.len);
	values[3] = Int32GetDatum(attempt);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args(UPSERT_CHECKSUM, 4, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "upsert into example_c.checksums failed: %s", SPI_result_code_string(ret));
	SPI_finish();

	PG_RETURN_VOID();
}
