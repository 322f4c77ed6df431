
# Copyright: the delta authors.
#
# The Python client (clients/python, README there) against a real server:
# its unittest modules run with Debian's python3 and python3-psycopg
# (scripts/install-deps), the DSN of this node in DELTA_TEST_DSN:
#   - test_worker: a handler called once per inform → synced; an exception →
#     failed with its text in errors, retried, degraded at max_attempts;
#     Snooze gives the attempt back; Delete; stop() gives back unstarted
#     claims; only the handlers' kinds are claimed; inform in the caller's
#     transaction;
#   - test_example: example/http_sync.py syncs its contacts through its
#     local HTTP server;
#   - test_crash: a worker process SIGKILLed mid-run is rescued at once and
#     the resource synced exactly once by a second worker; one whose session
#     is ended with pg_terminate_backend too (and its run() raises); a lease worker
#     frozen with SIGSTOP loses its claim when the lease runs out, another
#     worker syncs it, and its late complete (SIGCONT) is refused with 55000
#     and changes nothing; heartbeats keep a run longer than its lease.

use strict;
use warnings;

use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $python = '/usr/bin/python3';    # Debian's, where python3-psycopg is
my $tests  = "$FindBin::RealBin/../../clients/python/tests";

# scripts/install-deps installs python3-psycopg: its absence is a failure
ok(system($python, '-c', 'import psycopg') == 0, "$python has psycopg 3")
  or BAIL_OUT('apt-get install python3-psycopg (scripts/install-deps does)');

my $node = DeltaTest::new_node('python_client');
create_extension($node, 'postgres');

$ENV{DELTA_TEST_DSN}          = $node->connstr('postgres');
$ENV{PYTHONPATH}              = $tests;
$ENV{PYTHONDONTWRITEBYTECODE} = 1;
$ENV{no_proxy} = $ENV{NO_PROXY} = '127.0.0.1,localhost';

foreach my $module (qw(test_worker test_example test_crash))
{
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run([ $python, '-m', 'unittest', '-v', $module ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "python client: $module") or diag($stderr);
	note($stderr) if $ok;
}

$node->stop;
done_testing();
