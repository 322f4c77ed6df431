
# A database owner who is not a superuser cannot have delta's superuser
# workers run code of theirs: a pre-created schema "delta" is refused by
# CREATE EXTENSION, and an operator planted in the database's search_path
# is never called by a worker statement (they are all qualified).  A
# prepared inform wakes its namespace at COMMIT PREPARED, and a prepared
# DROP EXTENSION is refused.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main',
	conf => {
		'max_prepared_transactions' => '5',
		'delta.poll_interval' => "'1h'",
		'delta.maintenance_interval' => "'1s'"
	});
my $timeout = 60;

$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	CREATE DATABASE evil OWNER mallory;
	CREATE DATABASE plant OWNER mallory;
});

# 1. A schema "delta" made beforehand by the database owner.
$node->safe_psql('evil', 'CREATE SCHEMA delta', extra_params => [ '-U', 'mallory' ]);
my ($ret, $out, $err) = $node->psql('evil', 'CREATE EXTENSION delta');
isnt($ret, 0, 'CREATE EXTENSION refuses a schema delta owned by a non-superuser');
like($err, qr/schema "delta" is owned by a role that is not a superuser/, 'with a clear error');
like($err, qr/HINT:/, 'and a hint');
is($node->safe_psql('evil', "SELECT count(*) FROM pg_extension WHERE extname = 'delta'"),
	'0', 'nothing was installed');

# 2. An operator planted in the database's search_path, with workers and
# an informer that run SCHEDULE_INFORMS on every maintenance pass.
create_extension($node, 'plant');
$node->safe_psql('plant', q{
	CREATE TABLE public.planted_ran (at timestamptz DEFAULT now(), who text);
	GRANT INSERT ON public.planted_ran TO PUBLIC;
	CREATE FUNCTION public.w(r delta.resource) RETURNS void LANGUAGE sql AS 'SELECT';
	CREATE FUNCTION public.inf(o delta.inform_options) RETURNS SETOF delta.inform_item
		LANGUAGE sql AS $$ SELECT ROW('i1', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item $$;
	SELECT kind FROM delta.register_controller('k', 'public.w(delta.resource)',
		inform => 'public.inf(delta.inform_options)', inform_interval => '1 second');
});
$node->safe_psql('plant', q{
	CREATE SCHEMA owned;
	CREATE FUNCTION owned.div(integer, numeric) RETURNS numeric LANGUAGE sql
		AS $$ INSERT INTO public.planted_ran (who) VALUES (current_user); SELECT $1 / $2 $$;
	CREATE OPERATOR owned./ (LEFTARG = integer, RIGHTARG = numeric, FUNCTION = owned.div);
	CREATE FUNCTION owned.div(integer, double precision) RETURNS double precision LANGUAGE sql
		AS $$ INSERT INTO public.planted_ran (who) VALUES (current_user); SELECT $1 / $2 $$;
	CREATE OPERATOR owned./ (LEFTARG = integer, RIGHTARG = double precision, FUNCTION = owned.div);
	ALTER DATABASE plant SET search_path = owned, pg_catalog, public;
}, extra_params => [ '-U', 'mallory' ]);
# the workers pick the setting up when they reconnect
$node->safe_psql('plant', q{SELECT pg_terminate_backend(pid) FROM delta.workers WHERE pid IS NOT NULL});
ok(wait_for_workers($node, 'plant', "role = 'leader'", 1, $timeout), 'a leader runs again');
my $t0 = $node->safe_psql('plant', 'SELECT now()');
ok(DeltaTest::poll_until($node, 'plant',
		"SELECT last_inform_run_at > '$t0' FROM delta.controller WHERE kind = 'k'", 't', $timeout),
	'the leader schedules inform runs with the planted search_path');
ok(wait_for_state($node, 'plant', 'k', 'i1', 'synced', $timeout), 'the real workers keep syncing');
is($node->safe_psql('plant', 'SELECT count(*) FROM public.planted_ran'), '0',
	'the planted operator never ran');

# 3. PREPARE TRANSACTION: the inform wakes its namespace at COMMIT PREPARED.
$node->safe_psql('plant', q{
	BEGIN;
	SELECT id FROM delta.inform('k', 'p1', '{}');
	PREPARE TRANSACTION 'p1';
});
# the same backend's next transaction must not use freed lists
$node->safe_psql('plant', q{
	BEGIN;
	SELECT id FROM delta.inform('k', 'p0', '{}');
	PREPARE TRANSACTION 'p0';
	SELECT id FROM delta.inform('k', 'p2', '{}');
});
ok(wait_for_state($node, 'plant', 'k', 'p2', 'synced', $timeout), 'a later inform is synced');
is($node->safe_psql('plant', "SELECT count(*) FROM delta.resource WHERE object_id IN ('p0', 'p1')"),
	'0', 'prepared informs are not visible yet');
$node->safe_psql('plant', q{COMMIT PREPARED 'p1'});
$node->safe_psql('plant', q{ROLLBACK PREPARED 'p0'});
ok(wait_for_state($node, 'plant', 'k', 'p1', 'synced', $timeout),
	'COMMIT PREPARED wakes the namespace (the poll interval is an hour)');

($ret, $out, $err) = $node->psql('plant', q{BEGIN; DROP EXTENSION delta CASCADE; PREPARE TRANSACTION 'd';});
like($err, qr/cannot PREPARE a transaction that stopped delta's workers/,
	'a prepared DROP EXTENSION is refused');
ok(wait_for_workers($node, 'plant', "role = 'leader'", 1, $timeout), 'and the workers come back');
is($node->safe_psql('plant', 'SELECT count(*) FROM pg_prepared_xacts'), '0', 'nothing stays prepared');

$node->stop;
done_testing();
