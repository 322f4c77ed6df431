package delta

// Every statement the client sends, in one place.  Arguments are passed by
// name where the SQL functions have defaults, so the calls do not depend on
// argument positions.

const (
	// resourceColumns are the columns scanned by scanResource
	resourceColumns = `id, kind, object_id, namespace, state::text, attempt, max_attempts,
		object, metadata, tags, generation, created_at, synced_at, external_created_at, errors`

	sqlKindRegistered   = `SELECT EXISTS (SELECT FROM delta.controller WHERE kind = $1)`
	sqlRegisterExternal = `SELECT 1 FROM delta.register_controller($1, work => NULL)`
	sqlNamespaceExists  = `SELECT EXISTS (SELECT FROM delta.namespace WHERE name = $1)`
	sqlCreateNamespace  = `SELECT 1 FROM delta.create_namespace($1, max_workers => 0)`

	// the resourceColumns of a claimed row (a claimed resource is pending)
	sqlClaim = `SELECT token, lease_until, id, kind, object_id, namespace, 'pending', attempt, max_attempts,
		object, metadata, tags, generation, created_at, synced_at, external_created_at, errors
		FROM delta.claim($1, max => $2, kinds => $3::text[], wait => $4::interval, lease => $5::interval)`
	sqlCompleteMany = `SELECT delta.complete_many($1::uuid[])`
	sqlCompleteOne  = `SELECT delta.complete($1::uuid)`
	sqlFail         = `SELECT delta.fail($1::uuid, $2, detail => $3)`
	sqlSnooze       = `SELECT delta.snooze($1::uuid, $2::interval)`
	sqlDelete       = `SELECT delta.delete($1::uuid, $2)`
	sqlHeartbeat    = `SELECT delta.heartbeat($1::uuid)`

	sqlInform = `SELECT id, kind, object_id, namespace, state::text, attempt, max_attempts,
		object, metadata, tags, created_at, external_created_at, already_exists
		FROM delta.inform($1, $2, $3::jsonb, namespace => $4, metadata => $5::jsonb, tags => $6::text[],
		                  max_attempts => $7::integer, external_created_at => $8::timestamptz)`
	sqlInvalidate         = `SELECT ` + resourceColumns + ` FROM delta.invalidate($1, $2)`
	sqlScheduleInform     = `SELECT delta.schedule_inform($1, process_existing => $2)`
	sqlScheduleInformOpts = `SELECT delta.schedule_inform($1, process_existing => $2,
		options => ROW($3::timestamptz, $4::jsonb, $5::integer, $6::text)::delta.inform_options)`

	sqlSubscribe   = `SELECT delta.subscribe($1::text[], kinds => $2::text[], name => $3::text)`
	sqlUnsubscribe = `SELECT delta.unsubscribe($1)`
	sqlListen      = `LISTEN delta_events`
	sqlEvents      = `SELECT id, category, resource_id, kind, object_id, namespace, state::text, attempt,
		error, created_at FROM delta.events($1, max => $2)`
)
