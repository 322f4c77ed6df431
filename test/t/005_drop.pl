
# DROP EXTENSION and DROP DATABASE stop the database's workers and are
# never blocked by them, even by one in the middle of a long run; other
# databases are not disturbed.  delta.enabled is followed on reload.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main');

# A statement that waits for a worker fails after 20 s instead of hanging.
my $guard = "SET statement_timeout = '20s';";

sub setup_db
{
	my ($db) = @_;
	create_extension($node, $db);
	$node->safe_psql($db, q{
		CREATE TABLE IF NOT EXISTS runs (object_id text);
		CREATE OR REPLACE FUNCTION work(r delta.resource) RETURNS void LANGUAGE sql
			AS $$ INSERT INTO public.runs VALUES (r.object_id) $$;
		CREATE OR REPLACE FUNCTION sleepy(r delta.resource) RETURNS void LANGUAGE sql
			AS $$ SELECT pg_sleep(600) $$;
		SELECT delta.register_controller('k', 'work(delta.resource)', replace => true);
		SELECT delta.register_controller('sleepy', 'sleepy(delta.resource)',
			work_timeout => '10 min', max_attempts => 1, replace => true);
		SELECT delta.create_namespace('n2', max_workers => 2)
			WHERE NOT EXISTS (SELECT FROM delta.namespace WHERE name = 'n2');
	});
	return;
}

# Starts a run that sleeps for ten minutes in namespace n2 of $db and waits
# until a worker runs it.  (One attempt only: a run killed by a DROP that
# rolls back is not tried again.)
sub start_sleeper
{
	my ($db, $object_id) = @_;
	$node->safe_psql($db, "SELECT id FROM delta.inform('sleepy', '$object_id', '{}', namespace => 'n2')");
	return DeltaTest::poll_until($node, $db,
		"SELECT count(*) FROM delta.workers AS w JOIN delta.resource AS r ON r.id = w.resource_id "
		  . "WHERE w.database = '$db' AND w.state = 'running' AND r.object_id = '$object_id'",
		'1');
}

sub worker_pids
{
	my ($db, $of) = @_;
	return $node->safe_psql($db,
		"SELECT string_agg(pid::text, ',' ORDER BY pid) FROM delta.workers WHERE $DeltaTest::WORKER_ROLES AND database = '$of'");
}

setup_db('d1');
setup_db('d2');
ok(wait_for_workers($node, 'd2', "database = 'd1'", 3), 'd1 has its three workers');
ok(wait_for_workers($node, 'd1', "database = 'd2'", 3), 'd2 has its three workers');
my $d2_pids = worker_pids('d2', 'd2');

# --- DROP EXTENSION with a worker in the middle of a run --------------------

ok(start_sleeper('d1', 'z1'), 'a worker of d1 is busy in a long run');
my ($ret, $out, $err) = $node->psql('d1', "$guard DROP EXTENSION delta CASCADE;");
is($ret, 0, 'DROP EXTENSION delta completes while a worker is busy') or diag($err);
ok(DeltaTest::wait_for_no_workers_of($node, 'd2', 'd1'), 'the workers of d1 are gone');
is(worker_pids('d2', 'd2'), $d2_pids, 'the workers of d2 kept running, untouched');

# They stay gone: a later look still finds none (the launcher reconciles
# every second; give it a few rounds).
ok(DeltaTest::poll_until($node, 'd2',
	"SELECT count(*) FROM delta.workers WHERE database = 'd1'", '0'),
	'no worker comes back while the extension is gone');

setup_db('d1');
ok(wait_for_workers($node, 'd2', "database = 'd1'", 3), 'CREATE EXTENSION again brings the workers back');
$node->safe_psql('d1', "SELECT id FROM delta.inform('k', 'after-recreate', '{}')");
ok(wait_for_state($node, 'd1', 'k', 'after-recreate', 'synced'), 'and they work');

# A DROP EXTENSION that rolls back leaves delta running.
ok(start_sleeper('d1', 'z2'), 'a worker of d1 is busy again');
($ret, $out, $err) = $node->psql('d1', "$guard BEGIN; DROP EXTENSION delta CASCADE; ROLLBACK;");
is($ret, 0, 'DROP EXTENSION in a transaction that rolls back completes') or diag($err);
ok(wait_for_workers($node, 'd2', "database = 'd1' AND state <> 'stopping'", 3),
	'after the rollback the workers of d1 are back');
$node->safe_psql('d1', "SELECT id FROM delta.inform('k', 'after-rollback', '{}')");
ok(wait_for_state($node, 'd1', 'k', 'after-rollback', 'synced'), 'and they work');

