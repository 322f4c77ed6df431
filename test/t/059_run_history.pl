
# Copyright: the delta authors.
#
# The run history (delta.run) on a running server:
#   - the workers write one row per run: synced, failed, degraded, deleted,
#     snoozed, with the worker's pid, attempt, SQLSTATE and error; the
#     counters of delta.metrics count them;
#   - the server log names a failed run's resource, attempt and SQLSTATE,
#     and says in a line of its own when a resource becomes degraded;
#   - delta.run_history = off (reloaded): nothing is written;
#   - the leader deletes rows older than delta.run_history_retention, in
#     batches of 10,000 (25,000 old rows: three batches).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('history');
my $db   = 'postgres';
create_extension($node, $db);

$node->safe_psql($db, q{
	CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		IF r.object ? 'sleep' THEN
			PERFORM pg_sleep((r.object ->> 'sleep')::float8);
		END IF;
		IF r.object ? 'fail' THEN
			RAISE EXCEPTION 'asked to fail' USING ERRCODE = 'check_violation';
		END IF;
		IF r.object ? 'delete' THEN
			PERFORM delta.resource_delete('asked to');
		END IF;
		IF r.object ? 'snooze' AND r.attempt = 1 AND NOT EXISTS (
				SELECT FROM delta.run AS h WHERE h.resource_id = r.id AND h.outcome = 'snoozed') THEN
			PERFORM delta.resource_snooze('0 seconds');
		END IF;
	END $$;
	SELECT delta.register_controller('thing', 'work(delta.resource)', max_attempts => 2,
		backoff_base => '10 ms', backoff_max => '10 ms');
	SELECT delta.inform('thing', 'ok', '{}');
	SELECT delta.inform('thing', 'bad', '{"fail": true}');
	SELECT delta.inform('thing', 'gone', '{"delete": true}');
	SELECT delta.inform('thing', 'later', '{"snooze": true}');
});
ok(wait_for_state($node, $db, 'thing', 'bad', 'degraded'), 'the failing resource ends degraded');
ok(wait_for_state($node, $db, 'thing', 'later', 'synced'), 'the snoozed resource is synced by its next run');
ok(wait_for_state($node, $db, 'thing', 'ok', 'synced') && wait_for_state($node, $db, 'thing', 'gone', 'deleted'),
	'the others are synced and deleted');

is( $node->safe_psql($db, q{
		SELECT string_agg(format('%s %s %s %s %s', object_id, attempt, outcome, coalesce(sqlstate, '-'),
		                         coalesce(error, '-')), E'\n' ORDER BY object_id, id)
		FROM delta.run}),
	join("\n",
		'bad 1 failed 23514 asked to fail',
		'bad 2 degraded 23514 asked to fail',
		'gone 1 deleted - resource deleted by its work function: asked to',
		'later 1 snoozed - -',
		'later 1 synced - -',
		'ok 1 synced - -'),
	'one row per run, with its attempt, outcome, SQLSTATE and error');
is( $node->safe_psql($db, q{
		SELECT count(*) FROM delta.run AS h
		WHERE h.pid IN (SELECT w.pid FROM delta.workers AS w)
		  AND h.started_at <= h.ended_at AND h.duration = h.ended_at - h.started_at}),
	'6', "each row has the worker's pid, the run's start, end and duration");
is( $node->safe_psql($db, q{
		SELECT string_agg(outcome || ' ' || value, ', ' ORDER BY outcome) FROM delta.metrics
		WHERE metric = 'delta_runs_total' AND value > 0}),
	'degraded 1, deleted 1, failed 1, snoozed 1, synced 2',
	'delta.metrics counts the runs by outcome');

# --- the log lines of a failed run and of a degraded resource ---------------
my $log = slurp_file($node->logfile);
like($log,
	qr/delta: run of resource \d+ \(kind "thing", object_id "bad"\) failed on attempt 1 of 2 with SQLSTATE 23514: asked to fail/,
	'the log line of a failed run names the resource, the attempt of max and the SQLSTATE');
like($log, qr/delta: resource \d+ \(kind "thing", object_id "bad"\) is degraded after 2 attempts/,
	'a line of its own says the resource is degraded');
unlike($log, qr/object_id "ok"\) (failed|is degraded)/, 'no such line for a resource that synced');

# --- history off: nothing written -------------------------------------------
$node->safe_psql($db, q{ALTER SYSTEM SET delta.run_history = off; SELECT pg_reload_conf();});
# the workers have the setting once a run after the reload is not recorded
my $recorded = 1;
for (my $i = 1; $recorded && $i <= 50; $i++)
{
	$node->safe_psql($db, "SELECT delta.inform('thing', 'probe$i', '{}')");
	wait_for_state($node, $db, 'thing', "probe$i", 'synced');
	$recorded = $node->safe_psql($db, "SELECT count(*) FROM delta.run WHERE object_id = 'probe$i'");
}
is($recorded, '0', 'after the reload the workers stop writing history');
my $before = $node->safe_psql($db, 'SELECT count(*) FROM delta.run');
$node->safe_psql($db,
	q{SELECT count(*) FROM delta.inform_many('thing', (SELECT jsonb_agg(jsonb_build_object('object_id', 'off' || i, 'object', '{}'::jsonb)) FROM generate_series(1, 50) AS i))});
ok( poll_until($node, $db,
		q{SELECT count(*) FROM delta.resource WHERE object_id LIKE 'off%' AND state = 'synced'}, '50'),
	'runs go on with the history off');
is($node->safe_psql($db, 'SELECT count(*) FROM delta.run'), $before, 'and write no row of history');
is( $node->safe_psql($db,
		q{SELECT value >= 52 FROM delta.metrics WHERE metric = 'delta_runs_total' AND outcome = 'synced'}),
	't', 'the counters still count them');
$node->safe_psql($db, q{ALTER SYSTEM RESET delta.run_history; SELECT pg_reload_conf();});

# --- the leader cleans old rows in batches ----------------------------------
$node->safe_psql($db, q{
	ALTER SYSTEM SET delta.run_history_retention = '1h';
	SELECT pg_reload_conf();
	INSERT INTO delta.run (resource_id, kind, object_id, namespace, attempt, outcome, started_at, ended_at)
	SELECT 0, 'thing', 'old' || i, 'default', 1, 'synced', now() - interval '2 hours', now() - interval '2 hours'
	FROM generate_series(1, 25000) AS i;
});
ok(poll_until($node, $db, q{SELECT count(*) FROM delta.run WHERE object_id LIKE 'old%'}, '0'),
	'the leader deletes the rows past delta.run_history_retention');
ok($node->safe_psql($db, q{SELECT count(*) > 0 FROM delta.run WHERE object_id = 'ok'}) eq 't',
	'and keeps the newer ones');

$node->stop;
done_testing();
