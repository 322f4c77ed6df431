
# ALTER EXTENSION delta UPDATE from the last release: a populated 0.1.0
# database keeps every namespace, controller, resource, subscription and
# event, its workers start once it is updated (the library only serves
# databases whose SQL is its own version), and the updated catalog is the same as a
# fresh install of the new version (functions, views, columns, indexes,
# privileges), so the update script cannot drift from the install script.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main');
my $old  = '0.1.0';
my $new  = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'delta'");
isnt($new, $old, "the default version ($new) is newer than $old");

$node->safe_psql('postgres', 'CREATE DATABASE updated');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('updated', "CREATE EXTENSION delta VERSION '$old'");
$node->safe_psql('fresh', 'CREATE EXTENSION delta');

# a populated 0.1.0 database: resources in several states, a subscription
# with events to read, a second namespace with its own settings
$node->safe_psql('updated', q{
	CREATE TABLE done (object_id text);
	CREATE FUNCTION ok_work(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ INSERT INTO public.done VALUES (r.object_id) $$;
	CREATE FUNCTION fail_work(r delta.resource) RETURNS void LANGUAGE plpgsql
		AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
	SELECT delta.create_namespace('billing', max_workers => 2, synced_retention => '3 days');
	SELECT delta.register_controller('ok', 'ok_work(delta.resource)', max_attempts => 7);
	SELECT delta.register_controller('bad', 'fail_work(delta.resource)', max_attempts => 1);
	SELECT delta.subscribe(ARRAY['object_synced', 'object_failed'], name => 'audit');
	SELECT delta.inform('ok', 'o' || i, jsonb_build_object('i', i), metadata => '{"m": 1}',
	                    tags => ARRAY['tag-a']) FROM generate_series(1, 20) AS i;
	SELECT delta.inform('bad', 'b1', '{}', namespace => 'billing');
});
# The library serves only databases at its own version: the 0.1.0 one gets
# no worker, and the log says what to do.  The test plays the 0.1.0 worker
# with the 0.1.0 functions, so the update finds outcomes and events.
ok(poll_until($node, 'fresh',
	q{SELECT count(*) FROM delta.workers WHERE database = 'fresh' AND role IN ('worker', 'leader')}, '1'),
	'the fresh database has its worker');
is($node->safe_psql('fresh',
	q{SELECT count(*) FROM delta.workers WHERE database = 'updated' AND role IN ('worker', 'leader')}),
	'0', 'the 0.1.0 database has no worker');
ok($node->log_contains(qr/its extension is version 0\.1\.0, the loaded library is version \Q$new\E/),
	'the log says the database waits for ALTER EXTENSION delta UPDATE');
$node->safe_psql('updated', q{
	CREATE TEMP TABLE claimed AS
		SELECT * FROM delta._claim('default', 100) UNION ALL SELECT * FROM delta._claim('billing', 100);
	SELECT delta._finish(array_agg(id), array_agg(generation),
		array_agg(CASE kind WHEN 'ok' THEN 'synced' ELSE 'failed' END),
		array_agg(CASE kind WHEN 'bad' THEN '{"error": "no"}'::jsonb END), array_agg(NULL::interval))
	FROM claimed;
});
is($node->safe_psql('updated',
	"SELECT count(*) FILTER (WHERE state = 'synced') || '/' || count(*) FILTER (WHERE state = 'degraded') FROM delta.resource"),
	'20/1', 'the 0.1.0 functions recorded the outcomes');

my $snapshot = q{
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
		SELECT format('resource %s %s %s %s %s %s %s %s', kind, object_id, namespace, state, attempt,
		              object, metadata, tags) AS x FROM delta.resource
		UNION ALL SELECT format('namespace %s %s %s', name, max_workers, synced_retention) FROM delta.namespace
		UNION ALL SELECT format('controller %s %s %s %s', kind, work, max_attempts, owner) FROM delta.controller
		UNION ALL SELECT format('subscription %s %s', name, categories) FROM delta.subscription
		UNION ALL SELECT format('event %s %s %s', category, kind, object_id) FROM delta.event
	) AS s
};
my $before = $node->safe_psql('updated', $snapshot);

