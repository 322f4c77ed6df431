
# A worker's claim scans the due index from a bound, not from the start
# (issue 8: under a held xmin the start fills with dead entries), and no
# due resource is missed for it: each case below leaves a due resource
# below the bound of a worker that has already claimed later ones, with
# delta.poll_interval at 1h, so only the reports of wakeup.c can find it.
#  - an inform whose transaction began before the claims and commits late;
#  - a claim that locked a resource (the worker skipped it) and rolled back;
#  - a resource of a kind at its parallelism cap, passed over, whose cap
#    frees later;
# and under a held xmin, the claims do not walk the dead entries of what
# they claimed before (counted in index entries read, not in time).

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
	SELECT delta.register_controller('k', 'noop(delta.resource)');
	SELECT delta.register_controller('capped', NULL, parallelism => 1);
});
ok(wait_for_workers($node, $db, undef, 1), 'one worker');

# informs n new resources of kind k, prefix1 .. prefixn, in one transaction
# begun now, and waits until the worker has run them all
my $batches = 0;
sub inform_and_drain
{
	my ($prefix, $n) = @_;
	sql("SELECT count(*) FROM delta.inform_many('k', ARRAY(SELECT ROW('$prefix' || g, '{}',"
		  . " NULL, NULL, NULL, NULL, NULL)::delta.inform_item FROM generate_series(1, $n) AS g))");
	return poll_until($node, $db,
		"SELECT count(*) FROM delta.resource WHERE kind = 'k' AND object_id LIKE '$prefix%'"
		  . " AND state = 'synced'", $n);
}

sub state_of
{
	my ($kind, $object_id) = @_;
	return sql("SELECT state FROM delta.resource WHERE kind = " . DeltaTest::quote($kind)
		  . " AND object_id = " . DeltaTest::quote($object_id));
}

sub set_paused
{
	my ($paused) = @_;
	sql("SELECT 1 FROM delta.alter_namespace('default', paused => $paused)");
	return wait_for_workers($node, $db, undef, $paused eq 'true' ? 0 : 1);
}

# 1. An inform begun before the worker's claims commits after them: its
# resource is due (at its transaction's start) below the bound.
my $late = $node->background_psql($db);
$late->query_safe('BEGIN');
$late->query_safe(q{SELECT count(*) FROM delta.inform('k', 'early', '{}')});
ok(inform_and_drain('a_', 20), 'resources informed after it run');
is(state_of('k', 'early'), '', 'the early resource is not visible to the worker yet');
$late->query_safe('COMMIT');
ok(wait_for_state($node, $db, 'k', 'early', 'synced'),
	'the early resource committed late runs (its commit lowers the bound)');

# 2. A claim locks a due resource, the worker skips it and claims later
# ones, and the claim rolls back: the resource is due again, below.
ok(set_paused('true'), 'namespace paused');
sql(q{SELECT count(*) FROM delta.inform('k', 'rolled_back', '{}')});
my $claimer = $node->background_psql($db);
$claimer->query_safe('BEGIN');
is($claimer->query_safe(q{SELECT object_id FROM delta._claim('default', 1)}),
	'rolled_back', 'another transaction claims it');
ok(set_paused('false'), 'namespace unpaused');
ok(inform_and_drain('b_', 20), 'resources informed after it run');
$claimer->query_safe('ROLLBACK');
ok(wait_for_state($node, $db, 'k', 'rolled_back', 'synced'),
	'the resource of the rolled-back claim runs');

# 3. A kind at its cap: an external worker holds c1 (the kind has no work
# function yet, so the worker leaves it alone), then the kind gets one; the
# worker passes c2 over and claims later resources; when the cap frees, c2
# runs at the next wake-up, though the resources after it have been claimed.
sql(q{SELECT count(*) FROM delta.inform('capped', 'c1', '{}')});
my $external = $node->background_psql($db);
my $token = $external->query_safe(
	q{SELECT token FROM delta.claim('default', 1, kinds => '{capped}')});
sql(q{SELECT count(*) FROM delta.inform('capped', 'c2', '{}')});
sql(q{SELECT 1 FROM delta.alter_controller('capped', work => 'noop(delta.resource)')});
ok(inform_and_drain('c_', 20), 'resources informed after c2 run');
is(state_of('capped', 'c2'), 'scheduled', 'c2 waits for the cap');
$external->query_safe("SELECT delta.complete('$token')");
is(state_of('capped', 'c1'), 'synced', 'the external worker completed c1');
ok(inform_and_drain('d_', 1), 'a later inform wakes the worker');
ok(wait_for_state($node, $db, 'capped', 'c2', 'synced'), 'c2 runs now that its cap is free');

# 4. Under a held xmin, each drained resource leaves a dead entry at the
# front of resource_due_idx; claims from the start would read them all
# again each time (some 2 x 100 x (0 + 1 + ... + 19) = 38,000 entries for
# these 20 batches), claims from the bound only what is new.
my $holder = $node->background_psql($db);
$holder->query_safe('BEGIN');
$holder->query_safe('SELECT txid_current()');
sub due_index_reads
{
	# the workers' statistics reach the shared counters at their commits
	sql('SELECT pg_stat_force_next_flush()');
	return sql(q{SELECT idx_tup_read FROM pg_stat_all_indexes WHERE indexrelname = 'resource_due_idx'});
}
my $before = due_index_reads();
my $drained = 1;
for my $i (1 .. 20)
{
	$drained &&= inform_and_drain("x${i}_", 100);
}
ok($drained, '20 batches of 100 drained under a held xmin');
# let the worker's counters arrive (they are flushed at most once a second)
sleep(2);
sql(q{SELECT count(*) FROM delta.inform('k', 'flush', '{}')});
ok(wait_for_state($node, $db, 'k', 'flush', 'synced'), 'one more run');
sleep(2);
my $reads = due_index_reads() - $before;
cmp_ok($reads, '<', 12000, "the claims read $reads entries of resource_due_idx, not every dead one each time");
$holder->query_safe('COMMIT');

$_->quit for ($late, $claimer, $external, $holder);
$node->stop;
done_testing();
