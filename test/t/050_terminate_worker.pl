
# Copyright: the delta authors.
#
# A worker terminated in the middle of a run (pg_terminate_backend, like a
# fast shutdown or DROP EXTENSION: SIGTERM) stops gracefully: the run in
# progress is cancelled, and it and the resources claimed with it that never
# started are handed back without counting an attempt, then synced exactly
# once by the new worker.  (A worker that dies without a word is rescued:
# t/051, t/055.)
#
# After a warm-up of quick runs, the worker claims three resources at once;
# the first one's first run sleeps (so it can be terminated there).  The
# maintenance interval is one hour: nothing but the hand-back can return the
# resources within the test's time.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('terminate',
	conf => {
		'delta.maintenance_interval' => "'1h'",
		log_min_messages => 'log',
	});
create_extension($node, 'postgres');

$node->safe_psql('postgres', q{
CREATE TABLE done (object_id text, attempt int);
CREATE SEQUENCE slow_runs;
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF r.object_id = 'slow' AND nextval('slow_runs') = 1 THEN
        PERFORM pg_sleep(60);
    END IF;
    INSERT INTO done VALUES (r.object_id, r.attempt);
END
$$;
SELECT delta.register_controller('thing', 'work(delta.resource)', work_timeout => '10 min');
});

# quick runs first: the worker then claims many at once
$node->safe_psql('postgres',
	q{SELECT count(*) FROM delta.inform_many('thing', (SELECT jsonb_agg(jsonb_build_object('object_id', 'warm' || i, 'object', '{}'::jsonb)) FROM generate_series(1, 20) AS i))});
ok(poll_until($node, 'postgres', "SELECT count(*) FROM delta.resource WHERE kind = 'thing' AND state = 'synced'", '20'),
	'the warm-up runs are synced');

$node->safe_psql('postgres', q{BEGIN;
	SELECT delta.inform('thing', 'slow', '{}');
	SELECT delta.inform('thing', 'next1', '{}');
	SELECT delta.inform('thing', 'next2', '{}');
	COMMIT;});
my $id = $node->safe_psql('postgres', q{SELECT id FROM delta.resource WHERE object_id = 'slow'});

# The worker is in the middle of the first run of resource slow.
ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) FROM delta.workers WHERE namespace = 'default' AND state = 'running' AND resource_id = $id",
		'1'),
	'a worker runs resource slow');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM delta.workers WHERE namespace = 'default' AND resource_id = $id");
is( $node->safe_psql('postgres',
		"SELECT string_agg(object_id || ':' || state || ':' || attempt || ':' || (holder_pid = $pid), ',' ORDER BY id) "
		  . "FROM delta.resource WHERE object_id IN ('slow', 'next1', 'next2')"),
	'slow:pending:1:true,next1:pending:1:true,next2:pending:1:true',
	'the three were claimed together, their attempts counted at claim');

is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
	't', "worker $pid terminated");

# A new worker takes over the namespace ...
ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) > 0 FROM delta.workers WHERE namespace = 'default' AND pid <> $pid"
	),
	'a new worker replaces the terminated one');

# ... and syncs what was handed back.
for my $o (qw(slow next1 next2))
{
	ok(wait_for_state($node, 'postgres', 'thing', $o, 'synced'), "resource $o is synced");
}
is( $node->safe_psql('postgres',
		"SELECT string_agg(object_id || ':' || attempt || ':' || errors::text, ',' ORDER BY id) "
		  . "FROM delta.resource WHERE object_id IN ('slow', 'next1', 'next2')"),
	'slow:1:[],next1:1:[],next2:1:[]',
	'no attempt was counted for the stop, and no error recorded');
is( $node->safe_psql('postgres',
		"SELECT string_agg(object_id || ':' || attempt, ',' ORDER BY object_id) FROM done WHERE object_id NOT LIKE 'warm%'"),
	'next1:1,next2:1,slow:1',
	'each work function completed exactly once');
is($node->safe_psql('postgres', "SELECT last_value FROM slow_runs"), '2',
	'the cancelled run of slow ran again');

$node->stop;
done_testing();
