
# Outcomes of a run (DESIGN.md section 3) on a real server: synced, failed
# with back-off then degraded, deleted, snoozed, timed out; callbacks run as
# the controller's owner; a run's writes commit with "synced" and roll back
# with a failure.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(usleep time);
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main', conf => { 'delta.work_timeout' => "'2s'" });
my $db   = 'postgres';
create_extension($node, $db);

$node->safe_psql($db, q{
	CREATE TABLE done (object_id text NOT NULL, who text NOT NULL DEFAULT current_user);
	CREATE TABLE failed_writes (object_id text NOT NULL);

	-- slow enough (10 ms) that the snapshots below see the batches drain
	CREATE FUNCTION ok_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_sleep(0.01);
		INSERT INTO public.done (object_id) VALUES (r.object_id);
	END $$;

	CREATE FUNCTION fail_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.failed_writes VALUES (r.object_id);
		RAISE EXCEPTION 'boom for %', r.object_id
			USING ERRCODE = 'invalid_parameter_value', DETAIL = 'the detail', HINT = 'the hint';
	END $$;

	-- resource_delete and resource_snooze return; the run's writes are kept
	CREATE FUNCTION delete_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.done (object_id) VALUES ('cleaned up ' || r.object_id);
		PERFORM delta.resource_delete('gone upstream');
	END $$;

	CREATE TABLE snooze_progress (run integer NOT NULL);
	CREATE SEQUENCE snooze_runs;
	CREATE FUNCTION snooze_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	DECLARE
		run integer := nextval('public.snooze_runs');
	BEGIN
		INSERT INTO public.snooze_progress VALUES (run);
		IF run = 1 THEN
			PERFORM delta.resource_snooze('2 seconds');
			RETURN;
		END IF;
		INSERT INTO public.done (object_id) VALUES (r.object_id);
	END $$;

	-- asks for an outcome, then raises: a failure, its writes undone
	CREATE FUNCTION snooze_then_raise_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.failed_writes VALUES (r.object_id);
		PERFORM delta.resource_snooze('1 hour');
		RAISE EXCEPTION 'changed my mind' USING ERRCODE = 'data_exception';
	END $$;

	CREATE FUNCTION slow_work(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ SELECT pg_sleep(5) $$;

	SELECT delta.register_controller('ok', 'ok_work(delta.resource)');
	SELECT delta.register_controller('fail', 'fail_work(delta.resource)', max_attempts => 3);
	SELECT delta.register_controller('del', 'delete_work(delta.resource)');
	SELECT delta.register_controller('snz', 'snooze_work(delta.resource)');
	SELECT delta.register_controller('snzraise', 'snooze_then_raise_work(delta.resource)', max_attempts => 1);
	SELECT delta.register_controller('slow', 'slow_work(delta.resource)',
		work_timeout => '500 ms', max_attempts => 2);
});

sub errors_of
{
	my ($kind, $object_id) = @_;
	my $row = resource($node, $db, $kind, $object_id);
	return decode_json($row->{errors});
}

# --- synced, exactly once, writes visible together with "synced" ---------

my $n = 200;
$node->safe_psql($db,
	"SELECT count(*) FROM delta.inform_many('ok', (SELECT jsonb_agg(jsonb_build_object('object_id', 'o' || i, 'object', jsonb_build_object('i', i))) FROM generate_series(1, $n) AS i))"
);

# While they drain, every snapshot must show "synced" exactly for the
# resources whose row in done exists.
my $watch = $node->background_psql($db);
my $mismatch = 0;
my $samples = 0;
my $deadline = time() + $DeltaTest::TIMEOUT;
while (time() < $deadline)
{
	my $out = $watch->query_safe(
		q{SELECT count(*) FILTER (WHERE (r.state = 'synced') <> EXISTS (SELECT FROM done AS d WHERE d.object_id = r.object_id))
		        || ' ' || count(*) FILTER (WHERE r.state <> 'synced')
		  FROM delta.resource AS r WHERE r.kind = 'ok'});
	my ($bad, $left) = split ' ', $out;
	$samples++;
	if ($bad != 0)
	{
		$mismatch++;
		diag("sample $samples: $bad resources whose synced state and written row disagree");
	}
	last if $left == 0;
	usleep(20_000);
}
$watch->quit;
ok($samples > 1, "the drain was observed ($samples snapshots)");
is($mismatch, 0, "in every snapshot a resource is synced iff its run's write is visible");
is( $node->safe_psql($db, "SELECT count(*) FROM delta.resource WHERE kind = 'ok' AND state = 'synced'"),
	$n, "all $n resources are synced");
is( $node->safe_psql($db, 'SELECT count(*) || \' \' || count(DISTINCT object_id) FROM done'),
	"$n $n", 'each work function ran exactly once per resource');
is( $node->safe_psql($db,
		"SELECT count(*) FROM delta.resource WHERE kind = 'ok' AND (attempt <> 1 OR synced_at IS NULL OR due_at IS NOT NULL OR holder_pid IS NOT NULL OR errors <> '[]')"),
	'0', 'synced resources: attempt 1, synced_at set, not due, not held, no errors');

# --- failure: recorded, retried with back-off, degraded at max_attempts ----

$node->safe_psql($db, "SELECT id FROM delta.inform('fail', 'f1', '{}')");
ok(wait_for_state($node, $db, 'fail', 'f1', 'failed'), 'a raising work function leaves the resource failed');
my $row = resource($node, $db, 'fail', 'f1');
ok( $node->safe_psql($db,
		"SELECT due_at >= attempted_at + interval '0.75 s' FROM delta.resource WHERE kind = 'fail' AND object_id = 'f1'") eq 't',
	'a failed resource is due again only after a back-off')
  or diag(DeltaTest::explain_row($row));
my $err = decode_json($row->{errors})->[0];
is($err->{error},    'boom for f1', 'the error message is recorded');
is($err->{sqlstate}, '22023',       'the SQLSTATE is recorded');
is($err->{attempt},  1,             'the attempt is recorded');
is($err->{detail},   'the detail',  'the detail is recorded');
ok(defined $err->{at}, 'the time is recorded');

ok(wait_for_state($node, $db, 'fail', 'f1', 'degraded'), 'after max_attempts (3) failures the resource is degraded');
$row = resource($node, $db, 'fail', 'f1');
is($row->{attempt}, 3, 'degraded after exactly 3 attempts');
ok(!defined $row->{due_at}, 'a degraded resource is never due again');
my $errs = decode_json($row->{errors});
is_deeply([ map { $_->{attempt} } @$errs ], [ 1, 2, 3 ], 'one error per attempt')
  or diag($row->{errors});
is( $node->safe_psql($db,
		"SELECT bool_and(at2 - at1 >= interval '0.5 s') FROM (SELECT (e->>'at')::timestamptz AS at2, lag((e->>'at')::timestamptz) OVER (ORDER BY (e->>'attempt')::int) AS at1 FROM delta.resource, jsonb_array_elements(errors) AS e WHERE kind = 'fail' AND object_id = 'f1') AS s WHERE at1 IS NOT NULL"),
	't', 'retries are spaced by the back-off')
  or diag($row->{errors});
is($node->safe_psql($db, 'SELECT count(*) FROM failed_writes'), '0',
	"a failed run's own writes are rolled back");
my $log = slurp_file($node->logfile);
like($log, qr/delta: run of resource \d+ \(kind "fail", object_id "f1"\) failed on attempt 2 of 3 with SQLSTATE 22023: boom for f1/,
	'the log line of a failed run names the resource, the attempt and the SQLSTATE');
my @degraded = $log =~ /delta: resource \d+ \(kind "fail", object_id "f1"\) is degraded after 3 attempts/g;
is(scalar(@degraded), 1, 'a line of its own says once that the resource is degraded');
ok( $node->safe_psql($db, "SELECT sum(failed) >= 3 FROM delta.workers WHERE $DeltaTest::WORKER_ROLES") eq 't',
	'delta.workers counts the failed runs');

# --- delete ----------------------------------------------------------------

$node->safe_psql($db, "SELECT id FROM delta.inform('del', 'x1', '{}')");
ok(wait_for_state($node, $db, 'del', 'x1', 'deleted'), 'resource_delete() leaves the resource deleted');
$row = resource($node, $db, 'del', 'x1');
ok(!defined $row->{due_at}, 'a deleted resource is not due');
like($row->{errors}, qr/gone upstream/, 'the reason of the deletion is recorded');
is($node->safe_psql($db, "SELECT count(*) FROM done WHERE object_id = 'cleaned up x1'"), '1',
	'the writes of the run that called resource_delete are kept');

# --- snooze ----------------------------------------------------------------

$node->safe_psql($db, "SELECT id FROM delta.inform('snz', 's1', '{}')");
ok( DeltaTest::poll_until($node, $db,
		"SELECT state || ' ' || attempt || ' ' || (due_at > attempted_at + interval '1 s') FROM delta.resource WHERE kind = 'snz' AND object_id = 's1' AND attempted_at IS NOT NULL",
		'scheduled 0 true'),
	'resource_snooze() puts the resource back to scheduled, due later, the attempt not counted');
ok(wait_for_state($node, $db, 'snz', 's1', 'synced'), 'the snoozed resource is synced by its next run');
$row = resource($node, $db, 'snz', 's1');
is($row->{attempt}, 1, 'the snoozed run did not count as an attempt');
is($row->{errors}, '[]', 'a snooze is not an error');
is($node->safe_psql($db, "SELECT last_value FROM snooze_runs"), '2', 'the work function ran twice');
is($node->safe_psql($db, "SELECT string_agg(run::text, ',' ORDER BY run) FROM snooze_progress"), '1,2',
	'the writes of the run that called resource_snooze are kept');

$node->safe_psql($db, "SELECT id FROM delta.inform('snzraise', 'r1', '{}')");
ok(wait_for_state($node, $db, 'snzraise', 'r1', 'degraded'),
	'a run that raises after resource_snooze is a failure');
is(errors_of('snzraise', 'r1')->[0]{sqlstate}, '22000', 'with the error it raised');
is($node->safe_psql($db, "SELECT count(*) FROM failed_writes WHERE object_id = 'r1'"), '0',
	'and its writes are rolled back');

# --- timeout ---------------------------------------------------------------
# One transaction: the slow resource and a quick one are claimed together,
# and the quick one must not inherit the cancelled statement timeout.

$node->safe_psql($db,
	"BEGIN; SELECT id FROM delta.inform('slow', 't1', '{}'); SELECT id FROM delta.inform('ok', 'after-timeout', '{}'); COMMIT;");
ok(wait_for_state($node, $db, 'slow', 't1', 'failed'), 'a run past work_timeout fails');
$err = errors_of('slow', 't1')->[0];
is($err->{sqlstate}, '57014', 'the timeout is recorded as query_canceled');
like($err->{error}, qr/statement timeout/, 'the message says statement timeout');
ok(wait_for_state($node, $db, 'ok', 'after-timeout', 'synced'), 'a run after a timed out one is synced');

# --- callbacks run as the controller's owner -------------------------------

$node->safe_psql($db, q{
	CREATE ROLE app LOGIN;
	GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA delta TO app;
	GRANT INSERT ON done TO app;
	CREATE FUNCTION app_work(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ INSERT INTO public.done (object_id, who) VALUES (r.object_id, current_user) $$;
	SET ROLE app;
	SELECT delta.register_controller('app', 'app_work(delta.resource)');
	SELECT id FROM delta.inform('app', 'a1', '{}');
});
is($node->safe_psql($db, "SELECT owner FROM delta.controller WHERE kind = 'app'"), 'app',
	'the registering role owns the controller');
ok(wait_for_state($node, $db, 'app', 'a1', 'synced'), "the owner's resource is synced");
is($node->safe_psql($db, "SELECT who FROM done WHERE object_id = 'a1'"), 'app',
	'the work function ran as the owner, not as the superuser');

# The owner's privileges, not the superuser's: without INSERT the run fails.
$node->safe_psql($db, q{
	REVOKE INSERT ON done FROM app;
	SELECT id FROM delta.inform('app', 'a2', '{}');
});
ok(wait_for_state($node, $db, 'app', 'a2', 'failed'), "a run needing more than the owner's privileges fails");
is(errors_of('app', 'a2')->[0]{sqlstate}, '42501', 'with insufficient_privilege');

# --- delta.work_timeout is the default time limit ----------------------------

$node->safe_psql($db, q{
	CREATE FUNCTION sleep_10(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ SELECT pg_sleep(10) $$;
	SELECT delta.register_controller('slow_default', 'sleep_10(delta.resource)', max_attempts => 1);
	SELECT id FROM delta.inform('slow_default', 'd1', '{}');
});
ok(wait_for_state($node, $db, 'slow_default', 'd1', 'degraded'),
	'without its own work_timeout a run is limited by delta.work_timeout (2s here)');
is(errors_of('slow_default', 'd1')->[0]{sqlstate}, '57014', 'cancelled by the timeout');

# --- an inform during a run --------------------------------------------------
# It neither waits for the run nor lets the run's outcome mark the newer
# object synced: the resource runs again with the newer object.

$node->safe_psql($db, q{
	CREATE TABLE versions (v int, at timestamptz DEFAULT clock_timestamp());
	CREATE FUNCTION versioned(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_sleep((r.object ->> 'sleep')::float8);
		INSERT INTO public.versions (v) VALUES ((r.object ->> 'v')::int);
	END $$;
	SELECT delta.register_controller('versioned', 'versioned(delta.resource)', work_timeout => '1 min');
	SELECT id FROM delta.inform('versioned', 'v', '{"v": 1, "sleep": 3}');
});
ok( DeltaTest::poll_until($node, $db,
		"SELECT count(*) FROM delta.workers AS w JOIN delta.resource AS r ON r.id = w.resource_id WHERE r.kind = 'versioned' AND w.state = 'running'",
		'1'),
	'the first version is running');
my ($ret, $stdout, $stderr) = $node->psql($db,
	"SET lock_timeout = '1s'; SELECT state FROM delta.inform('versioned', 'v', '{\"v\": 2, \"sleep\": 0}');");
is($ret, 0, 'an inform during the run does not wait for it') or diag($stderr);
ok( DeltaTest::poll_until($node, $db,
		"SELECT state || ' ' || (object ->> 'v') || ' ' || attempt FROM delta.resource WHERE kind = 'versioned'",
		'synced 2 1'),
	'the resource ends synced with the newer object, in one attempt of its own');
is($node->safe_psql($db, "SELECT string_agg(v::text, ',' ORDER BY at) FROM versions"), '1,2',
	'the work function ran once per version, in order');

# --- a run's settings do not outlive it ---------------------------------------
# Workers are long-lived sessions shared by every controller of the
# namespace: a run that changes search_path (or any setting, even without
# LOCAL) must not change what the next run, of another owner, sees.

$node->safe_psql($db, q{
	CREATE TABLE settings_seen (kind text, search_path text, custom text);
	GRANT INSERT ON settings_seen TO app;
	CREATE FUNCTION set_things(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM set_config('search_path', 'pg_temp, public', false);
		PERFORM set_config('delta_test.custom', 'leaked', false);
		INSERT INTO public.settings_seen VALUES (r.kind, current_setting('search_path'),
			current_setting('delta_test.custom', true));
	END $$;
	CREATE FUNCTION read_things(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.settings_seen VALUES (r.kind, current_setting('search_path'),
			current_setting('delta_test.custom', true));
	END $$;
	SELECT delta.register_controller('reader', 'read_things(delta.resource)');
	SET ROLE app;
	SELECT delta.register_controller('setter', 'set_things(delta.resource)');
});
my $default_path = $node->safe_psql($db, 'SHOW search_path');
# the default namespace has one worker: the two runs share its session
$node->safe_psql($db, "SELECT id FROM delta.inform('setter', 'x', '{}')");
ok(wait_for_state($node, $db, 'setter', 'x', 'synced'), 'the run changing settings is synced');
$node->safe_psql($db, "SELECT id FROM delta.inform('reader', 'x', '{}')");
ok(wait_for_state($node, $db, 'reader', 'x', 'synced'), 'the next run is synced');
is($node->safe_psql($db, "SELECT search_path || '|' || coalesce(custom, '') FROM settings_seen WHERE kind = 'setter'"),
	'pg_temp, public|leaked', 'inside its run, a work function sees its own settings');
is($node->safe_psql($db, "SELECT search_path || '|' || coalesce(custom, '') FROM settings_seen WHERE kind = 'reader'"),
	"$default_path|", "the next run sees the default settings, not the previous run's");

# --- nor do its temporary tables ----------------------------------------------
# pg_temp is searched first for tables: a temporary table left by one owner's
# run would shadow the tables of the next owner's.

$node->safe_psql($db, q{
	CREATE TABLE shadowed (who text);
	GRANT SELECT ON shadowed TO app;
	INSERT INTO shadowed VALUES ('the real table');
	CREATE TABLE temp_seen (kind text, who text);
	GRANT INSERT ON temp_seen TO app;
	CREATE FUNCTION plant_temp(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		CREATE TEMP TABLE shadowed (who text);
		INSERT INTO shadowed VALUES ('a temporary table');
		INSERT INTO public.temp_seen SELECT r.kind, who FROM shadowed;
	END $$;
	CREATE FUNCTION read_shadowed(r delta.resource) RETURNS void LANGUAGE plpgsql
	SET search_path = pg_temp, public AS $$
	BEGIN
		INSERT INTO public.temp_seen SELECT r.kind, who FROM shadowed;
	END $$;
	SELECT delta.register_controller('temp_reader', 'read_shadowed(delta.resource)');
	SET ROLE app;
	SELECT delta.register_controller('temp_planter', 'plant_temp(delta.resource)');
});
$node->safe_psql($db, "SELECT id FROM delta.inform('temp_planter', 'x', '{}')");
ok(wait_for_state($node, $db, 'temp_planter', 'x', 'synced'), 'the run creating a temporary table is synced');
$node->safe_psql($db, "SELECT id FROM delta.inform('temp_reader', 'x', '{}')");
ok(wait_for_state($node, $db, 'temp_reader', 'x', 'synced'), 'the next run is synced');
is($node->safe_psql($db, "SELECT kind || ': ' || who FROM temp_seen ORDER BY kind"),
	"temp_planter: a temporary table\ntemp_reader: the real table",
	"a run's temporary tables are gone before the next run");

$node->stop;
done_testing();
