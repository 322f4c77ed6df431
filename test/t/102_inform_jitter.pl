
# Copyright: the delta authors.
#
# delta.inform_jitter spreads the periodic inform runs: five controllers
# registered together (inform_interval 1 hour, never run yet) are queued by
# the leader with due times spread at random over the jitter (10 s here),
# not all at once, and each inform function runs only when its run is due.
# The queued runs are recorded by a test trigger on delta.inform_run, since
# a run is removed from it once done.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('jitter',
	conf => {
		'delta.maintenance_interval' => "'500ms'",
		'delta.inform_jitter' => "'10s'",
	});
create_extension($node, 'postgres');

$node->safe_psql('postgres', q{
CREATE TABLE queued (kind text, created_at timestamptz, due_at timestamptz);
CREATE FUNCTION log_queued() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO public.queued VALUES (NEW.kind, NEW.created_at, NEW.due_at);
    RETURN NEW;
END
$$;
CREATE TRIGGER log_queued AFTER INSERT ON delta.inform_run
  FOR EACH ROW EXECUTE FUNCTION log_queued();

CREATE TABLE started (kind text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE sql AS '';
});
foreach my $i (1 .. 5)
{
	$node->safe_psql('postgres', qq{
CREATE FUNCTION inform_k$i(o delta.inform_options) RETURNS SETOF delta.inform_item LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO started (kind) VALUES ('k$i');
END
\$\$;
});
}
$node->safe_psql('postgres', 'BEGIN; '
	  . join('',
		map { "SELECT delta.register_controller('k$_', 'work(delta.resource)', inform => 'inform_k$_(delta.inform_options)');" }
		  (1 .. 5))
	  . ' COMMIT;');

ok(poll_until($node, 'postgres', 'SELECT count(*) FROM queued', '5'),
	'the leader queues one inform run per controller');
my $spread = $node->safe_psql('postgres',
	q{SELECT extract(epoch FROM max(due_at) - min(due_at)) FROM queued});
ok($spread > 0.5, "their due times are spread (max - min = ${spread} s)")
  or diag($node->safe_psql('postgres', 'SELECT * FROM queued ORDER BY due_at'));
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM queued WHERE due_at >= created_at AND due_at <= created_at + interval '10 seconds'}),
	'5', 'each is due within the jitter after being queued');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT due_at) FROM queued'),
	'5', 'no two are due at the same time');

ok(poll_until($node, 'postgres', 'SELECT count(DISTINCT kind) FROM started', '5', 60),
	'every inform function runs');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM started AS s JOIN queued AS q USING (kind) WHERE s.at < q.due_at}),
	'0', 'none ran before its run was due')
  or diag($node->safe_psql('postgres',
	  'SELECT kind, q.due_at, s.at FROM queued q JOIN started s USING (kind) ORDER BY kind'));

$node->stop;
done_testing();
