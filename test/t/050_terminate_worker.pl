
# Copyright: the delta authors.
#
# A worker terminated in the middle of a run (pg_terminate_backend) is
# replaced by a new one, and the resource it held is rescued: it goes back
# to failed with an error saying its worker exited, the attempt it used
# counts, and it is then synced exactly once by the new worker.
#
# The work function sleeps on its first attempt (so it can be terminated
# there) and writes a row on every later attempt.  The maintenance interval
# is one hour, so only the rescue a worker does when it starts can save the
# resource within the test's time.

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
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF r.attempt = 1 THEN
        PERFORM pg_sleep(60);
    END IF;
    INSERT INTO done VALUES (r.object_id, r.attempt);
END
$$;
SELECT delta.register_controller('thing', 'work(delta.resource)', work_timeout => '10 min');
});

my $id = $node->safe_psql('postgres',
	q{SELECT id FROM delta.inform('thing', 'a', '{"n": 1}')});

# The worker is in the middle of the first run of resource a.
ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) FROM delta.workers WHERE namespace = 'default' AND state = 'running' AND resource_id = $id",
		'1'),
	'a worker runs resource a');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM delta.workers WHERE namespace = 'default' AND resource_id = $id");
my $row = DeltaTest::resource($node, 'postgres', 'thing', 'a');
is($row->{state},      'pending', 'resource a is pending during its run');
is($row->{attempt},    '1',       'its first attempt is counted at claim');
is($row->{holder_pid}, $pid,      'it is held by the running worker');

is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
	't', "worker $pid terminated");

# A new worker takes over the namespace ...
ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) > 0 FROM delta.workers WHERE namespace = 'default' AND pid <> $pid"
	),
	'a new worker replaces the terminated one');

# ... rescues the resource and syncs it.
ok(wait_for_state($node, 'postgres', 'thing', 'a', 'synced'),
	'resource a is synced after the rescue');

$row = DeltaTest::resource($node, 'postgres', 'thing', 'a');
is($row->{attempt},    '2',   'the interrupted run counted: synced on attempt 2');
is($row->{holder_pid}, undef, 'nobody holds it any more');

my $error = $node->safe_psql('postgres',
	"SELECT jsonb_array_length(errors) || '|' || (errors->0->>'attempt') || '|' || (errors->0->>'error') "
	  . "FROM delta.resource WHERE id = $id");
like($error, qr/^1\|1\|worker exited during the run \(pid $pid\)$/,
	'one error recorded: attempt 1, the worker exited (with its pid)');

is( $node->safe_psql('postgres',
		"SELECT string_agg(object_id || ':' || attempt, ',') FROM done"),
	'a:2',
	'the work function completed exactly once, on attempt 2');

ok( $node->log_contains(
		qr/\b1 resources\b.*held by exited workers/),
	'the rescue is logged');

$node->stop;
done_testing();
