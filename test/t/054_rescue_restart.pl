
# Copyright: the delta authors.
#
# Resources a worker had claimed (pending) when the server went down
# without a clean shutdown (stop -m immediate, in the middle of a run) are
# rescued as soon as the server is back: each goes back to failed with an
# error saying its worker exited, the attempt counts, and it is then synced
# exactly once.  The rescue does not wait for the maintenance interval (one
# hour here): every worker rescues its namespace when it starts.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('restart',
	conf => {
		'delta.maintenance_interval' => "'1h'",
		log_min_messages => 'log',
	});
create_extension($node, 'postgres');

# Informed in one transaction; the namespace's only worker has run nothing
# yet, so it claims one (claims are sized by run times) and sleeps in that
# run while the other two wait, unclaimed.
$node->safe_psql('postgres', q{
CREATE TABLE done (object_id text, attempt int);
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF r.object_id = 'r1' AND r.attempt = 1 THEN
        PERFORM pg_sleep(60);
    END IF;
    INSERT INTO done VALUES (r.object_id, r.attempt);
END
$$;
SELECT delta.register_controller('thing', 'work(delta.resource)', work_timeout => '10 min');
SELECT delta.inform('thing', 'r' || i, '{}') FROM generate_series(1, 3) AS i;
});

ok( poll_until(
		$node, 'postgres',
		q{SELECT string_agg(object_id || ':' || state || ':' || attempt, ',' ORDER BY object_id) FROM delta.resource},
		'r1:pending:1,r2:scheduled:0,r3:scheduled:0'),
	'the first resource is claimed (pending, attempt 1), the others are not');
ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) FROM delta.workers WHERE namespace = 'default' AND state = 'running'",
		'1'),
	'a worker is in the middle of a run');
my $holder = $node->safe_psql('postgres',
	q{SELECT string_agg(DISTINCT holder_pid::text, ',') FROM delta.resource});

$node->stop('immediate');
$node->start;

ok( poll_until(
		$node, 'postgres',
		q{SELECT string_agg(object_id || ':' || state, ',' ORDER BY object_id) FROM delta.resource},
		'r1:synced,r2:synced,r3:synced', 60),
	'the three resources are synced after the restart');

is( $node->safe_psql('postgres',
		q{SELECT string_agg(object_id || ':' || attempt || ':' || jsonb_array_length(errors), ',' ORDER BY object_id) FROM delta.resource}),
	'r1:2:1,r2:1:0,r3:1:0',
	'the claimed one was synced on attempt 2, with one error (the claim before the restart counted); the others lost nothing');
is( $node->safe_psql('postgres',
		q{SELECT (errors->0->>'attempt') || ' ' || (errors->0->>'error') FROM delta.resource WHERE object_id = 'r1'}),
	"1 worker exited during the run (pid $holder)",
	'its error says the holding worker exited');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(object_id || ':' || attempt, ',' ORDER BY object_id) FROM done}),
	'r1:2,r2:1,r3:1',
	'each work function completed exactly once');
ok( $node->log_contains(
		qr/\b1 resources\b.*held by exited workers/),
	'the rescue is logged');

$node->stop;
done_testing();