$node->safe_psql('updated', 'ALTER EXTENSION delta UPDATE');
is($node->safe_psql('updated', "SELECT extversion FROM pg_extension WHERE extname = 'delta'"),
	$new, "updated to $new");
is($node->safe_psql('updated', $snapshot), $before, 'no row was lost or changed by the update');

# the catalog of delta's objects, in a form that compares across databases
my $catalog = q{
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
		SELECT 'function ' || p.oid::regprocedure::text || ' ' || pg_get_function_result(p.oid)
		       || ' ' || pg_get_function_arguments(p.oid) || ' ' || md5(pg_get_functiondef(p.oid))
		       || ' ' || coalesce(p.proacl::text, 'default acl') AS x
		FROM pg_proc AS p WHERE p.pronamespace = 'delta'::regnamespace AND p.prokind <> 'a'
		UNION ALL
		SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		       || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_class AS c JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		LEFT JOIN pg_attrdef AS d ON d.adrelid = c.oid AND d.adnum = a.attnum
		WHERE c.relnamespace = 'delta'::regnamespace
		UNION ALL
		SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index AS i
		JOIN pg_class AS c ON c.oid = i.indrelid WHERE c.relnamespace = 'delta'::regnamespace
		UNION ALL
		SELECT 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid)) FROM pg_class AS c
		WHERE c.relnamespace = 'delta'::regnamespace AND c.relkind = 'v'
		UNION ALL
		SELECT 'acl ' || c.relname || ' ' || coalesce(c.relacl::text, 'default') FROM pg_class AS c
		WHERE c.relnamespace = 'delta'::regnamespace
		UNION ALL
		SELECT 'type ' || t.typname || ' ' || coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
		       FROM pg_enum AS e WHERE e.enumtypid = t.oid), '')
		FROM pg_type AS t WHERE t.typnamespace = 'delta'::regnamespace AND t.typtype IN ('e', 'c')
		UNION ALL
		SELECT 'trigger ' || tgname || ' ' || tgrelid::regclass::text FROM pg_trigger
		WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'delta'::regnamespace) AND NOT tgisinternal
		UNION ALL
		SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM pg_depend
		WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'delta')
		UNION ALL
		SELECT 'dumped ' || (SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text)
		       FROM pg_extension, unnest(extconfig) AS c WHERE extname = 'delta')
	) AS s
};
# role oids differ between databases only in owners of rows, not here
my $fresh_catalog   = $node->safe_psql('fresh', $catalog);
my $updated_catalog = $node->safe_psql('updated', $catalog);
if ($updated_catalog ne $fresh_catalog)
{
	my %f = map { $_ => 1 } split /\n/, $fresh_catalog;
	my %u = map { $_ => 1 } split /\n/, $updated_catalog;
	diag("only after the update: $_") foreach grep { !$f{$_} } sort keys %u;
	diag("only in a fresh install: $_") foreach grep { !$u{$_} } sort keys %f;
}
ok($updated_catalog eq $fresh_catalog, 'the updated catalog is the same as a fresh install');

# the workers go on with the updated functions
$node->safe_psql('updated', q{SELECT delta.inform('ok', 'after-update', '{}')});
ok(wait_for_state($node, 'updated', 'ok', 'after-update', 'synced'), 'a resource informed after the update is synced');
is($node->safe_psql('updated', q{SELECT count(*) FROM done WHERE object_id = 'after-update'}), '1',
	'its work function ran once');
is($node->safe_psql('updated', q{SELECT outcome FROM delta.run WHERE object_id = 'after-update'}), 'synced',
	'the update created the run history, and its run is in it');
ok($node->safe_psql('updated', q{SELECT count(*) = 2 * 2 * 7 FROM delta.metrics WHERE metric = 'delta_resources'}) eq 't',
	'and delta.metrics, a row per namespace (2), kind (2) and state (7, synced aside)');
$node->safe_psql('updated', q{SELECT delta.inform('ok', 'new-one', '{}', namespace => 'billing')});
ok(wait_for_state($node, 'updated', 'ok', 'new-one', 'synced'), 'the second namespace still has its workers');

done_testing();
