
# Copyright: the delta authors.
#
# After a crash restart the leader rescues what no other worker would:
#   - a resource left pending by the worker of a namespace that was paused
#     meanwhile (paused during the run, which it lets finish; the server
#     then went down): no worker of that namespace starts again, so only the
#     leader -- a worker of another namespace -- can return it to failed.
#     It is not worked while the namespace stays paused, and is synced on
#     attempt 2 once it is resumed;
#   - an inform run whose worker died in the middle: failed with an error
#     saying so, then retried and completed.
# Both happen at the leader's first pass after the restart, without waiting
# for the maintenance interval (one hour here).  t/054 covers the rescue of
# an active namespace by its own workers.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('paused',
	conf => {
		'delta.maintenance_interval' => "'1h'",
		'delta.inform_jitter' => 0,
	});
create_extension($node, 'postgres');

$node->safe_psql('postgres', q{
CREATE TABLE runs (object_id text, attempt int);
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF r.object_id = 'stuck' AND r.attempt = 1 THEN
        PERFORM pg_sleep(60);
    END IF;
    INSERT INTO runs VALUES (r.object_id, r.attempt);
END
$$;
-- sequences are not rolled back, and skip ahead after a crash: only the
-- very first inform run sleeps
CREATE SEQUENCE inform_calls;
CREATE FUNCTION inform(o delta.inform_options) RETURNS SETOF delta.inform_item LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('inform_calls') = 1 THEN
        PERFORM pg_sleep(60);
    END IF;
    RETURN NEXT ROW('from-inform', '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item;
END
$$;
SELECT delta.register_controller('thing', 'work(delta.resource)', work_timeout => '10 min');
SELECT delta.register_controller('pulled', 'work(delta.resource)', inform => 'inform(delta.inform_options)',
    inform_timeout => '10 min', backoff_base => '3 seconds', backoff_max => '3 seconds');
SELECT delta.create_namespace('p', max_workers => 1);
SELECT delta.inform('thing', 'stuck', '{}', namespace => 'p');
});

ok( poll_until(
		$node, 'postgres',
		q{SELECT state || ' ' || attempt FROM delta.resource WHERE object_id = 'stuck'},
		'pending 1'),
	'the resource of namespace p is claimed');
ok( poll_until(
		$node, 'postgres',
		q{SELECT count(*) FROM delta.workers WHERE namespace = 'p' AND state = 'running'}, '1'),
	'the worker of p is in the middle of its run');
my $holder = $node->safe_psql('postgres',
	q{SELECT holder_pid FROM delta.resource WHERE object_id = 'stuck'});

$node->safe_psql('postgres', q{SELECT delta.schedule_inform('pulled')});
ok( poll_until(
		$node, 'postgres',
		q{SELECT state || ' ' || attempt FROM delta.inform_run WHERE kind = 'pulled'},
		'running 1'),
	'an inform run is in the middle of its run');
my $inform_holder = $node->safe_psql('postgres',
	q{SELECT holder_pid FROM delta.inform_run WHERE kind = 'pulled'});

# Pausing lets the run go on; then the server goes down.
$node->safe_psql('postgres', q{SELECT delta.alter_namespace('p', paused => true)});
is( $node->safe_psql('postgres',
		q{SELECT state || ' ' || holder_pid FROM delta.resource WHERE object_id = 'stuck'}),
	"pending $holder", 'pausing p does not interrupt the run');
$node->stop('immediate');
$node->start;

ok(wait_for_state($node, 'postgres', 'thing', 'stuck', 'failed', 60),
	'after the restart the pending resource of the paused namespace is rescued');
is( $node->safe_psql('postgres',
		q{SELECT (errors->-1->>'attempt') || ' ' || (errors->-1->>'error') FROM delta.resource WHERE object_id = 'stuck'}),
	"1 worker exited during the run (pid $holder)",
	'with an error naming the worker that died, on attempt 1');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM delta.workers WHERE namespace = 'p'}),
	'0', 'no worker of the paused namespace runs');
is( $node->safe_psql('postgres',
		q{SELECT namespace FROM delta.workers WHERE role = 'leader'}),
	'default', 'the leader is the worker of namespace default');

ok( poll_until(
		$node, 'postgres',
		q{SELECT state || ' ' || attempt || ' ' || (errors->-1->>'error') FROM delta.inform_run WHERE kind = 'pulled'},
		"failed 1 worker exited during the inform run (pid $inform_holder)"),
	'the interrupted inform run is rescued: failed, with an error naming the worker');
ok( poll_until(
		$node, 'postgres',
		q{SELECT count(*) FROM delta.inform_run WHERE kind = 'pulled'}, '0'),
	'it is retried (after its back-off) and completes');
ok(wait_for_state($node, 'postgres', 'pulled', 'from-inform', 'synced'),
	'what it returned is synced');
is( $node->safe_psql('postgres',
		q{SELECT last_inform_run_at IS NOT NULL FROM delta.controller WHERE kind = 'pulled'}),
	't', 'the run is recorded as done');

is( $node->safe_psql('postgres',
		q{SELECT state FROM delta.resource WHERE object_id = 'stuck'}),
	'failed', 'the rescued resource is not worked while its namespace is paused');
$node->safe_psql('postgres', q{SELECT delta.alter_namespace('p', paused => false)});
ok(wait_for_state($node, 'postgres', 'thing', 'stuck', 'synced'),
	'once resumed it is synced');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(attempt::text, ',') FROM runs WHERE object_id = 'stuck'}),
	'2', 'on attempt 2, its only completed run');

$node->stop;
done_testing();
