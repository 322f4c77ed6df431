
# delta.pause_kind stops new runs of one kind without pausing its namespace
# (issue 9): a paused kind's due resources wait, other kinds go on, the idle
# worker sleeps (it neither claims nor wakes for the paused resources), and
# delta.resume_kind lets them run at once.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main', conf => { 'delta.poll_interval' => "'1h'" });
my $db   = 'postgres';
create_extension($node, $db);

sub sql { return $node->safe_psql($db, @_); }

sql(q{
	CREATE FUNCTION noop(r delta.resource) RETURNS void LANGUAGE sql AS 'SELECT';
	SELECT delta.register_controller('held', 'noop(delta.resource)');
	SELECT delta.register_controller('free', 'noop(delta.resource)');
});
is(sql(q{SELECT paused FROM delta.pause_kind('held')}), 't', 'kind held is paused');

# held is due first: unpaused, a claim would take it before free
sql(q{SELECT delta.inform('held', 'h1', '{}')});
sql(q{SELECT delta.inform('free', 'f1', '{}')});
ok(wait_for_state($node, $db, 'free', 'f1', 'synced'), 'the other kind runs');
is(sql(q{SELECT state || ' ' || attempt || ' ' || (due_at <= now()) FROM delta.resource WHERE object_id = 'h1'}),
	'scheduled 0 true', 'the paused kind\'s resource is due, and was not claimed');
my $processed = sql(q{SELECT sum(processed) FROM delta.workers WHERE role IN ('worker', 'leader')});
ok(poll_until($node, $db, q{SELECT state FROM delta.workers WHERE role IN ('worker', 'leader')}, 'idle'),
	'the worker is idle');
my $claims = sql(q{SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()});
sleep(1);
my $after = sql(q{SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()});
# a worker that woke for h1 again and again would commit a claim transaction each time
cmp_ok($after - $claims, '<', 20, 'the idle worker does not spin on the paused resource');

is(sql(q{SELECT paused FROM delta.resume_kind('held')}), 'f', 'kind held is resumed');
ok(wait_for_state($node, $db, 'held', 'h1', 'synced'), 'its resource runs at once (poll_interval is 1h)');

$node->stop;
done_testing();
