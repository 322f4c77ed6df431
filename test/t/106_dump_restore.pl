
# Copyright: the delta authors.
#
# pg_dump -Fc of a database that uses delta, restored with pg_restore into a
# new database of the same cluster and into a database of a second cluster
# whose transaction counter is far behind the first one's, gives a working
# delta in both:
#   - namespaces (`default` included, with changed settings), controllers,
#     resources in every state and the run history are as they were;
#   - a new inform and a new subscription work (the identity sequences of
#     delta.resource, delta.subscription and delta.run were restored: no duplicate
#     key), and the workers sync new resources in `default` and in another
#     namespace;
#   - the restored subscription gets every event it had not read before the
#     dump (same cluster: exactly those; other cluster: at least those, none
#     it never had), then the events of new runs (its cursor, an xid of the
#     first cluster, is not left in the second one's future).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use lib '.';
use DeltaTest;

# Reads events of subscription $sub in $db until $count of them (1 unless
# given) match $until (events wait for older transactions to end); returns
# them all as "category:object_id:state,...".
sub read_events
{
	my ($node, $db, $sub, $until, $count) = @_;
	$count ||= 1;
	my @all;
	my $deadline = time() + $DeltaTest::TIMEOUT;
	while (time() < $deadline)
	{
		my $page = $node->safe_psql($db,
			"SELECT string_agg(category || ':' || object_id || ':' || state, ',' ORDER BY xid, id)"
			  . " FROM delta.events($sub, 1000)");
		push @all, split /,/, $page;
		return join(',', @all) if (grep { $_ =~ $until } @all) >= $count;
		usleep(100_000);
	}
	diag("read_events($sub) gave up; got: " . join(',', @all));
	return join(',', @all);
}

my $origin = DeltaTest::new_node('origin');
create_extension($origin, 'app');

# Advance the first cluster's transaction counter well past where a fresh
# cluster is, so that its xids are in the second cluster's future.
$origin->safe_psql('app', q{
DO $$
BEGIN
    FOR i IN 1..3000 LOOP
        PERFORM pg_catalog.pg_current_xact_id();
        COMMIT;
    END LOOP;
END
$$;
});

$origin->safe_psql('app', q{
CREATE TABLE done (object_id text, at timestamptz DEFAULT now());
CREATE FUNCTION ok_work(r delta.resource) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO public.done (object_id) VALUES (r.object_id) $$;
CREATE FUNCTION bad_work(r delta.resource) RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'always fails'; END $$;
CREATE FUNCTION del_work(r delta.resource) RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN PERFORM delta.resource_delete('gone'); END $$;
SELECT delta.alter_namespace('default', max_workers => 2, synced_retention => '3 days',
                             degraded_retention => '4 days');
SELECT delta.create_namespace('billing', max_workers => 1, resource_expiry => '10 days',
                              deleted_retention => '5 days');
SELECT delta.create_namespace('frozen', max_workers => 1);
SELECT delta.alter_namespace('frozen', paused => true);
SELECT delta.register_controller('ok', 'ok_work(delta.resource)', max_attempts => 7);
SELECT delta.register_controller('bad', 'bad_work(delta.resource)', max_attempts => 1);
SELECT delta.register_controller('flaky', 'bad_work(delta.resource)', max_attempts => 5,
                                 backoff_base => '1 hour', backoff_max => '2 hours');
SELECT delta.register_controller('del', 'del_work(delta.resource)');
});
my $sub = $origin->safe_psql('app',
	q{SELECT delta.subscribe(ARRAY['object_synced', 'object_failed', 'object_deleted'], name => 'audit')});

# a first batch, read by the subscription; then a second one left unread
$origin->safe_psql('app',
	q{SELECT delta.inform('ok', 'read' || i, '{}') FROM generate_series(1, 3) AS i});
ok(poll_until($origin, 'app', q{SELECT count(*) FROM done}, '3'), 'first batch synced');
is(join(',', sort split /,/, read_events($origin, 'app', $sub, qr/:read\d:/, 3)),
	'object_synced:read1:synced,object_synced:read2:synced,object_synced:read3:synced',
	'the subscription read the first batch');
$origin->safe_psql('app', q{
SELECT delta.inform('ok', 'o' || i, jsonb_build_object('i', i), metadata => '{"m": 1}', tags => ARRAY['tag-a'])
FROM generate_series(1, 4) AS i;
SELECT delta.inform('ok', 'b' || i, '{}', namespace => 'billing') FROM generate_series(1, 2) AS i;
SELECT delta.inform('ok', 'f' || i, '{}', namespace => 'frozen') FROM generate_series(1, 2) AS i;
SELECT delta.inform('bad', 'x1', '{}');
SELECT delta.inform('flaky', 'y1', '{}');
SELECT delta.inform('del', 'z1', '{}');
});
ok( poll_until(
		$origin, 'app',
		q{SELECT string_agg(kind || ':' || state, ',' ORDER BY kind, state) FROM
		  (SELECT kind, state, count(*) FROM delta.resource GROUP BY 1, 2) AS s},
		'bad:degraded,del:deleted,flaky:failed,ok:scheduled,ok:synced'),
	'resources are synced, degraded, failed, deleted and scheduled (in a paused namespace)');
# the controller's next_due is an hour away: nothing moves any more but the cleaner
# of read events, which the snapshots below do not look at

