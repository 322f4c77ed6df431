
# A controller's parallelism caps how many of its resources run at once,
# across all the workers of the namespace; a kind without a cap uses every
# worker.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use lib '.';
use DeltaTest;

# batch_size 1: each worker claims one resource at a time, so without a cap
# four workers run four resources at once.
my $node = DeltaTest::new_node('main', conf => { 'delta.batch_size' => 1 });
my $db = 'postgres';
create_extension($node, $db);

$node->safe_psql($db, q{
	CREATE FUNCTION nap(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ SELECT pg_sleep((r.object ->> 'sleep')::float8) $$;
	SELECT delta.create_namespace('wide', max_workers => 4);
	SELECT delta.register_controller('capped', 'nap(delta.resource)', parallelism => 2);
	SELECT delta.register_controller('free', 'nap(delta.resource)');
});
ok(wait_for_workers($node, $db, "namespace = 'wide' AND state = 'idle'", 4),
	'the namespace has its four workers');

# Samples, in one snapshot, how many resources of $kind are pending and how
# many workers are running one, until none is left unsynced.
sub drain
{
	my ($kind) = @_;
	my $psql = $node->background_psql($db);
	my ($max_pending, $max_running, $samples) = (0, 0, 0);
	my $deadline = time() + $DeltaTest::TIMEOUT;
	while (time() < $deadline)
	{
		my $out = $psql->query_safe(
			"SELECT (SELECT count(*) FROM delta.resource WHERE kind = '$kind' AND state = 'pending') || ' ' || "
			  . "(SELECT count(*) FROM delta.workers WHERE kind = '$kind' AND state = 'running') || ' ' || "
			  . "(SELECT count(*) FROM delta.resource WHERE kind = '$kind' AND state <> 'synced')");
		my ($pending, $running, $left) = split ' ', $out;
		$samples++;
		$max_pending = $pending if $pending > $max_pending;
		$max_running = $running if $running > $max_running;
		last if $left == 0;
		usleep(20_000);
	}
	$psql->quit;
	note("$kind: $samples samples, at most $max_pending pending, $max_running running");
	return ($max_pending, $max_running);
}

$node->safe_psql($db,
	"SELECT count(*) FROM delta.inform_many('capped', (SELECT jsonb_agg(jsonb_build_object('object_id', 'c' || i, 'object', '{\"sleep\": 0.3}'::jsonb)) FROM generate_series(1, 20) AS i), namespace => 'wide')"
);
my ($pending, $running) = drain('capped');
is($node->safe_psql($db, "SELECT count(*) FROM delta.resource WHERE kind = 'capped' AND state = 'synced'"),
	'20', 'all 20 capped resources are synced');
cmp_ok($pending, '<=', 2, 'never more than parallelism (2) resources of the kind pending');
cmp_ok($running, '<=', 2, 'never more than parallelism (2) runs of the kind at once');
cmp_ok($running, '>=', 1, 'runs were observed');

# The control: the same workers run more than two uncapped resources at once.
$node->safe_psql($db,
	"SELECT count(*) FROM delta.inform_many('free', (SELECT jsonb_agg(jsonb_build_object('object_id', 'f' || i, 'object', '{\"sleep\": 1}'::jsonb)) FROM generate_series(1, 8) AS i), namespace => 'wide')"
);
($pending, $running) = drain('free');
cmp_ok($running, '>', 2, 'without a cap more than two runs of a kind happen at once');
is($node->safe_psql($db, "SELECT count(*) FROM delta.resource WHERE kind = 'free' AND state = 'synced'"),
	'8', 'all 8 free resources are synced');

# Both at once: the cap of one kind does not hold back the other, and
# still holds while the other kind keeps workers busy.
$node->safe_psql($db, q{
	BEGIN;
	SELECT count(*) FROM delta.inform_many('capped', (SELECT jsonb_agg(jsonb_build_object('object_id', 'c2-' || i, 'object', '{"sleep": 0.3}'::jsonb)) FROM generate_series(1, 10) AS i), namespace => 'wide');
	SELECT count(*) FROM delta.inform_many('free', (SELECT jsonb_agg(jsonb_build_object('object_id', 'f2-' || i, 'object', '{"sleep": 0.3}'::jsonb)) FROM generate_series(1, 10) AS i), namespace => 'wide');
	COMMIT;
});
($pending, $running) = drain('capped');
cmp_ok($pending, '<=', 2, 'mixed with another kind, the cap still holds');
ok( DeltaTest::poll_until($node, $db,
		"SELECT count(*) FROM delta.resource WHERE kind IN ('capped', 'free') AND state <> 'synced'", '0'),
	'both kinds drain');

$node->stop;
done_testing();
