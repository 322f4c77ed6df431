
# An error outside a run never kills a worker and never costs another
# resource an attempt (issue 7, item 5):
#   - a deferred constraint fires inside the run that broke it: that run
#     fails with its SQLSTATE, the runs claimed with it are synced at their
#     first attempt;
#   - an outcome that cannot be recorded (here: a trigger on delta.resource
#     refuses it) fails that resource alone, with the true error;
#   - a deadlock between the outcome statement and an application
#     transaction is retried: nothing fails, the worker goes on;
#   - database settings that break every statement (read-only, serializable,
#     tiny timeouts) are overridden in delta's processes;
#   - a dropped inform function fails its inform runs cleanly (no crash), and
#     they stop after the controller's max_attempts.
# Each check names the pid of the worker, which must not change.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main', conf => { deadlock_timeout => "'200ms'" });
my $db   = 'postgres';
create_extension($node, $db);

sub sql { return $node->safe_psql($db, @_); }

sub worker_pid
{
	return sql(q{SELECT string_agg(pid::text, ',') FROM delta.workers
		WHERE namespace = 'default' AND role IN ('worker', 'leader')});
}

sub states
{
	my ($like) = @_;
	return sql(qq{SELECT string_agg(object_id || ':' || state || ':' || attempt, ',' ORDER BY object_id)
		FROM delta.resource WHERE object_id LIKE '$like'});
}

