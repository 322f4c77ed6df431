
# Copyright: the delta authors.
#
# Durable events, driven by real workers:
#   - without a subscription no event row is written;
#   - each committed transition gives exactly one event: 10 resources
#     synced and one failing twice (max_attempts 2) give 10 object_synced
#     and 2 object_failed events, the second with state degraded;
#   - a subscription returns only its kinds and categories;
#   - a LISTEN delta_events client is notified with a JSON payload;
#   - nothing is lost or doubled across a crash (a worker killed with
#     SIGKILL in the middle of the runs, so the server restarts): every
#     resource ends synced, and events() returns exactly one object_synced
#     per resource and one object_failed per error it recorded (the
#     rescue), to a consumer reading in pages of 3 while it happens as well
#     as to one reading everything at the end.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('events',
	conf => { 'delta.batch_size' => 2, restart_after_crash => 'on' });
create_extension($node, 'postgres');

$node->safe_psql('postgres', q{
SELECT delta.alter_namespace('default', max_workers => 3);
CREATE TABLE runs (object_id text, attempt int);
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF r.object ? 'sleep' THEN
        PERFORM pg_sleep((r.object->>'sleep')::float8);
    END IF;
    INSERT INTO runs VALUES (r.object_id, r.attempt);
    IF r.object ? 'fail' THEN
        RAISE EXCEPTION 'asked to fail';
    END IF;
END
$$;
SELECT delta.register_controller('k', 'work(delta.resource)', max_attempts => 2,
    backoff_base => '100 ms', backoff_max => '200 ms');
SELECT delta.register_controller('other', 'work(delta.resource)', max_attempts => 1);
SELECT delta.register_controller('c', 'work(delta.resource)', max_attempts => 5,
    backoff_base => '100 ms', backoff_max => '200 ms', work_timeout => '1 min');
});
ok( poll_until(
		$node, 'postgres',
		q{SELECT count(*) FROM delta.workers WHERE namespace = 'default'}, '3'),
	'three workers run');

# Every event of subscription $sub (hashrefs), reading pages of $max until
# one is empty and $done->(\@events) is true, or the timeout.  Query
# errors (a restarting server) are retried.
sub read_events
{
	my ($sub, $max, $done, $between) = @_;
	my @events;
	my $deadline = time() + $DeltaTest::TIMEOUT;
	while (time() < $deadline)
	{
		my @page = eval {
			query_rows($node, 'postgres',
				"SELECT id, xid::text AS xid, category, resource_id, kind, object_id, state::text AS state,"
				  . " attempt, error->>'error' AS error FROM delta.events($sub, $max)");
		};
		push @events, @page;
		$between->() if $between;
		return @events if !@page && $done->(\@events);
		usleep(100_000) unless @page;
	}
	diag("read_events($sub) gave up; got:\n" . join("\n", map { describe($_) } @events));
	return @events;
}

