
# Copyright: the delta authors.
#
# A worker killed with SIGKILL in the middle of a run takes the whole server
# down: the postmaster kills every backend and restarts.  After that, delta
# comes back by itself (the launcher is restarted and starts the namespace
# workers again), and the resource the dead worker held is rescued (failed,
# the attempt counted, an error saying the worker exited) and then synced
# exactly once; the run history has a crashed row for the killed run.
#
# The maintenance interval is one hour, so only the rescue a worker does
# when it starts can save the resource within the test's time.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('kill9',
	conf => {
		restart_after_crash => 'on',
		'delta.maintenance_interval' => "'1h'",
		log_min_messages => 'log',
	});
create_extension($node, 'postgres');

$node->safe_psql('postgres', q{
CREATE TABLE done (object_id text, attempt int);
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF r.object_id = 'a' AND r.attempt = 1 THEN
        PERFORM pg_sleep(60);  -- long enough to be killed in the middle
    END IF;
    INSERT INTO done VALUES (r.object_id, r.attempt);
END
$$;
SELECT delta.register_controller('thing', 'work(delta.resource)', work_timeout => '10 min');
});

my $id = $node->safe_psql('postgres',
	q{SELECT id FROM delta.inform('thing', 'a', '{"n": 1}')});

ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) FROM delta.workers WHERE namespace = 'default' AND state = 'running' AND resource_id = $id",
		'1'),
	'a worker runs resource a');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM delta.workers WHERE namespace = 'default' AND resource_id = $id");
my $launcher = $node->safe_psql('postgres',
	"SELECT pid FROM delta.workers WHERE role = 'launcher'");
is(DeltaTest::resource($node, 'postgres', 'thing', 'a')->{state},
	'pending', 'resource a is pending during its run');

my $log_offset = -s $node->logfile;
ok(kill('KILL', $pid), "worker $pid killed with SIGKILL");

# The postmaster notices, resets everything and accepts connections again.
ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) FROM delta.workers WHERE role = 'launcher' AND pid <> $launcher",
		'1'),
	'a new launcher runs after the crash restart');
ok( $node->log_contains(qr/\(PID $pid\) was terminated by signal 9/, $log_offset),
	'the postmaster saw the worker die by SIGKILL');
ok($node->log_contains(qr/all server processes terminated; reinitializing/, $log_offset),
	'the server was reinitialized');

ok( poll_until($node, 'postgres',
		"SELECT count(*) FROM delta.workers WHERE namespace = 'default'", '1'),
	'the namespace worker is back without any intervention');

ok(wait_for_state($node, 'postgres', 'thing', 'a', 'synced'),
	'resource a is synced after the restart');

my $row = DeltaTest::resource($node, 'postgres', 'thing', 'a');
is($row->{attempt},    '2',   'the killed run counted: synced on attempt 2');
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

is( $node->safe_psql('postgres',
		"SELECT string_agg(format('%s %s %s %s', attempt, outcome, coalesce(sqlstate, '-'), coalesce(pid::text, '-')), ',' ORDER BY id) "
		  . "FROM delta.run WHERE resource_id = $id"),
	"1 crashed 57P01 $pid,2 synced - " . $node->safe_psql('postgres',
		"SELECT pid FROM delta.run WHERE resource_id = $id AND attempt = 2"),
	"the run history has the crashed run (the dead worker's pid) and the one that synced");
ok( $node->safe_psql('postgres',
		"SELECT duration >= interval '0' FROM delta.run WHERE resource_id = $id AND outcome = 'crashed'") eq 't',
	'the crashed run lasted from its start to the rescue');

# And the restarted workers keep working: a new inform is synced.
$node->safe_psql('postgres', q{SELECT delta.inform('thing', 'b', '{}')});
ok(wait_for_state($node, 'postgres', 'thing', 'b', 'synced'),
	'a resource informed after the restart is synced');
is( $node->safe_psql('postgres',
		"SELECT string_agg(object_id || ':' || attempt, ',' ORDER BY object_id) FROM done"),
	'a:2,b:1',
	'each resource was worked exactly once');

$node->stop;
done_testing();
