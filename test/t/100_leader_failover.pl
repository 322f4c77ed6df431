
# Copyright: the delta authors.
#
# Maintenance is led by exactly one process per database: the namespace
# worker holding the session advisory lock (1684368500, 0), shown as role
# 'leader' in delta.workers.  Sampled all through the test, including
# across the leader's death, there is never more than one holder.  When
# the leader is terminated another worker takes the lock, and maintenance
# goes on: a namespace with resource_expiry keeps expiring (and so
# re-working) its synced resource after the failover, and a pending
# resource whose holder is gone (faked) is rescued by the new leader even
# in a namespace whose workers are paused.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('leader',
	conf => { 'delta.maintenance_interval' => "'500ms'" });
create_extension($node, 'postgres');

$node->safe_psql('postgres', q{
CREATE TABLE runs (object_id text, attempt int, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE sql AS
  $$ INSERT INTO runs (object_id, attempt) VALUES (r.object_id, r.attempt) $$;
SELECT delta.create_namespace('ns', max_workers => 3, resource_expiry => '1 second');
SELECT delta.create_namespace('frozen', max_workers => 1);
SELECT delta.alter_namespace('frozen', paused => true);
SELECT delta.register_controller('thing', 'work(delta.resource)');
});

ok( poll_until(
		$node, 'postgres',
		q{SELECT count(*) FROM delta.workers WHERE role IN ('worker', 'leader') AND namespace = 'ns'},
		'3'),
	'namespace ns has its three workers');

# Holders of the leader lock in this database, and the leader rows of
# delta.workers: "holders;holder pids;leaders;leader pids".
my $leader_sql = q{
SELECT (SELECT count(*) FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.classid = 1684368500 AND l.objid = 0
          AND l.objsubid = 2 AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
    || ';' || coalesce((SELECT string_agg(l.pid::text, ' ' ORDER BY l.pid) FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.classid = 1684368500 AND l.objid = 0
          AND l.objsubid = 2 AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())), '')
    || ';' || (SELECT count(*) FROM delta.workers WHERE role = 'leader')
    || ';' || coalesce((SELECT string_agg(pid::text, ' ' ORDER BY pid) FROM delta.workers
                        WHERE role = 'leader'), '')
};

my @samples;

# One sample of the leader state; returns (holders, holder pid list).
sub sample
{
	my $s = $node->safe_psql('postgres', $leader_sql);
	push @samples, $s;
	my ($holders, $pids) = split /;/, $s;
	return ($holders, $pids // '');
}

# Samples until the lock has exactly one holder, whose pid differs from
# $not_pid, and delta.workers shows that same pid as the only leader.
sub wait_for_leader
{
	my ($not_pid) = @_;
	my $deadline = time() + $DeltaTest::TIMEOUT;
	while (time() < $deadline)
	{
		my ($holders, $pids, $leaders, $leader_pids) = split /;/,
		  $node->safe_psql('postgres', $leader_sql);
		push @samples, join(';', $holders, $pids // '', $leaders, $leader_pids // '');
		return $pids
		  if $holders == 1
		  && $leaders == 1
		  && $pids eq ($leader_pids // '')
		  && (!defined $not_pid || $pids ne $not_pid);
		usleep(50_000);
	}
	diag("no (new) leader; last samples (holders;pids;leaders;pids):\n"
		  . join("\n", @samples[-5 .. -1])
		  . "\ndelta.workers:\n"
		  . $node->safe_psql('postgres', 'SELECT * FROM delta.workers ORDER BY pid')
		  . "\nadvisory locks:\n"
		  . $node->safe_psql('postgres',
			q{SELECT pid, classid, objid, objsubid, granted FROM pg_locks WHERE locktype = 'advisory'}));
	return undef;
}

my $leader = wait_for_leader();
ok(defined $leader, 'exactly one process holds the leader lock and is shown as leader');
my $role = $node->safe_psql('postgres',
	"SELECT role || ' ' || namespace FROM delta.workers WHERE pid = $leader");
like($role, qr/^leader /, "the lock holder ($leader) is a namespace worker shown as leader");

for (1 .. 20) { sample(); usleep(50_000); }

# Maintenance by the first leader: the synced resource of ns expires and is
# worked again.
$node->safe_psql('postgres', q{SELECT delta.inform('thing', 'e1', '{}', namespace => 'ns')});
ok(wait_for_state($node, 'postgres', 'thing', 'e1', 'synced'), 'e1 is synced');
ok( poll_until(
		$node, 'postgres',
		q{SELECT count(*) >= 2 FROM runs WHERE object_id = 'e1'}),
	'e1 expires and is worked again under the first leader');

# Kill the leader; keep sampling while another one takes over.
$node->safe_psql('postgres', "SELECT pg_terminate_backend($leader)");
my $new_leader = wait_for_leader($leader);
ok(defined $new_leader, "another process ($new_leader) takes the leader lock after $leader is terminated")
  or diag(join("\n", @samples));
ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $leader", '0'),
	'the old leader is gone');

for (1 .. 20) { sample(); usleep(50_000); }

# Maintenance continues under the new leader: expiry ...
my $after = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) >= 2 FROM runs WHERE object_id = 'e1' AND at > '$after'"),
	'e1 keeps expiring and being worked again after the failover');

# ... and the rescue of every namespace: a pending resource of the paused
# namespace "frozen", whose holder (a fake, long-gone process) is dead, goes
# back to failed.  No worker of "frozen" runs, so only the leader can do it.
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM delta.workers WHERE namespace = 'frozen'}),
	'0', 'the paused namespace has no worker');
$node->safe_psql('postgres', q{
SELECT delta.inform('thing', 'stuck', '{}', namespace => 'frozen');
UPDATE delta.resource SET state = 'pending', attempt = 1, due_at = NULL, attempted_at = now(),
       holder_pid = 999999, holder_started_at = '2000-01-01'
WHERE object_id = 'stuck';
});
ok(wait_for_state($node, 'postgres', 'thing', 'stuck', 'failed'),
	'the new leader rescues a dead holder\'s resource in a paused namespace');
like( $node->safe_psql('postgres',
		q{SELECT errors->-1->>'error' FROM delta.resource WHERE object_id = 'stuck'}),
	qr/worker exited during the run \(pid 999999\)/,
	'the rescue records that the holder exited');

for (1 .. 20) { sample(); usleep(50_000); }

# Pausing the leader's namespace stops its workers (cleanly): a worker of
# the other namespace takes over.
my $leader_ns = $node->safe_psql('postgres',
	"SELECT namespace FROM delta.workers WHERE pid = $new_leader");
$node->safe_psql('postgres', "SELECT delta.alter_namespace('$leader_ns', paused => true)");
my $third = wait_for_leader($new_leader);
ok(defined $third, "after namespace $leader_ns is paused, another process ($third) leads");
isnt($node->safe_psql('postgres', "SELECT namespace FROM delta.workers WHERE pid = $third"),
	$leader_ns, 'a worker of another namespace');

# Never more than one holder in any sample.
my @bad = grep { (split /;/)[0] > 1 || (split /;/)[2] > 1 } @samples;
ok(scalar(@samples) >= 50, scalar(@samples) . ' samples of the leader lock were taken');
is(scalar(@bad), 0, 'no sample shows more than one leader')
  or diag("samples with more than one leader:\n" . join("\n", @bad));

$node->stop;
done_testing();
