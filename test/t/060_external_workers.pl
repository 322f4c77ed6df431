
# Copyright: the delta authors.
#
# External workers (delta.claim) hold their claims like server workers:
#  - a claiming session that ends (its client killed with SIGKILL, or
#    pg_terminate_backend) loses its claims at once, without a timer: the
#    maintenance interval here is one hour, so only the exit can rescue them;
#    another worker then syncs the resource exactly once;
#  - a lease that is not renewed runs out and is rescued, even while its
#    session lives; a late complete is refused and changes nothing; a
#    leased claim outlives its session and can be ended from another one;
#  - a waiting claim is woken by the commit of an inform, and by the end of
#    another worker's snooze;
#  - server workers and external workers share a namespace without running
#    anything twice.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('external',
	conf => { 'delta.maintenance_interval' => "'1h'" });
my $db = 'postgres';
create_extension($node, $db);

$node->safe_psql($db, q{
SELECT delta.create_namespace('ext', max_workers => 0);
SELECT delta.register_controller('thing', NULL, max_attempts => 5, backoff_base => '1 second',
                                 backoff_max => '1 second');
CREATE TABLE applied (object_id text, attempt int, by_pid int);
});

# An external worker's session that claims one resource and then stays idle,
# as a worker does while it works outside the database.
sub claiming_session
{
	my (%opts) = @_;
	my $lease = $opts{lease} ? DeltaTest::quote($opts{lease}) : 'NULL';
	my $session = $node->background_psql($db, on_error_stop => 0);
	my $out = $session->query_safe(
		"SELECT token || ' ' || object_id || ' ' || pg_backend_pid() FROM delta.claim('ext', 1, lease => $lease)");
	chomp $out;
	my ($token, $object_id, $pid) = split / /, $out;
	return ($session, $token, $object_id, $pid);
}

sub state_of
{
	my ($object_id) = @_;
	return $node->safe_psql($db,
		"SELECT state || '/' || attempt FROM delta.resource WHERE kind = 'thing' AND object_id = "
		  . DeltaTest::quote($object_id));
}

# Claims what is due as another external worker (waiting for it, at most
# a minute) and completes it, applying it once; returns the object ids.  Its
# session lives on: a claim held by a session ends with it.
my $other = $node->background_psql($db);
sub work_as_another_worker
{
	my @done;
	foreach my $row (split /\n/,
		$other->query_safe("SELECT token || ' ' || object_id FROM delta.claim('ext', 10, wait => '1 minute')"))
	{
		my ($token, $object_id) = split / /, $row;
		$other->query_safe(qq{
			INSERT INTO applied VALUES (${\DeltaTest::quote($object_id)}, 0, pg_backend_pid());
			SELECT delta.complete('$token');});
		push @done, $object_id;
	}
	return @done;
}

#
# SIGKILL of the client process: the backend sees the connection go, exits,
# and the claim is rescued at once.
#
$node->safe_psql($db, q{SELECT delta.inform('thing', 'k1', '{}', namespace => 'ext')});
my ($session, $token, $object_id, $pid) = claiming_session();
is($object_id, 'k1', 'the external worker claimed k1');
is(state_of('k1'), 'pending/1', 'k1 is pending, its attempt counted');
$session->{run}->signal('KILL');
eval { $session->{run}->finish };
ok(poll_until($node, $db, "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid", '0'),
	'the killed client\'s backend has exited');
ok(poll_until($node, $db,
	"SELECT state FROM delta.resource WHERE object_id = 'k1'", 'failed'),
	'the claim of the killed worker is rescued at once');
like($node->safe_psql($db, q{SELECT errors -> -1 ->> 'error' FROM delta.resource WHERE object_id = 'k1'}),
	qr/worker exited during the run \(pid $pid\)/, 'the rescue names the session that held it');
my ($ret, $stdout, $stderr) = $node->psql($db, "SELECT delta.complete('$token')");
like($stderr, qr/claim .* is not held/, 'the dead worker\'s token is refused');
is_deeply([ work_as_another_worker() ], ['k1'], 'another worker takes k1 once its back-off ends');
is(state_of('k1'), 'synced/2', 'k1 is synced, on its second attempt');

#
# pg_terminate_backend of the claiming session
#
$node->safe_psql($db, q{SELECT delta.inform('thing', 't1', '{}', namespace => 'ext')});
($session, $token, $object_id, $pid) = claiming_session();
is($object_id, 't1', 'the external worker claimed t1');
$node->safe_psql($db, "SELECT pg_terminate_backend($pid)");
ok(poll_until($node, $db, "SELECT state FROM delta.resource WHERE object_id = 't1'", 'failed'),
	'the claim of the terminated session is rescued at once');
eval { $session->quit };
is_deeply([ work_as_another_worker() ], ['t1'], 'another worker takes t1');
is(state_of('t1'), 'synced/2', 't1 is synced, on its second attempt');

#
# A lease that is not renewed runs out while its session lives; a late
# complete is refused.
#
$node->safe_psql($db, q{SELECT delta.inform('thing', 'l1', '{}', namespace => 'ext')});
($session, $token, $object_id, $pid) = claiming_session(lease => '1 second');
is($object_id, 'l1', 'the external worker claimed l1 with a lease of a second');
# the next claim of the namespace rescues an expired lease
ok(poll_until($node, $db,
	q{SELECT count(*) FROM delta.claim('ext', 1, kinds => '{nothing}'); SELECT state FROM delta.resource WHERE object_id = 'l1'},
	"0\nfailed"),
	'the lease runs out and the claim is rescued');
like($node->safe_psql($db, q{SELECT errors -> -1 ->> 'error' FROM delta.resource WHERE object_id = 'l1'}),
	qr/claim lease ran out/, 'the error says the lease ran out');
