# Copyright: the delta authors.
#
# The Go client (clients/go) against a real cluster: its own tests (go test,
# with DELTA_TEST_DSN naming this node's database), and the example program
# as an external worker killed with SIGKILL in the middle of a run: the
# claim its session held is rescued by the next claim of another Go worker,
# which syncs the resource exactly once.
#
# Builds offline with clients/go/go-offline (Debian's Go and pgx v4, which
# scripts/install-deps installs); skipped only when there is no go command.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use lib '.';
use DeltaTest;

plan skip_all => 'go is not installed (scripts/install-deps installs golang-go)'
  unless grep { -x "$_/go" } split /:/, $ENV{PATH};

my $go = "$ENV{TESTDIR}/../clients/go/go-offline";
my $tmp = PostgreSQL::Test::Utils::tempdir();

my $node = DeltaTest::new_node('go');
create_extension($node, 'postgres');
my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';

# go-offline ARGS...: returns (ok, output)
sub go_run
{
	my (@args) = @_;
	my $out = '';
	my $ok = IPC::Run::run([ $go, @args ], '<', \undef, '>&', \$out);
	return ($ok, $out);
}

my ($ok, $out) = go_run('vet', './...');
ok($ok, 'go vet of the client, the example and deltabench') or diag($out);

{
	local $ENV{DELTA_TEST_DSN} = $dsn;
	($ok, $out) = go_run('test', '-count=1', '-v', '.');
}
ok($ok, 'go test of the client against the cluster') or diag($out);
note($out);
unlike($out, qr/--- SKIP/, 'no Go test skipped');

my $example = "$tmp/example";
($ok, $out) = go_run('build', '-o', $example, './example');
ok($ok, 'the example builds') or diag($out);

# start_example(NAME, ARGS...): the example in the background, its output
# in $tmp/NAME.out
sub start_example
{
	my ($name, @args) = @_;
	return IPC::Run::start([ $example, '-dsn', $dsn, '-namespace', 'gokill', @args ],
		'<', \undef, '>', "$tmp/$name.out", '2>', "$tmp/$name.err");
}

sub slurp_out
{
	my ($name) = @_;
	return PostgreSQL::Test::Utils::slurp_file("$tmp/$name.out");
}

# wait_output(NAME, REGEX): until the example's output matches
sub wait_output
{
	my ($name, $re) = @_;
	my $deadline = time() + $DeltaTest::TIMEOUT;
	while (time() < $deadline)
	{
		return 1 if -e "$tmp/$name.out" && slurp_out($name) =~ $re;
		usleep(100_000);
	}
	diag("$name printed:\n" . slurp_out($name) . "\nand on stderr:\n"
		  . PostgreSQL::Test::Utils::slurp_file("$tmp/$name.err"));
	return 0;
}

# worker a informs ann and works her for ten minutes: killed meanwhile
my $a = start_example('a', '-users', 'ann@example.com', '-sleep', '600s');
ok(wait_output('a', qr/^working ann\@example.com attempt 1$/m), 'worker a runs ann');
is(DeltaTest::resource($node, 'postgres', 'user', 'ann@example.com')->{state},
	'pending', 'ann is pending during the run');
is($node->safe_psql('postgres',
		"SELECT max_workers FROM delta.namespace WHERE name = 'gokill'"),
	'0', 'Start created the namespace for external workers only');
$a->signal('KILL');
eval { $a->finish };

# worker b informs nobody and works at once
my $b = start_example('b', '-users', '', '-sleep', '0s');
ok(wait_for_state($node, 'postgres', 'user', 'ann@example.com', 'synced'),
	'worker b synced ann after the rescue');
ok(wait_output('b', qr/^event object_synced user ann\@example.com attempt 2$/m),
	'worker b received the object_synced event');
$b->signal('TERM');
ok(eval { $b->finish }, 'worker b stopped cleanly on SIGTERM')
  or diag(PostgreSQL::Test::Utils::slurp_file("$tmp/b.err"));

my $row = DeltaTest::resource($node, 'postgres', 'user', 'ann@example.com');
is($row->{attempt}, '2', 'the killed run counted as an attempt');
like($row->{errors}, qr/57P01/, 'the rescue recorded that the worker exited');
my $a_out = slurp_out('a');
my $b_out = slurp_out('b');
is(scalar(() = $a_out =~ /^worked /mg), 0, 'the killed worker finished nothing');
is(scalar(() = $b_out =~ /^working ann\@example.com attempt 2$/mg),
	1, 'worker b ran ann once, as attempt 2');
is(scalar(() = $b_out =~ /^worked ann\@example.com$/mg), 1, 'and finished it once');
like($b_out, qr/^stopped$/m, 'worker b stopped after SIGTERM');

$node->stop;
done_testing();