sub describe
{
	my ($e) = @_;
	return join(':', map { $e->{$_} // 'NULL' } qw(category object_id state attempt));
}

#
# No subscription: no event rows.
#
$node->safe_psql('postgres', q{
SELECT delta.inform('k', 'pre' || i, '{}') FROM generate_series(1, 5) AS i;
SELECT delta.inform('other', 'prefail', '{"fail": true}');
});
ok( poll_until(
		$node, 'postgres',
		q{SELECT count(*) FROM delta.resource WHERE state IN ('synced', 'degraded')}, '6'),
	'resources are synced and degraded without any subscription');
is($node->safe_psql('postgres', 'SELECT count(*) FROM delta.event'),
	'0', 'no event row was written');

#
# Subscriptions filter by kind and category; a listener is notified.
#
my $s_k = $node->safe_psql('postgres',
	q{SELECT delta.subscribe(ARRAY['object_synced', 'object_failed'], ARRAY['k'], 'k events')});
my $s_failed = $node->safe_psql('postgres',
	q{SELECT delta.subscribe(ARRAY['object_failed'])});

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN delta_events');

$node->safe_psql('postgres', q{
SELECT delta.inform('k', 'k' || i, '{}') FROM generate_series(1, 10) AS i;
SELECT delta.inform('k', 'kf', '{"fail": true}');
SELECT delta.inform('other', 'o' || i, '{}') FROM generate_series(1, 2) AS i;
SELECT delta.inform('other', 'of', '{"fail": true}');
});
ok( poll_until(
		$node, 'postgres',
		q{SELECT string_agg(state || ':' || n, ',' ORDER BY state) FROM
          (SELECT state, count(*) AS n FROM delta.resource
           WHERE object_id NOT LIKE 'pre%' GROUP BY state) AS x},
		'synced:12,degraded:2'),
	'the new resources end synced (12) and degraded (2)');

my @k = read_events($s_k, 100, sub { @{ $_[0] } >= 12 });
is( join(',', map { describe($_) } sort { $a->{object_id} cmp $b->{object_id} || $a->{id} <=> $b->{id} } @k),
	join(',',
		(map { "object_synced:k$_:synced:1" } sort map { $_ } (1 .. 10)),
		'object_failed:kf:failed:1', 'object_failed:kf:degraded:2'),
	'subscription on kind k: one event per transition of its resources, nothing of kind "other"');
is(scalar(grep { $_->{category} eq 'object_failed' && ($_->{error} // '') eq 'asked to fail' } @k),
	2, 'the failure events carry the error');
is(join(',', map { describe($_) } read_events($s_k, 100, sub { 1 })),
	'', 'read again, the subscription has nothing more');

my @f = read_events($s_failed, 100, sub { @{ $_[0] } >= 3 });
is( join(',', sort map { describe($_) } @f),
	'object_failed:kf:degraded:2,object_failed:kf:failed:1,object_failed:of:degraded:1',
	'subscription on object_failed (all kinds): only failures, of both kinds');

# The listener: psql prints notifications after its next command.
my $heard = '';
my $deadline = time() + $DeltaTest::TIMEOUT;
while (time() < $deadline)
{
	$heard .= $listener->query_safe('SELECT 1') . "\n";
	last if $heard =~ /Asynchronous notification "delta_events" with payload/;
	usleep(100_000);
}
$listener->quit;
like($heard, qr/Asynchronous notification "delta_events" with payload "\{.*"database": "postgres".*\}"/,
	'a LISTEN delta_events client is notified with a JSON payload naming the database');
my @payloads = $heard =~ /with payload "(\{.*?\})" received/g;
require JSON::PP;
my @kinds = sort keys %{ { map { map { $_ => 1 } @{ JSON::PP->new->decode($_)->{kinds} } } @payloads } };
is(join(',', @kinds), 'k,other', 'the payloads name the kinds of the events');

#
# Crash in the middle: nothing lost, nothing doubled.
#
my $s_c = $node->safe_psql('postgres',
	q{SELECT delta.subscribe(ARRAY['object_synced'], ARRAY['c'])});
my $s_pages = $node->safe_psql('postgres',
	q{SELECT delta.subscribe(ARRAY['object_synced', 'object_failed'], ARRAY['c'])});
$node->safe_psql('postgres',
	q{SELECT delta.inform('c', 'c' || i, '{"sleep": 0.2}') FROM generate_series(1, 20) AS i});

my $killed;
my $crash = sub {
	return if defined $killed;
	my $synced = eval { $node->safe_psql('postgres',
		q{SELECT count(*) FROM delta.resource WHERE kind = 'c' AND state = 'synced'}) } // 0;
	return if $synced < 4;
	my $pid = $node->safe_psql('postgres',
		q{SELECT pid FROM delta.workers WHERE state = 'running' AND kind = 'c' LIMIT 1});
	return if $pid eq '';
	kill 'KILL', $pid;
	$killed = $pid;
	note("killed worker $pid after $synced resources were synced");
};
my $all_synced = q{SELECT count(*) FROM delta.resource WHERE kind = 'c' AND state = 'synced'};
my @pages = read_events(
	$s_pages, 3,
	sub {
		defined $killed
		  && (grep { $_->{category} eq 'object_synced' } @{ $_[0] }) >= 20;
	},
	$crash);
ok(defined $killed, "a worker was killed with SIGKILL in the middle of the runs ($killed)");
ok(poll_until($node, 'postgres', $all_synced, '20'), 'every resource of kind c ends synced');
# whatever is left after the last sync
push @pages, read_events($s_pages, 3, sub { 1 });

my $rescued = $node->safe_psql('postgres',
	q{SELECT count(*) FROM delta.resource WHERE kind = 'c' AND errors::text LIKE '%worker exited%'});
ok($rescued > 0, "resources held by workers at the crash were rescued ($rescued)");

# Expected: per resource, one object_synced and one object_failed per error.
my %want = map { split /=/ } split /,/, $node->safe_psql('postgres',
	q{SELECT string_agg(object_id || '=' || (1 + jsonb_array_length(errors)) || '/' || attempt, ',') FROM delta.resource WHERE kind = 'c'});
my %got;
$got{ $_->{object_id} }++ for @pages;
my %ids;
$ids{ $_->{id} }++ for @pages;
is(scalar(grep { $ids{$_} > 1 } keys %ids), 0, 'the paged consumer got no event twice');
my @out_of_order = grep {
	$pages[ $_ - 1 ]{xid} > $pages[$_]{xid}
	  || ($pages[ $_ - 1 ]{xid} == $pages[$_]{xid} && $pages[ $_ - 1 ]{id} >= $pages[$_]{id})
} (1 .. $#pages);
is(scalar(@out_of_order), 0, 'it got them in (xid, id) order');
is_deeply(
	{ map { $_ => $got{$_} } sort keys %got },
	{ map { $_ => (split m{/}, $want{$_})[0] } keys %want },
	'paged consumer (max => 3): one object_synced per resource and one object_failed per recorded error'
) or diag(join("\n", map { describe($_) } @pages));
is(scalar(grep { $_->{category} eq 'object_synced' } @pages), 20, '20 object_synced events in pages');
is( join(',', map { $_->{attempt} } grep { $_->{category} eq 'object_synced' } sort { $a->{object_id} cmp $b->{object_id} } @pages),
	join(',', map { (split m{/}, $want{$_})[1] } sort keys %want),
	'each object_synced event has the attempt the resource was synced on');

my @c = read_events($s_c, 100, sub { @{ $_[0] } >= 20 });
my %per;
$per{ $_->{resource_id} }++ for @c;
is(scalar(keys %per) . ' ' . scalar(@c), '20 20',
	'the subscription read at the end gets exactly one object_synced per resource');

$node->stop;
done_testing();
