
# Copyright: the delta authors.
#
# A C work function that crashes its process (SIGSEGV) takes the whole
# server down on every run.  Because the claim (attempt + 1) is committed
# before the work function runs, each crash counts as an attempt: after
# max_attempts (3) crashes the resource is degraded and never run again, so
# the server stops crash-looping and keeps serving the other resources of
# the namespace.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('crash',
	conf => {
		restart_after_crash => 'on',
		log_min_messages => 'log',
	});
create_extension($node, 'postgres');
DeltaTest::create_crash_function($node, 'postgres', 'crash');

$node->safe_psql('postgres', q{
CREATE TABLE done (object_id text, attempt int);
CREATE FUNCTION calm(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO done VALUES (r.object_id, r.attempt);
END
$$;
SELECT delta.register_controller('bomb', 'crash(delta.resource)', max_attempts => 3);
SELECT delta.register_controller('calm', 'calm(delta.resource)');
});

# The bomb and other resources of another kind in the same namespace, in
# one transaction.  The first crash may come before psql hears that the
# commit succeeded: check that they were all informed rather than psql's
# exit status.
$node->psql('postgres', q{
BEGIN;
SELECT delta.inform('bomb', 'b1', '{}');
SELECT delta.inform('calm', 'c' || i, '{}') FROM generate_series(1, 3) AS i;
COMMIT;
});
ok(poll_until($node, 'postgres', 'SELECT count(*) FROM delta.resource', '4'),
	'the 4 resources were informed');

sub crashes
{
	return scalar(() = slurp_file($node->logfile) =~ /terminated by signal 11/g);
}

if (!ok(wait_for_state($node, 'postgres', 'bomb', 'b1', 'degraded'),
		'the crashing resource ends degraded'))
{
	diag('the server crashed ' . crashes() . ' times so far');
	$node->stop('immediate');
	done_testing();
	exit 1;
}
my $row = DeltaTest::resource($node, 'postgres', 'bomb', 'b1');
is($row->{attempt},    '3',   'after its 3 attempts (max_attempts)');
is($row->{holder_pid}, undef, 'nobody holds it');
is($row->{due_at},     undef, 'it is not due any more');

my @errors = $node->safe_psql('postgres',
	q{SELECT (e->>'attempt') || ' ' || (e->>'error') FROM delta.resource,
	  jsonb_array_elements(errors) AS e WHERE kind = 'bomb' ORDER BY 1}) =~ /^(.*)$/mg;
is(scalar(@errors), 3, 'one error per crash') or diag(join("\n", @errors));
like($errors[$_ - 1], qr/^$_ worker exited during the run \(pid \d+\)$/,
	"error of attempt $_ says the worker exited")
  foreach 1 .. 3;

# The others of the namespace get synced in the end.
foreach my $c (qw(c1 c2 c3))
{
	ok(wait_for_state($node, 'postgres', 'calm', $c, 'synced'),
		"resource $c of another kind is synced");
}
note('attempts of the others: ' . $node->safe_psql('postgres',
	q{SELECT string_agg(object_id || ':' || attempt, ' ' ORDER BY object_id) FROM delta.resource WHERE kind = 'calm'}));
is( $node->safe_psql('postgres',
		'SELECT string_agg(DISTINCT object_id, \',\') || \' \' || count(*) FROM done'),
	'c1,c2,c3 3',
	'each of them was worked exactly once');

# The server stays up and the workers keep claiming: a resource informed
# now is synced, and there was no further crash.
$node->safe_psql('postgres', q{SELECT delta.inform('calm', 'c4', '{}')});
ok(wait_for_state($node, 'postgres', 'calm', 'c4', 'synced'),
	'a resource informed after the bomb degraded is synced');

is(crashes(), 3, 'the server crashed exactly 3 times (no crash loop)');
is(DeltaTest::resource($node, 'postgres', 'bomb', 'b1')->{state},
	'degraded', 'the crashing resource is still degraded');

$node->stop;
done_testing();
