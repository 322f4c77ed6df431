
# An inform that lands on a running resource is not lost when that run's
# worker dies: the rescue honours the generation like the outcome does, so
# the resource goes back to scheduled with attempt 0 and runs the newer
# object, even with max_attempts => 1 (it used to end degraded with an object
# that never ran).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

# SIGKILL: the worker dies without a word (the server restarts); a worker
# stopped with SIGTERM hands its run back instead (t/050).
my $node = DeltaTest::new_node('main', conf => { restart_after_crash => 'on' });
my $db   = 'postgres';
create_extension($node, $db);
$node->safe_psql($db, q{
	CREATE TABLE ran (v integer);
	-- the first object's run takes an hour; any other records the object it ran with
	CREATE FUNCTION held_work(r delta.resource) RETURNS void LANGUAGE sql AS $$
		SELECT pg_sleep(3600) WHERE (r.object->>'v')::integer = 1;
		INSERT INTO public.ran VALUES ((r.object->>'v')::integer);
	$$;
	SELECT delta.register_controller('held', 'held_work(delta.resource)', max_attempts => 1);
});

$node->safe_psql($db, q{SELECT delta.inform('held', 'g1', '{"v": 1}')});
ok(wait_for_state($node, $db, 'held', 'g1', 'pending'), 'the first run has started');
$node->safe_psql($db, q{SELECT delta.inform('held', 'g1', '{"v": 2}')});
my $pid = $node->safe_psql($db, q{SELECT holder_pid FROM delta.resource WHERE object_id = 'g1'});
ok(kill('KILL', $pid), "worker $pid killed with SIGKILL");
ok(poll_until($node, $db, q{SELECT holder_pid IS DISTINCT FROM } . $pid . q{ FROM delta.resource WHERE object_id = 'g1'}),
	'the dead run was rescued');

ok(wait_for_state($node, $db, 'held', 'g1', 'synced'), 'the resource is synced, not degraded');
is($node->safe_psql($db, 'SELECT string_agg(v::text, \',\') FROM ran'), '2', 'the newer object ran, once');
is($node->safe_psql($db,
	q{SELECT attempt || ' ' || (errors -> -1 ->> 'sqlstate') FROM delta.resource WHERE object_id = 'g1'}),
	'1 57P01', 'the new run is its first attempt, and the exit is recorded in errors');

done_testing();