$session->query("SELECT delta.complete('$token')");
like($session->{stderr}, qr/claim .* is not held/, 'the late complete of the lease holder is refused');
is(state_of('l1'), 'failed/1', 'and changes nothing');
$session->quit;

# A leased claim outlives its session and is ended from another one.
$node->safe_psql($db, q{SELECT delta.inform('thing', 'l2', '{}', namespace => 'ext')});
($session, $token, $object_id, $pid) = claiming_session(lease => '1 hour');
$session->quit;
ok(poll_until($node, $db, "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid", '0'),
	'the leasing session has exited');
$node->safe_psql($db, q{SELECT count(*) FROM delta.claim('ext', 1, kinds => '{nothing}')});
is(state_of('l2'), 'pending/1', 'a leased claim is not rescued when its session ends');
ok($node->safe_psql($db, "SELECT delta.heartbeat('$token') > now() + interval '59 minutes'") eq 't',
	'another session renews the lease');
$node->safe_psql($db, "SELECT delta.complete('$token')");
is(state_of('l2'), 'synced/1', 'and completes it');

#
# A waiting claim is woken by the commit of an inform.
#
# (a namespace of its own: in ext, an earlier resource's back-off may end)
$node->safe_psql($db, q{SELECT delta.create_namespace('waiting', max_workers => 0)});
my $waiter = $node->background_psql($db);
$waiter->query_until(qr/waiting/, q{\echo waiting
SELECT object_id FROM delta.claim('waiting', 1, wait => '5 minutes');
});
ok(poll_until($node, $db,
	q{SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'Extension' AND query LIKE '%delta.claim%'}, '1'),
	'the claim waits');
$node->safe_psql($db, q{BEGIN; SELECT delta.inform('thing', 'w1', '{}', namespace => 'waiting');
	SELECT pg_sleep(0.2); COMMIT;});
ok(poll_until($node, $db, q{SELECT state FROM delta.resource WHERE object_id = 'w1'}, 'pending'),
	'the inform\'s commit wakes it and it claims w1');
$waiter->quit;
ok(poll_until($node, $db, q{SELECT state FROM delta.resource WHERE object_id = 'w1'}, 'failed'),
	'its session ends, and so does its claim');

# A claim that already waits takes a resource snoozed by another worker when
# the snooze ends, not when its own wait does.  (A namespace of its own
# again: w1 is due in 'waiting' once its back-off ends.)
$node->safe_psql($db, q{SELECT delta.create_namespace('snoozing', max_workers => 0);
	SELECT delta.inform('thing', 'w2', '{}', namespace => 'snoozing')});
my $snoozer = $node->background_psql($db);
my $snoozer_pid = $snoozer->query_safe('SELECT pg_backend_pid()');
my $w2_token = $snoozer->query_safe(q{SELECT token FROM delta.claim('snoozing', 1)});
$waiter = $node->background_psql($db);
$waiter->query_until(qr/waiting/, q{\echo waiting
SELECT object_id FROM delta.claim('snoozing', 1, wait => '5 minutes');
});
ok(poll_until($node, $db,
	q{SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'Extension' AND query LIKE '%delta.claim%'}, '1'),
	'a second claim waits');
$snoozer->query_safe("SELECT delta.snooze('$w2_token', '1 second')");
# (30 s for a snooze of 1 s: without the snooze's wake-up the claim sleeps
# on, and here something else happened to wake it after a minute)
ok(poll_until($node, $db,
	"SELECT state = 'pending' AND holder_pid <> $snoozer_pid FROM delta.resource WHERE object_id = 'w2'", 't', 30),
	'it claims w2 when the snooze ends');
$waiter->quit;
$snoozer->quit;

#
# Server and external workers in one namespace: nothing runs twice.
#
$node->safe_psql($db, q{
SELECT delta.create_namespace('mixed', max_workers => 2);
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO applied VALUES (r.object_id, r.attempt, pg_backend_pid()) $$;
SELECT delta.register_controller('shared', 'work(delta.resource)');
SELECT count(*) FROM delta.inform_many('shared',
    (SELECT jsonb_agg(jsonb_build_object('object_id', 's' || i, 'object', '{}'::jsonb))
     FROM generate_series(1, 300) AS i), namespace => 'mixed');
});
my $external = 0;
for (my $i = 0; $i < 100; $i++)
{
	my $n = $other->query_safe(q{
		WITH c AS (SELECT token, object_id, attempt FROM delta.claim('mixed', 5)),
		     a AS (INSERT INTO applied SELECT object_id, attempt, -1 FROM c)
		SELECT count(*) FROM c;});
	# the claim above committed; the run ends in a second statement
	$other->query_safe(q{
		SELECT delta.complete_many(array_agg(c.token)) FROM delta.external_claim AS c
		JOIN delta.resource AS r ON r.id = c.resource_id WHERE r.kind = 'shared'
		HAVING count(*) > 0});
	$external += $n;
	last if $node->safe_psql($db,
		q{SELECT count(*) FROM delta.resource WHERE kind = 'shared' AND state <> 'synced'}) eq '0';
}
ok(poll_until($node, $db,
	q{SELECT count(*) FROM delta.resource WHERE kind = 'shared' AND state = 'synced'}, '300'),
	'all 300 resources of the shared namespace are synced');
is($node->safe_psql($db,
	q{SELECT count(*) FROM (SELECT object_id FROM applied WHERE object_id LIKE 's%' GROUP BY object_id HAVING count(*) <> 1) AS twice}),
	'0', 'each was applied exactly once');
cmp_ok($external, '>', 0, 'the external worker did some of them');
note("external runs: $external of 300");

$other->quit;
$node->stop;
done_testing();
