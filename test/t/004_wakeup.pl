
# A committed inform wakes an idle worker at commit.  The poll interval is
# one hour here, so every resource below is synced only because of a
# wake-up; a rolled back inform wakes nothing and runs nothing.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main',
	conf => { 'delta.poll_interval' => "'1h'", 'delta.maintenance_interval' => "'1h'" });
my $db = 'postgres';
my $timeout = 30;    # far below the poll interval
create_extension($node, $db);

$node->safe_psql($db, q{
	CREATE TABLE runs (object_id text, at timestamptz DEFAULT clock_timestamp());
	CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ INSERT INTO public.runs (object_id) VALUES (r.object_id) $$;
	SELECT delta.register_controller('k', 'work(delta.resource)');
	SELECT delta.create_namespace('other', max_workers => 2);
});
is($node->safe_psql($db, 'SHOW delta.poll_interval'), '1h', 'workers poll only once an hour');

# Every worker has made its first claim and sleeps.
ok(wait_for_workers($node, $db, "state = 'idle'", 3), 'the three workers are idle');

foreach my $i (1 .. 5)
{
	$node->safe_psql($db, "SELECT id FROM delta.inform('k', 'w$i', '{}')");
	ok(wait_for_state($node, $db, 'k', "w$i", 'synced', $timeout),
		"inform number $i is synced without waiting for the poll");
}

# In another namespace, informed together in one transaction.
$node->safe_psql($db, q{
	BEGIN;
	SELECT id FROM delta.inform('k', 'o1', '{}', namespace => 'other');
	SELECT id FROM delta.inform('k', 'o2', '{}', namespace => 'other');
	COMMIT;
});
ok(wait_for_state($node, $db, 'k', 'o1', 'synced', $timeout), 'an inform of another namespace wakes its worker');
ok(wait_for_state($node, $db, 'k', 'o2', 'synced', $timeout), 'both resources of the transaction are synced');

# Many at once: the wake-up of one worker is enough to drain a batch
# larger than delta.batch_size.
$node->safe_psql($db,
	"SELECT count(*) FROM delta.inform_many('k', (SELECT jsonb_agg(jsonb_build_object('object_id', 'm' || i, 'object', '{}'::jsonb)) FROM generate_series(1, 300) AS i), namespace => 'other')"
);
ok( DeltaTest::poll_until($node, $db,
		"SELECT count(*) FROM delta.resource WHERE kind = 'k' AND object_id LIKE 'm%' AND state = 'synced'",
		'300', $timeout),
	'300 resources informed at once are all synced');

# invalidate wakes too.
$node->safe_psql($db, "SELECT state FROM delta.invalidate('k', 'w1')");
ok( DeltaTest::poll_until($node, $db,
		"SELECT state || ' ' || (SELECT count(*) FROM runs WHERE object_id = 'w1') FROM delta.resource WHERE kind = 'k' AND object_id = 'w1'",
		'synced 2', $timeout),
	'an invalidated resource is worked again at once');

# A rolled back inform: no resource, no run, and a later committed inform
# is served normally.
$node->safe_psql($db, q{
	BEGIN;
	SELECT id FROM delta.inform('k', 'rolled-back', '{}');
	ROLLBACK;
});
$node->safe_psql($db, "SELECT id FROM delta.inform('k', 'after-rollback', '{}')");
ok(wait_for_state($node, $db, 'k', 'after-rollback', 'synced', $timeout),
	'a committed inform after a rolled back one is synced');
is($node->safe_psql($db, "SELECT count(*) FROM runs WHERE object_id = 'rolled-back'"), '0',
	'the rolled back inform ran nothing');
is($node->safe_psql($db, "SELECT count(*) FROM delta.resource WHERE object_id = 'rolled-back'"), '0',
	'and left no resource');

# A wake-up sent while the worker is busy is not lost: the worker finds the
# new resource when its batch ends instead of sleeping for an hour.
$node->safe_psql($db, q{
	CREATE FUNCTION slow(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ SELECT pg_sleep(2) $$;
	SELECT delta.register_controller('slow', 'slow(delta.resource)');
	SELECT id FROM delta.inform('slow', 's1', '{}');
});
ok( DeltaTest::poll_until($node, $db,
		"SELECT count(*) FROM delta.workers WHERE kind = 'slow' AND state = 'running'", '1', $timeout),
	'the default worker is busy');
$node->safe_psql($db, "SELECT id FROM delta.inform('k', 'while-busy', '{}')");
ok(wait_for_state($node, $db, 'k', 'while-busy', 'synced', $timeout),
	'a resource informed while the only worker is busy is synced after its run');
ok(wait_for_state($node, $db, 'slow', 's1', 'synced', $timeout), 'the slow resource is synced');

# The control: a resource made due behind delta's back (no wake-up) waits
# for the hourly poll, so the results above are the wake-up's doing.  The
# next inform wakes a worker, which then finds both.
ok(wait_for_workers($node, $db, "namespace = 'default' AND state = 'idle'", 1), 'the default worker is idle again');
$node->safe_psql($db,
	"UPDATE delta.resource SET state = 'scheduled', attempt = 0, due_at = now() WHERE kind = 'k' AND object_id = 'w2'");
sleep(3);
is($node->safe_psql($db, "SELECT state FROM delta.resource WHERE kind = 'k' AND object_id = 'w2'"),
	'scheduled', 'without a wake-up a due resource waits (the poll interval is really an hour)');
$node->safe_psql($db, "SELECT id FROM delta.inform('k', 'waker', '{}')");
ok(wait_for_state($node, $db, 'k', 'waker', 'synced', $timeout), 'an inform wakes the worker');
ok(wait_for_state($node, $db, 'k', 'w2', 'synced', $timeout), 'which also runs the resource that was waiting');

$node->stop;
done_testing();