# --- a DROP DATABASE that may not succeed leaves the workers alone ----------
# Only who may drop a database stops its workers: anyone can try.

$node->safe_psql('postgres', 'CREATE ROLE intruder LOGIN');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE d2', extra_params => [ '-U', 'intruder' ]);
isnt($ret, 0, 'a role that does not own d2 cannot drop it');
is(worker_pids('d2', 'd2'), $d2_pids, 'and the workers of d2 were not stopped by the attempt');

# --- DROP DATABASE with running workers -------------------------------------

ok(start_sleeper('d1', 'z3'), 'a worker of d1 is busy before DROP DATABASE')
  or diag($node->safe_psql('d1', "SELECT * FROM delta.resource WHERE kind = 'sleepy'"));
($ret, $out, $err) = $node->psql('postgres', "$guard DROP DATABASE d1;");
is($ret, 0, 'DROP DATABASE completes while its workers run') or diag($err);
unlike($err, qr/being accessed by other users/, 'no "being accessed by other users" error');
ok(DeltaTest::wait_for_no_workers_of($node, 'd2', 'd1'), 'no worker of the dropped database remains');
is(worker_pids('d2', 'd2'), $d2_pids, 'the workers of d2 are still the same processes');
$node->safe_psql('d2', "SELECT id FROM delta.inform('k', 'after-drop-database', '{}')");
ok(wait_for_state($node, 'd2', 'k', 'after-drop-database', 'synced'), 'd2 still works');

# --- delta.enabled on reload --------------------------------------------------
# Child processes do not log the parameters they reload, so there is no
# event to wait for: once a new session sees the new value the postmaster
# has signalled every process, and the workers, woken by that signal, get
# two seconds to read it.

$node->safe_psql('postgres', q{
	ALTER SYSTEM SET delta.enabled = off;
	SELECT pg_reload_conf();
});
ok(DeltaTest::poll_until($node, 'd2', 'SHOW delta.enabled', 'off'), 'delta.enabled is off');
sleep(2);

$node->safe_psql('d2', "SELECT id FROM delta.inform('k', 'while-disabled', '{}')");
# The inform woke a worker; give it (and a few 1 s polls) the chance to
# misbehave.
sleep(3);
is( $node->safe_psql('d2', "SELECT state FROM delta.resource WHERE kind = 'k' AND object_id = 'while-disabled'"),
	'scheduled', 'with delta.enabled off a woken worker runs nothing');
is($node->safe_psql('d2', "SELECT count(*) FROM runs WHERE object_id = 'while-disabled'"), '0',
	'the work function did not run');
is(worker_pids('d2', 'd2'), $d2_pids, 'the workers stay connected while disabled');

$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET delta.enabled;
	SELECT pg_reload_conf();
});
ok(wait_for_state($node, 'd2', 'k', 'while-disabled', 'synced'), 'back on, the resource is synced');

# --- other commands that need a database to themselves ---------------------
# Copying a database (CREATE DATABASE ... TEMPLATE) and renaming one fail
# while any other session is connected to it: delta's workers must step
# aside as they do for DROP DATABASE, and come back afterwards.

ok(start_sleeper('d2', 'z4'), 'a worker of d2 is busy before CREATE DATABASE ... TEMPLATE d2');
($ret, $out, $err) = $node->psql('postgres', "$guard CREATE DATABASE d2copy TEMPLATE d2;");
is($ret, 0, 'CREATE DATABASE ... TEMPLATE a database with running workers completes') or diag($err);
ok(wait_for_workers($node, 'd2', "database = 'd2' AND state <> 'stopping'", 3),
	'the workers of the template database come back');
ok(wait_for_workers($node, 'd2', "database = 'd2copy'", 3), 'the copy gets workers of its own');
$node->safe_psql('d2', "SELECT id FROM delta.inform('k', 'after-copy', '{}')");
ok(wait_for_state($node, 'd2', 'k', 'after-copy', 'synced'), 'd2 works after being copied');

($ret, $out, $err) = $node->psql('postgres', "$guard ALTER DATABASE d2copy RENAME TO d2renamed;");
is($ret, 0, 'ALTER DATABASE ... RENAME of a database with running workers completes') or diag($err);
ok(wait_for_workers($node, 'd2', "database = 'd2renamed'", 3), 'its workers come back under the new name');
$node->safe_psql('d2renamed', "SELECT id FROM delta.inform('k', 'after-rename', '{}')");
ok(wait_for_state($node, 'd2renamed', 'k', 'after-rename', 'synced'), 'the renamed database works');

$node->stop;
done_testing();