my $snapshot = q{
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
		SELECT format('namespace %s %s %s %s %s %s %s %s', name, max_workers, resource_expiry,
		              synced_retention, degraded_retention, deleted_retention, paused, created_at) AS x
		FROM delta.namespace
		UNION ALL SELECT format('controller %s %s %s %s %s %s %s %s', kind, work, inform, max_attempts,
		                        backoff_base, backoff_max, owner, created_at) FROM delta.controller
		UNION ALL SELECT format('resource %s %s %s %s %s %s %s %s %s', id, kind, object_id, namespace, state,
		                        attempt, object, metadata, tags) FROM delta.resource
		UNION ALL SELECT format('subscription %s %s %s', id, name, categories) FROM delta.subscription
		UNION ALL SELECT format('run %s %s %s %s %s %s %s', id, object_id, attempt, outcome, started_at,
		                        duration, error) FROM delta.run
	) AS s
};
my $before = $origin->safe_psql('app', $snapshot);

my $dump = $PostgreSQL::Test::Utils::tmp_check . '/app.dump';
$origin->command_ok(
	[ 'pg_dump', '-Fc', '-d', $origin->connstr('app'), '-f', $dump ],
	'pg_dump -Fc');

# what the subscription had not read when the dump was taken
my $unread = read_events($origin, 'app', $sub, qr/./);
like($unread, qr/object_synced:o1:synced/, "unread events before the dump: $unread");
my %in_dump = map { $_ => 1 } split /,/, $unread;
$in_dump{"object_synced:read$_:synced"} = 1 foreach 1 .. 3;

my $target = DeltaTest::new_node('target');
cmp_ok(
	$target->safe_psql('postgres', 'SELECT pg_current_xact_id()::text::bigint'),
	'<',
	$origin->safe_psql('app', "SELECT cursor_xid::text::bigint FROM delta.subscription WHERE id = $sub"),
	'the second cluster is behind the cursor of the subscription');

# Restore into ($node, $db), then check everything works there.
sub restore_and_check
{
	my ($node, $db, $where) = @_;
	$node->safe_psql('postgres', qq{CREATE DATABASE "$db"});
	$node->command_ok(
		[
			'pg_restore', '--single-transaction', '--exit-on-error',
			'-d', $node->connstr($db), $dump
		],
		"$where: pg_restore");

	is($node->safe_psql($db, $snapshot), $before,
		"$where: namespaces (default included), controllers, resources, subscriptions, run history are the same");
	my $last_run = $node->safe_psql($db, 'SELECT max(id) FROM delta.run');

	# new informs: a new id from the restored sequence; synced in two namespaces
	my ($ret, $out, $err) = $node->psql($db,
		q{SELECT count(*) FROM delta.inform('ok', 'new1', '{}')});
	is($err, '', "$where: a new inform works");
	ok(wait_for_state($node, $db, 'ok', 'new1', 'synced'), "$where: a worker syncs it");
	$node->safe_psql($db, q{SELECT delta.inform('ok', 'new2', '{}', namespace => 'billing')});
	ok(wait_for_state($node, $db, 'ok', 'new2', 'synced'),
		"$where: a worker of the other namespace syncs a new resource");
	is($node->safe_psql($db, q{SELECT count(*) FROM done WHERE object_id IN ('new1', 'new2')}),
		'2', "$where: the work functions ran");
	is($node->safe_psql($db, "SELECT count(*) FROM delta.run WHERE object_id IN ('new1', 'new2') AND id > $last_run"),
		'2', "$where: their runs are in the history, with new ids from the restored sequence");

	# a new subscription
	($ret, my $new_sub, $err) = $node->psql($db,
		q{SELECT delta.subscribe(ARRAY['object_synced'], kinds => ARRAY['ok'])});
	is($err, '', "$where: a new subscription works");
	cmp_ok($new_sub, '>', $sub, "$where: with a new id");

	# the old subscription: what it had not read, then the new runs
	my $got = read_events($node, $db, $sub, qr/:new2:/);
	my @got = split /,/, $got;
	my @restored = grep { !/:new\d:/ } @got;
	my %got = map { $_ => 1 } @got;
	my @missing = grep { !$got{$_} } split /,/, $unread;
	is_deeply(\@missing, [], "$where: the old subscription gets every event it had not read");
	my @foreign = grep { !$in_dump{$_} } @restored;
	is_deeply(\@foreign, [], "$where: and no event that was not in the dump");
	like($got, qr/object_synced:new1:synced,object_synced:new2:synced$/,
		"$where: then the events of the new runs ($got)");
	if ($where eq 'same cluster')
	{
		is(join(',', @restored), $unread, "$where: exactly the unread events, in order");
	}

	$node->safe_psql($db, q{SELECT delta.inform('ok', 'new3', '{}')});
	ok(wait_for_state($node, $db, 'ok', 'new3', 'synced'), "$where: another new resource synced");
	is(read_events($node, $db, $sub, qr/:new3:/), 'object_synced:new3:synced',
		"$where: the old subscription gets its event");
	is(read_events($node, $db, $new_sub, qr/:new3:/), 'object_synced:new3:synced',
		"$where: the new subscription gets its event");
	return;
}

restore_and_check($origin, 'copy', 'same cluster');
restore_and_check($target, 'app', 'other cluster');

done_testing();
