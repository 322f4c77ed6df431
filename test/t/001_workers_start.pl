
# Workers follow CREATE EXTENSION and the namespaces of each database
# without a restart, and running short of worker slots is reported with a
# hint naming the setting to raise.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main');

# No extension anywhere: the launcher runs, and nothing else of delta stays
# (probes of the databases come and go).
ok( DeltaTest::poll_until(
		$node, 'postgres',
		"SELECT count(*) FILTER (WHERE backend_type = 'delta launcher') || '/' || "
		  . "count(*) FILTER (WHERE backend_type = 'delta worker') FROM pg_stat_activity",
		'1/0'),
	'without the extension only the launcher runs');

DeltaTest::create_database($node, 'd1');
DeltaTest::create_database($node, 'd2');
DeltaTest::create_database($node, 'd3');    # never gets the extension

create_extension($node, 'd1');
create_extension($node, 'd2');

ok(wait_for_workers($node, 'd1', "database = 'd1' AND namespace = 'default'", 1),
	'CREATE EXTENSION in d1 starts the worker of its default namespace');
ok(wait_for_workers($node, 'd1', "database = 'd2' AND namespace = 'default'", 1),
	'CREATE EXTENSION in d2 starts the worker of its default namespace');
ok(wait_for_workers($node, 'd2', "database NOT IN ('d1', 'd2')", 0),
	'no worker in a database without the extension');

my @w = workers($node, 'd1');
my @launchers = grep { $_->{role} eq 'launcher' } @w;
is(scalar @launchers, 1, 'delta.workers lists one launcher');
ok(!defined $launchers[0]{database}, 'the launcher belongs to no database')
  or diag(DeltaTest::explain_row($launchers[0]));
my ($d1w) = grep { $_->{role} =~ /^(worker|leader)$/ && $_->{database} eq 'd1' } @w;
ok($d1w && $d1w->{pid} > 0 && defined $d1w->{started_at},
	'a worker row has a pid and a start time')
  or diag(explain \@w);
is( $node->safe_psql(
		'd1',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $d1w->{pid} AND datname = 'd1'"),
	'1',
	'the worker is a real backend connected to d1');

# A new namespace gets its workers; alter and pause follow.
$node->safe_psql('d1', "SELECT delta.create_namespace('n2', max_workers => 2)");
ok(wait_for_workers($node, 'd1', "database = 'd1' AND namespace = 'n2'", 2),
	'create_namespace with max_workers 2 starts two workers');
ok(wait_for_workers($node, 'd1', "database = 'd1' AND namespace = 'default'", 1),
	'the default namespace keeps its worker');

$node->safe_psql('d1', "SELECT delta.alter_namespace('n2', max_workers => 1)");
ok(wait_for_workers($node, 'd1', "database = 'd1' AND namespace = 'n2'", 1),
	'alter_namespace to max_workers 1 stops one worker');

$node->safe_psql('d1', "SELECT delta.alter_namespace('n2', max_workers => 3)");
ok(wait_for_workers($node, 'd1', "database = 'd1' AND namespace = 'n2'", 3),
	'alter_namespace to max_workers 3 starts two more');

$node->safe_psql('d1', "SELECT delta.alter_namespace('n2', paused => true)");
ok(wait_for_workers($node, 'd1', "database = 'd1' AND namespace = 'n2'", 0),
	'pausing a namespace stops its workers');
is( $node->safe_psql('d1', "SELECT count(*) FROM delta.workers WHERE database = 'd1' AND namespace = 'default'"),
	'1', 'pausing n2 leaves the default namespace running');

$node->safe_psql('d1', "SELECT delta.alter_namespace('n2', paused => false)");
ok(wait_for_workers($node, 'd1', "database = 'd1' AND namespace = 'n2'", 3),
	'unpausing brings the workers back');

# A namespace change that rolls back changes nothing.
$node->safe_psql('d1',
	"BEGIN; SELECT delta.alter_namespace('n2', max_workers => 1); ROLLBACK;");
$node->safe_psql('d1', "SELECT delta.create_namespace('probe_marker', max_workers => 1)");
ok(wait_for_workers($node, 'd1', "database = 'd1' AND namespace = 'probe_marker'", 1),
	'a later change is seen (the launcher looked again)');
is( $node->safe_psql('d1', "SELECT count(*) FROM delta.workers WHERE database = 'd1' AND namespace = 'n2'"),
	'3', 'a rolled back alter_namespace left n2 with its three workers');
$node->safe_psql('d1', "SELECT delta.drop_namespace('probe_marker')");

$node->safe_psql('d1', "SELECT delta.drop_namespace('n2')");
ok(wait_for_workers($node, 'd1', "database = 'd1' AND namespace IN ('n2', 'probe_marker')", 0),
	'drop_namespace stops its workers');
ok(wait_for_workers($node, 'd1', "database = 'd2'", 1),
	'the other database kept its worker all along');

# The workers that remain still work: an inform in each database is synced.
foreach my $db ('d1', 'd2')
{
	$node->safe_psql($db, q{
		CREATE TABLE done (object_id text);
		CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE sql
			AS $$ INSERT INTO done VALUES (r.object_id) $$;
		SELECT delta.register_controller('k', 'work(delta.resource)');
		SELECT id FROM delta.inform('k', 'o1', '{}');
	});
	ok(wait_for_state($node, $db, 'k', 'o1', 'synced'), "a resource in $db is synced");
}

$node->stop;

# Asking for more workers than delta.max_workers allows: a warning whose
# hint names the setting, and the cap holds.
my $small = DeltaTest::new_node('small', conf => { 'delta.max_workers' => 1 });
create_extension($small, 'postgres');
my $offset = -s $small->logfile;
$small->safe_psql('postgres', "SELECT delta.create_namespace('big', max_workers => 3)");
my $found = eval {
	$small->wait_for_log(qr/WARNING:.*delta\.max_workers.*\n(?:.*\n)*?.*HINT:.*(?:delta\.max_workers|max_worker_processes)/, $offset);
	1;
};
ok($found, 'more workers than delta.max_workers: WARNING with a HINT naming the setting')
  or diag(slurp_file($small->logfile, $offset));
ok(wait_for_workers($small, 'postgres', undef, 1),
	'no more than delta.max_workers workers run');

# Short of max_worker_processes (launcher + probe leave room for one worker).
$small->append_conf('postgresql.conf',
	"delta.max_workers = 16\nmax_worker_processes = 3\nmax_parallel_workers = 0\n");
$offset = -s $small->logfile;
$small->restart;
$found = eval {
	$small->wait_for_log(qr/WARNING:.*\n(?:.*\n)*?.*HINT:.*max_worker_processes/, $offset);
	1;
};
ok($found, 'out of background worker slots: WARNING with a HINT naming max_worker_processes')
  or diag(slurp_file($small->logfile, $offset));
ok( DeltaTest::poll_until(
		$small, 'postgres',
		"SELECT count(*) >= 1 FROM delta.workers WHERE $DeltaTest::WORKER_ROLES"),
	'the workers that fit still run');
$small->stop;

done_testing();
