
# Runs that take time (DESIGN.md section 2): a worker claims only what it
# will start within delta.commit_delay, so slow work spreads over the
# namespace's workers; an outcome is committed before a run that will take
# longer starts, never held behind it; and an idle worker wakes when its
# namespace's first back-off retry or snooze is due, not at the next poll.
# poll_interval and maintenance_interval are an hour: nothing here may rely
# on them.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main', conf => {
	'delta.poll_interval'        => "'1h'",
	'delta.maintenance_interval' => "'1h'",
});
my $db = 'postgres';
create_extension($node, $db);

$node->safe_psql($db, q{
	CREATE TABLE ran (object_id text, pid integer, at timestamptz DEFAULT clock_timestamp());
	CREATE FUNCTION slow_work(r delta.resource) RETURNS void LANGUAGE sql AS $$
		INSERT INTO public.ran (object_id, pid) VALUES (r.object_id, pg_backend_pid());
		SELECT pg_sleep(0.3);
	$$;
	CREATE FUNCTION quick_work(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ INSERT INTO public.ran (object_id, pid) VALUES (r.object_id, pg_backend_pid()) $$;
	-- waits for the test's advisory lock: a run as long as the test wants
	CREATE FUNCTION blocked_work(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ SELECT pg_advisory_xact_lock(4242) $$;
	CREATE FUNCTION flaky_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.ran (object_id, pid) VALUES (r.object_id, pg_backend_pid());
		IF r.attempt = 1 THEN
			RAISE EXCEPTION 'first attempt fails';
		END IF;
	END $$;
	-- sequences are not transactional: the count survives the snooze
	CREATE SEQUENCE snoozy_runs;
	CREATE FUNCTION snoozy_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		IF nextval('public.snoozy_runs') = 1 THEN
			PERFORM delta.resource_snooze('1 second');
		END IF;
	END $$;
	CREATE FUNCTION far_work(r delta.resource) RETURNS void LANGUAGE plpgsql
		AS $$ BEGIN PERFORM delta.resource_snooze('400000 years'); END $$;
	SELECT delta.create_namespace('spread', max_workers => 4);
	SELECT delta.register_controller('far', 'far_work(delta.resource)', max_attempts => 1);
	SELECT delta.create_namespace('solo', max_workers => 1);
	SELECT delta.register_controller('slow', 'slow_work(delta.resource)');
	SELECT delta.register_controller('quick', 'quick_work(delta.resource)');
	SELECT delta.register_controller('blocked', 'blocked_work(delta.resource)');
	SELECT delta.register_controller('flaky', 'flaky_work(delta.resource)', backoff_base => '1 second');
	SELECT delta.register_controller('snoozy', 'snoozy_work(delta.resource)');
});
ok(wait_for_workers($node, $db, "namespace = 'spread'", 4), 'namespace spread has its four workers');
ok(wait_for_workers($node, $db, "namespace = 'solo'", 1), 'namespace solo has its worker');

# 1. slow work spreads: with batch claims one worker took all twelve
$node->safe_psql($db,
	"SELECT count(*) FROM delta.inform_many('slow', (SELECT array_agg(ROW('s' || i, '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item) FROM generate_series(1, 12) AS i), namespace => 'spread')");
ok(poll_until($node, $db, "SELECT count(*) FROM delta.resource WHERE kind = 'slow' AND state = 'synced'", '12'),
	'the slow resources are synced');
my $pids = $node->safe_psql($db, "SELECT count(DISTINCT pid) FROM ran WHERE object_id LIKE 's%'");
cmp_ok($pids, '>=', 2, "slow runs were spread over several workers ($pids)");
# attempted_at is when each run started, synced_at when it ended: each slow
# run records its start, then sleeps 0.3 s
is($node->safe_psql($db, q{SELECT count(*) FROM delta.resource AS r JOIN ran ON ran.object_id = r.object_id
	WHERE r.kind = 'slow' AND r.attempted_at <= ran.at AND r.synced_at >= ran.at + interval '300 ms'}),
	'12', 'synced_at - attempted_at is the duration of each run');

# 2. a quick run's outcome is committed before a long run of the same claim
# starts.  Warm up first, so the worker claims big batches again.
$node->safe_psql($db,
	"SELECT count(*) FROM delta.inform_many('quick', (SELECT array_agg(ROW('w' || i, '{}', NULL, NULL, NULL, NULL, NULL)::delta.inform_item) FROM generate_series(1, 50) AS i), namespace => 'solo')");
ok(poll_until($node, $db, "SELECT count(*) FROM delta.resource WHERE kind = 'quick' AND state = 'synced'", '50'),
	'the warm-up resources are synced');
my $holder = $node->background_psql($db);
$holder->query_safe('SELECT pg_advisory_lock(4242)');
$node->safe_psql($db, q{
	BEGIN;
	SELECT delta.inform('quick', 'q-first', '{}', namespace => 'solo');
	SELECT delta.inform('blocked', 'b-second', '{}', namespace => 'solo');
	COMMIT;
});
ok(poll_until($node, $db,
	q{SELECT string_agg(object_id || '=' || state, ' ' ORDER BY object_id) FROM delta.resource WHERE object_id IN ('q-first', 'b-second')},
	'b-second=pending q-first=synced'),
	'the quick run is committed while the long run after it still runs');
$holder->query_safe('SELECT pg_advisory_unlock(4242)');
$holder->quit;
ok(wait_for_state($node, $db, 'blocked', 'b-second', 'synced'), 'the long run ends synced');

# 3. retries and snoozes are picked up when due, with an hour-long poll
$node->safe_psql($db, q{SELECT delta.inform('flaky', 'f1', '{}')});
ok(poll_until($node, $db, q{SELECT state || ' ' || attempt FROM delta.resource WHERE object_id = 'f1'}, 'synced 2'),
	'a failed run is retried after its back-off, not at the next poll');
$node->safe_psql($db, q{SELECT delta.inform('snoozy', 'z1', '{}')});
ok(poll_until($node, $db,
	q{SELECT state || ' ' || (SELECT last_value FROM snoozy_runs) FROM delta.resource WHERE object_id = 'z1'},
	'synced 2'),
	'a snoozed resource runs again when its snooze ends');

# 4. a snooze past the bounds fails its run alone; the worker goes on
$node->safe_psql($db, q{SELECT delta.inform('far', 'far1', '{}'); SELECT delta.inform('quick', 'after-far', '{}')});
ok(poll_until($node, $db,
	q{SELECT string_agg(object_id || '=' || state, ' ' ORDER BY object_id) FROM delta.resource WHERE object_id IN ('far1', 'after-far')},
	'after-far=synced far1=degraded'), 'a snooze of 400000 years fails that run, the next resource is synced');
is($node->safe_psql($db, q{SELECT errors -> -1 ->> 'sqlstate' FROM delta.resource WHERE object_id = 'far1'}),
	'22023', 'with 22023');

done_testing();