sql(q{
	CREATE TABLE parent (id integer PRIMARY KEY);
	INSERT INTO parent VALUES (1);
	CREATE TABLE child (object_id text, parent integer REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
	CREATE FUNCTION child_work(r delta.resource) RETURNS void LANGUAGE sql AS $$
		INSERT INTO public.child VALUES (r.object_id, (r.object->>'parent')::integer);
	$$;
	SELECT delta.register_controller('child', 'child_work(delta.resource)', max_attempts => 1);
});

# quick runs first: the worker then claims many resources at once
sql(q{SELECT count(*) FROM delta.inform_many('child', (SELECT jsonb_agg(jsonb_build_object(
	'object_id', 'warm' || i, 'object', jsonb_build_object('parent', 1))) FROM generate_series(1, 20) AS i))});
ok(poll_until($node, $db, q{SELECT count(*) FROM delta.resource WHERE state = 'synced'}, '20'),
	'warm-up runs synced');
my $pid = worker_pid();

# --- a deferred constraint ------------------------------------------------
sql(q{SELECT count(*) FROM delta.inform_many('child', '[
	{"object_id": "d1", "object": {"parent": 1}},
	{"object_id": "d2", "object": {"parent": 999}},
	{"object_id": "d3", "object": {"parent": 1}}]'::jsonb)});
ok(poll_until($node, $db, q{SELECT count(*) FROM delta.resource
	WHERE object_id LIKE 'd_' AND state IN ('synced', 'degraded')}, '3'), 'the three runs ended');
is(states('d_'), 'd1:synced:1,d2:degraded:1,d3:synced:1',
	'only the run that broke the deferred constraint failed; the others on their first attempt');
is(sql(q{SELECT errors -> -1 ->> 'sqlstate' FROM delta.resource WHERE object_id = 'd2'}), '23503',
	'with the SQLSTATE of the violation');
is(sql(q{SELECT string_agg(object_id, ',' ORDER BY object_id) FROM child WHERE object_id LIKE 'd_'}),
	'd1,d3', 'the writes of the good runs are kept');

# --- an outcome that cannot be recorded -------------------------------------
sql(q{
	CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.object_id = 'poison' AND NEW.state = 'synced' THEN
			RAISE EXCEPTION 'poison may not be synced' USING ERRCODE = 'check_violation';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER refuse BEFORE UPDATE ON delta.resource FOR EACH ROW EXECUTE FUNCTION refuse();
	SELECT count(*) FROM delta.inform_many('child', '[
		{"object_id": "p1", "object": {"parent": 1}},
		{"object_id": "poison", "object": {"parent": 1}},
		{"object_id": "p2", "object": {"parent": 1}}]'::jsonb);
});
ok(poll_until($node, $db, q{SELECT count(*) FROM delta.resource
	WHERE object_id IN ('p1', 'poison', 'p2') AND state IN ('synced', 'degraded')}, '3'), 'the three runs ended');
is(states('p%'), 'p1:synced:1,p2:synced:1,poison:degraded:1',
	'the resource whose outcome could not be recorded failed alone');
is(sql(q{SELECT errors -> -1 ->> 'sqlstate' || ' ' || (errors -> -1 ->> 'error') FROM delta.resource WHERE object_id = 'poison'}),
	"23514 the worker could not record the outcome of this run: poison may not be synced (pid $pid)",
	'with the true error');
sql('DROP TRIGGER refuse ON delta.resource');

# --- a deadlock with an application transaction ----------------------------
# b's run waits for the test's advisory lock.  Meanwhile the application
# informs b (locking its row), the run ends, and the outcome statement (a, b
# in id order) holds a and waits for b; then the application informs a: a
# deadlock, of which the worker is the victim (it waited longer).  It tries
# again once the application commits: both resources run their new objects.
sql(q{
	CREATE FUNCTION gated_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		IF r.object_id = 'b' AND r.object ->> 'v' = '1' THEN
			PERFORM pg_advisory_xact_lock(77);
		END IF;
	END $$;
	SELECT delta.register_controller('gated', 'gated_work(delta.resource)');
	SELECT count(*) FROM delta.inform_many('gated', (SELECT jsonb_agg(jsonb_build_object(
		'object_id', 'gwarm' || i, 'object', '{}'::jsonb)) FROM generate_series(1, 10) AS i));
});
ok(poll_until($node, $db, q{SELECT count(*) FROM delta.resource WHERE kind = 'gated' AND state = 'synced'}, '10'),
	'gated warm-up runs synced');
my $gate = $node->background_psql($db);
$gate->query_safe('SELECT pg_advisory_lock(77)');
sql(q{SELECT count(*) FROM delta.inform_many('gated', '[
	{"object_id": "a", "object": {"v": 1}}, {"object_id": "b", "object": {"v": 1}}]'::jsonb)});
ok(poll_until($node, $db, qq{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 77 AND NOT granted AND pid = $pid}, '1'),
	"b's run waits for the gate");
my $app = $node->background_psql($db);
$app->query_safe('BEGIN');
$app->query_safe(q{SELECT delta.inform('gated', 'b', '{"v": 2}')});
$gate->query_safe('SELECT pg_advisory_unlock(77)');
ok(poll_until($node, $db, qq{SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted AND pid = $pid}, '1'),
	'the outcome statement waits for the application');
$app->query_safe(q{SELECT delta.inform('gated', 'a', '{"v": 2}')});
$app->query_safe('COMMIT');
$app->quit;
$gate->quit;
ok(poll_until($node, $db, q{SELECT count(*) FROM delta.resource
	WHERE kind = 'gated' AND object_id IN ('a', 'b') AND state = 'synced' AND object ->> 'v' = '2'}, '2'),
	'both resources are synced with their new objects');
is(sql(q{SELECT string_agg(errors::text, ',') FROM delta.resource WHERE object_id IN ('a', 'b')}), '[],[]',
	'no error was recorded: the deadlock was tried again');
ok($node->log_contains(qr/delta: trying again after: deadlock detected/), 'the retry is logged');

# --- settings that break every statement ---------------------------------
# one session: the settings reach only sessions that start later, such as
# the new worker
my $reset = q{SET default_transaction_read_only = off; SET statement_timeout = 0;
	SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0; };
sql(qq{
	ALTER DATABASE postgres SET default_transaction_isolation = serializable;
	ALTER DATABASE postgres SET lock_timeout = '1ms';
	ALTER DATABASE postgres SET statement_timeout = '1ms';
	ALTER DATABASE postgres SET idle_in_transaction_session_timeout = '1ms';
	ALTER DATABASE postgres SET default_transaction_read_only = on;
	SELECT pg_terminate_backend($pid);
});
ok(poll_until($node, $db, $reset . q{SELECT count(*) FROM delta.workers
	WHERE namespace = 'default' AND role IN ('worker', 'leader') AND pid <> } . $pid, '1'),
	'a new worker started');
$node->safe_psql($db, $reset . q{SELECT count(*) FROM delta.inform('child', 's1', '{"parent": 1}')});
ok(poll_until($node, $db, $reset . q{SELECT state FROM delta.resource WHERE object_id = 's1'}, 'synced'),
	'the new worker syncs despite the database settings');
$pid = $node->safe_psql($db, $reset . q{SELECT string_agg(pid::text, ',') FROM delta.workers
	WHERE namespace = 'default' AND role IN ('worker', 'leader')});
sql($reset . q{ALTER DATABASE postgres RESET ALL});

# --- a dropped inform function ---------------------------------------------
sql(q{
	CREATE FUNCTION gone_inform(o delta.inform_options) RETURNS SETOF delta.inform_item LANGUAGE sql
		AS $$ SELECT NULL::delta.inform_item WHERE false $$;
	SELECT delta.register_controller('gone', 'child_work(delta.resource)', inform => 'gone_inform(delta.inform_options)',
		max_attempts => 2, backoff_base => '10 ms', backoff_max => '10 ms');
	-- delta's event trigger refuses the drop; a session that skips event
	-- triggers (replica role) gets past it, and the worker must cope
	SET session_replication_role = replica;
	DROP FUNCTION gone_inform(delta.inform_options);
	RESET session_replication_role;
	SELECT delta.schedule_inform('gone');
});
ok(poll_until($node, $db, q{SELECT state || ' ' || attempt || ' ' || (due_at = 'infinity') FROM delta.inform_run WHERE kind = 'gone'},
	'failed 2 true'), 'the inform run failed twice, then stopped');
like(sql(q{SELECT errors -> -1 ->> 'sqlstate' || ' ' || (errors -> -1 ->> 'error') FROM delta.inform_run WHERE kind = 'gone'}),
	qr/^42883 inform function \d+ of kind "gone" no longer exists$/, 'with a clear error');

is(sql(q{SELECT string_agg(pid::text, ',') FROM delta.workers WHERE namespace = 'default' AND role IN ('worker', 'leader')}),
	$pid, 'the worker never exited');
ok(!$node->log_contains(qr/terminated by signal|server process .* was terminated/), 'nothing crashed');

$node->stop;
done_testing();
