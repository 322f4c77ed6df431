
# The drain's hot path (issue 8): the worker's probe for due resources reads
# resource_due_idx whatever the table's statistics (one kind in the whole
# table made the old probe seq-scan delta.resource on every claim), and
# outcomes are committed once a batch unless the runs wrote: only writing
# runs fill the subxid cache, and a chunk commits before it overflows.
# commit_delay is long, so no chunk commits for time's sake.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main', conf => {
	shared_preload_libraries          => "'delta,auto_explain'",
	'auto_explain.log_min_duration'   => 0,
	'auto_explain.log_nested_statements' => 'on',
	log_min_messages                  => 'log',
	'delta.commit_delay'              => "'10s'",
	'delta.poll_interval'             => "'1h'",
	'delta.maintenance_interval'      => "'1h'",
});
my $db = 'postgres';
create_extension($node, $db);

$node->safe_psql($db, q{
	CREATE FUNCTION noop_work(r delta.resource) RETURNS void LANGUAGE sql AS 'SELECT';
	CREATE TABLE written (object_id text);
	CREATE FUNCTION writing_work(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ INSERT INTO public.written VALUES (r.object_id) $$;
	SELECT delta.register_controller('noop', 'noop_work(delta.resource)');
	SELECT delta.register_controller('writing', 'writing_work(delta.resource)');
	SELECT delta.alter_namespace('default', paused => true);
});
ok(wait_for_workers($node, $db, "namespace = 'default'", 0), 'namespace default is paused');

# Informs n resources of kind into the paused namespace, unpauses it until
# they are synced, and pauses it again.
sub drain
{
	my ($kind, $n) = @_;
	$node->safe_psql($db,
		"SELECT count(*) FROM delta.inform_many('$kind', (SELECT array_agg(ROW('$kind' || i, '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item) FROM generate_series(1, $n) AS i))");
	$node->safe_psql($db, 'ANALYZE delta.resource');
	$node->safe_psql($db, "SELECT delta.alter_namespace('default', paused => false)");
	ok(poll_until($node, $db,
		"SELECT count(*) FROM delta.resource WHERE kind = '$kind' AND state = 'synced'", $n),
		"the $n $kind resources are synced");
	$node->safe_psql($db, "SELECT delta.alter_namespace('default', paused => true)");
	ok(wait_for_workers($node, $db, "namespace = 'default'", 0), 'namespace default is paused again');
}

# 1. the probe of a worker reads the index: 1 + 100 resources of one kind
# (the first claim of a new worker takes one)
my $log_offset = -s $node->logfile;
drain('noop', 101);
my $log = substr(slurp_file($node->logfile), $log_offset);
my @probes = grep { /Query Text: SELECT[^\n]*FROM delta\.resource[^\n]*LIMIT 1\n/ } split /LOG:  duration: /, $log;
cmp_ok(scalar @probes, '>=', 1, 'the worker probed for due resources');
is(scalar(grep { !/Index (Only )?Scan using resource_due_idx/ || /Seq Scan on resource/ } @probes), 0,
	'every probe for due resources read resource_due_idx')
  or diag(join("\n----\n", @probes));

# 2. the 100 no-op runs of the second claim were recorded by one statement
# (one xmin): nothing wrote, so nothing filled the subxid cache
is($node->safe_psql($db,
	"SELECT count(*) FROM (SELECT xmin FROM delta.resource WHERE kind = 'noop' GROUP BY xmin HAVING count(*) = 100) AS x"),
	'1', 'the outcomes of a batch of read-only runs were recorded at once');

# 3. writing runs: chunks commit before the subxid cache (64) overflows
$node->safe_psql($db, "TRUNCATE delta.run");
drain('writing', 101);
my $chunks = $node->safe_psql($db,
	"SELECT count(*) || ' ' || max(n) FROM (SELECT count(*) AS n FROM delta.resource WHERE kind = 'writing' GROUP BY xmin) AS x");
my ($count, $biggest) = split / /, $chunks;
cmp_ok($count, '>=', 3, "the outcomes of 101 writing runs were recorded in chunks ($chunks)");
cmp_ok($biggest, '<=', 63, "no chunk held more writing runs than the subxid cache has room for ($chunks)");
is($node->safe_psql($db, 'SELECT count(*) FROM written'), '101', 'every writing run kept its write');

done_testing();
