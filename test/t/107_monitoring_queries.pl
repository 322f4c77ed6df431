
# Copyright: the delta authors.
#
# monitoring/queries.yaml (postgres_exporter's extend-queries format): each
# query, taken from the file as the exporter would, runs as a role with only
# the grants the file and README name, returns rows, and returns exactly the
# columns its "metrics" list declares, in that order, each with a usage the
# exporter knows.  No YAML module: the file keeps to the small subset read
# below (top-level names, "query: |" blocks, "- column:" entries).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

# name => { query => text, columns => [names], usages => [usages] }, in file order
sub read_queries
{
	my ($file) = @_;
	my (@order, %q, $name, $in_query);
	foreach my $line (split /\n/, slurp_file($file))
	{
		next if $line =~ /^\s*#/ || $line =~ /^\s*$/;
		if ($line =~ /^(\w+):\s*$/)
		{
			$name = $1;
			push @order, $name;
			$q{$name} = { query => '', columns => [], usages => [] };
			$in_query = 0;
		}
		elsif ($line =~ /^  query: \|\s*$/)
		{
			$in_query = 1;
		}
		elsif ($line =~ /^  metrics:\s*$/)
		{
			$in_query = 0;
		}
		elsif ($in_query && $line =~ /^    (.*)$/)
		{
			$q{$name}{query} .= "$1\n";
		}
		elsif ($line =~ /^    - (\w+):\s*$/)
		{
			push @{ $q{$name}{columns} }, $1;
		}
		elsif ($line =~ /^        usage: "(\w+)"/)
		{
			push @{ $q{$name}{usages} }, $1;
		}
		elsif ($line !~ /^        description: /)
		{
			die "monitoring/queries.yaml: line not understood: $line";
		}
	}
	return (\@order, \%q);
}

my ($order, $queries) = read_queries('../monitoring/queries.yaml');
is_deeply($order,
	[qw(delta delta_oldest_due_age delta_runs delta_runs_failed delta_run_duration)],
	'the file has a query for every metric of delta.metrics');

my $node = DeltaTest::new_node('monitoring');
my $db   = 'postgres';
create_extension($node, $db);

# a few runs of every kind of ending, so every metric has rows
$node->safe_psql($db, q{
	CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		IF r.object ? 'fail' THEN
			RAISE EXCEPTION 'asked to fail';
		END IF;
	END $$;
	SELECT delta.register_controller('thing', 'work(delta.resource)', max_attempts => 1);
	SELECT delta.inform('thing', 'ok', '{}');
	SELECT delta.inform('thing', 'bad', '{"fail": true}');
	CREATE ROLE monitoring LOGIN;
	GRANT SELECT ON delta.metrics TO monitoring;
	GRANT EXECUTE ON FUNCTION delta._run_counters() TO monitoring;
});
ok(wait_for_state($node, $db, 'thing', 'bad', 'degraded') && wait_for_state($node, $db, 'thing', 'ok', 'synced'),
	'the runs ended');

my %usages = map { $_ => 1 } qw(LABEL GAUGE COUNTER DISCARD MAPPEDMETRIC DURATION);
foreach my $name (@$order)
{
	my $q = $queries->{$name};
	ok($q->{query} =~ /\S/, "$name: has a query");
	is(scalar @{ $q->{usages} }, scalar @{ $q->{columns} }, "$name: every column has a usage");
	ok(!grep({ !$usages{$_} } @{ $q->{usages} }), "$name: usages the exporter knows");
	my ($stdout, $stderr) = ('', '');
	my $ret = $node->psql($db,
		"CREATE TEMP VIEW q AS $q->{query};\n"
		  . "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'q'::regclass AND attnum > 0;\n"
		  . "SELECT count(*) FROM q;",
		stdout => \$stdout, stderr => \$stderr,
		extra_params => [ '-U', 'monitoring' ]);
	is($ret, 0, "$name: runs as the monitoring role") or diag($stderr);
	my ($columns, $rows) = split /\n/, $stdout;
	is($columns, join(',', @{ $q->{columns} }), "$name: returns the columns its metrics list declares");
	ok(defined $rows && $rows > 0, "$name: returns rows") or diag("rows: " . ($rows // 'none'));
}

is( $node->safe_psql($db,
		q{SELECT value FROM delta.metrics WHERE metric = 'delta_runs_failed_last_minute' AND kind = 'thing' AND outcome = 'degraded'}),
	'1', 'the degraded run of the last minute is counted');

$node->stop;
done_testing();
