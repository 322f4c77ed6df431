
# Copyright: the delta authors.
#
# Informers on a running server: inform functions read a source table and
# return its rows (external_created_at = the row's creation time, only
# those after options.after).  Their runs are queued by the leader (first
# run right after registration, then every inform_interval) or by
# delta.schedule_inform, and run by the namespace workers as the
# controller's owner.  Checked here:
#   - the items become resources and are synced; the cursor
#     (last_inform_time) is the newest external_created_at, and the next
#     run gets it as options.after, so only new objects are returned;
#   - unchanged synced objects are skipped (synced_at unchanged) unless
#     process_existing; changed ones are worked again; a compare function
#     returning 0 makes a changed object count as unchanged; deleted
#     resources are skipped even with process_existing;
#   - a run that raises, returns a bad item or times out schedules
#     nothing, is recorded as failed (error, attempt) and retried, and
#     leaves the cursor alone;
#   - only one run per kind is in flight: schedule_inform during a run
#     queues one more run after it, never a concurrent one;
#   - inform functions run as the controller's owner;
#   - inform_interval makes runs happen by themselves.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('informer',
	conf => {
		'delta.maintenance_interval' => "'500ms'",
		'delta.inform_jitter' => 0,
	});
create_extension($node, 'postgres');

# Everything user-side belongs to the unprivileged role app, which
# registers the controllers.  mode says how each kind's inform function
# behaves; inform_log records each run that returned (the log of a run that
# failed is rolled back with it).
$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
GRANT CREATE ON SCHEMA public TO app;
GRANT EXECUTE ON FUNCTION delta.register_controller(text, regprocedure, regprocedure, regprocedure,
    integer, interval, interval, interval, integer, boolean, interval, interval),
  delta.unregister_controller(text) TO app;
SELECT delta.create_namespace('extra', max_workers => 3);
SET ROLE app;
CREATE TABLE src (kind text, id text, body jsonb NOT NULL DEFAULT '{}',
                  created timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE mode (kind text PRIMARY KEY, fail boolean NOT NULL DEFAULT false,
                   bad_item boolean NOT NULL DEFAULT false, sleep float8 NOT NULL DEFAULT 0);
CREATE TABLE inform_log (kind text, who name, "after" timestamptz, returned int,
                         started timestamptz, ended timestamptz);
CREATE TABLE runs (kind text, object_id text, attempt int, object jsonb,
                   at timestamptz DEFAULT clock_timestamp());

CREATE FUNCTION inform_impl(k text, o delta.inform_options) RETURNS SETOF delta.inform_item
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
    m mode;
    n int;
BEGIN
    SELECT * INTO m FROM mode WHERE mode.kind = k;
    IF coalesce(m.sleep, 0) > 0 THEN
        PERFORM pg_sleep(m.sleep);
    END IF;
    SELECT count(*) INTO n FROM src WHERE src.kind = k AND src.created > coalesce(o."after", '-infinity');
    INSERT INTO inform_log VALUES (k, current_user, o."after", n, started, clock_timestamp());
    RETURN QUERY
        SELECT s.id, s.body, s.created, NULL::text, NULL::jsonb, NULL::text[], NULL::int
        FROM src AS s WHERE s.kind = k AND s.created > coalesce(o."after", '-infinity')
        ORDER BY s.created;
    IF coalesce(m.bad_item, false) THEN
        RETURN NEXT ROW('bad', '[1]'::jsonb, now(), NULL, NULL, NULL, NULL)::delta.inform_item;
    END IF;
    IF coalesce(m.fail, false) THEN
        RAISE EXCEPTION 'inform of % broke', k;
    END IF;
END
$$;

CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO runs (kind, object_id, attempt, object) VALUES (r.kind, r.object_id, r.attempt, r.object);
    IF r.object ? 'delete' THEN
        PERFORM delta.resource_delete('asked to');
    END IF;
END
$$;

CREATE FUNCTION same(old jsonb, new jsonb) RETURNS int LANGUAGE sql AS 'SELECT 0';
});

# inform_<kind>(options): the inform function of kind.
sub make_inform
{
	my ($kind, %mode) = @_;
	my $fail = $mode{fail} ? 'true' : 'false';
	my $bad = $mode{bad_item} ? 'true' : 'false';
	my $sleep = $mode{sleep} || 0;
	$node->safe_psql('postgres', qq{
SET ROLE app;
CREATE FUNCTION inform_$kind(o delta.inform_options) RETURNS SETOF delta.inform_item
LANGUAGE sql AS \$\$ SELECT * FROM inform_impl('$kind', o) \$\$;
INSERT INTO mode VALUES ('$kind', $fail, $bad, $sleep);
});
	return;
}

# Registers kind as app with its inform function and extra arguments.
sub register
{
	my ($kind, $extra, %mode) = @_;
	make_inform($kind, %mode);
	$extra = $extra ? ", $extra" : '';
	$node->safe_psql('postgres', qq{
SET ROLE app;
SELECT delta.register_controller('$kind', 'work(delta.resource)', inform => 'inform_$kind(delta.inform_options)'$extra);
});
	return;
}

sub db
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

sub cursor_of
{
	my ($kind) = @_;
	return db("SELECT coalesce(last_inform_time::text, 'NULL') FROM delta.controller WHERE kind = '$kind'");
}

sub log_count
{
	my ($kind) = @_;
	return db("SELECT count(*) FROM inform_log WHERE kind = '$kind'");
}

# Waits until kind's inform log has $n rows and no run of kind is queued
# or running.
sub wait_for_runs
{
	my ($kind, $n, $what) = @_;
	ok( poll_until(
			$node, 'postgres',
			"SELECT (SELECT count(*) FROM inform_log WHERE kind = '$kind') >= $n"
			  . " AND NOT EXISTS (SELECT FROM delta.inform_run WHERE kind = '$kind')"),
		$what)
	  or diag(db("SELECT * FROM delta.inform_run"));
	return;
}

# Synced resources of kind (count), with every resource of kind synced or deleted.
sub wait_settled
{
	my ($kind, $synced, $what) = @_;
	ok( poll_until(
			$node, 'postgres',
			"SELECT count(*) FILTER (WHERE state = 'synced') || '/' || count(*) FILTER (WHERE state NOT IN ('synced', 'deleted'))"
			  . " FROM delta.resource WHERE kind = '$kind'",
			"$synced/0"),
		$what);
	return;
}

my $everything = q{ROW('-infinity', NULL, NULL, NULL)::delta.inform_options};

# Periodic runs: registered first, counted at the end.
register('tick', q{inform_interval => '2 seconds'});

#
# The first run, queued by the leader after registration.
#
db(q{INSERT INTO src (kind, id, body) SELECT 'src', 'a' || i, jsonb_build_object('v', i) FROM generate_series(1, 3) AS i});
register('src');
wait_settled('src', 3, 'the three objects the inform function returned are synced');
is(db("SELECT string_agg(object_id || ':' || state, ',' ORDER BY object_id) FROM delta.resource WHERE kind = 'src'"),
	'a1:synced,a2:synced,a3:synced', 'resources a1..a3 exist and are synced');
is(cursor_of('src'), db("SELECT max(created)::text FROM src WHERE kind = 'src'"),
	'the cursor is the newest external_created_at');
is(db("SELECT who || ' ' || coalesce(\"after\"::text, 'NULL') || ' ' || returned FROM inform_log WHERE kind = 'src'"),
	'app NULL 3', 'the first run had no "after", ran as app and returned 3 items');

#
# A new source row and schedule_inform: only it is returned.
#
my $cursor = cursor_of('src');
db(q{INSERT INTO src (kind, id, body) VALUES ('src', 'a4', '{"v": 4}')});
db(q{SELECT delta.schedule_inform('src')});
wait_for_runs('src', 2, 'the scheduled run ran');
ok(wait_for_state($node, 'postgres', 'src', 'a4', 'synced'), 'the new object a4 is synced');
is(db("SELECT \"after\" = '$cursor' AND returned = 1 FROM inform_log WHERE kind = 'src' ORDER BY ended DESC LIMIT 1"),
	't', 'the run got the cursor as "after" and returned only the new object');
is(cursor_of('src'), db("SELECT created::text FROM src WHERE id = 'a4'"),
	'the cursor moved to the new object');
is(db("SELECT count(*) FROM runs WHERE kind = 'src'"), '4', 'each object was worked once');

#
# Everything again, nothing changed: all skipped.
#
$cursor = cursor_of('src');
my $snapshot = "SELECT string_agg(object_id || '/' || state || '/' || synced_at || '/' || generation, ',' ORDER BY object_id)"
  . " FROM delta.resource WHERE kind = 'src'";
my $synced_at = db($snapshot);
db("SELECT delta.schedule_inform('src', false, $everything)");
wait_for_runs('src', 3, 'a run with after => -infinity ran');
is(db("SELECT returned || ' ' || \"after\" FROM inform_log WHERE kind = 'src' ORDER BY ended DESC LIMIT 1"),
	'4 -infinity', 'it got the options given and returned all four objects');
is(db($snapshot), $synced_at,
	'unchanged synced resources are skipped: still synced, synced_at and generation unchanged');
is(db("SELECT count(*) FROM runs WHERE kind = 'src'"), '4', 'and not worked again');
is(cursor_of('src'), $cursor, 'the cursor stays at the newest object');

#
# A changed object is worked again, the others are not.
#
db(q{UPDATE src SET body = '{"v": 22}' WHERE id = 'a2'});
db("SELECT delta.schedule_inform('src', false, $everything)");
wait_for_runs('src', 4, 'a run after a2 changed ran');
wait_settled('src', 4, 'all four are synced again');
is(db("SELECT string_agg(object_id || ':' || n, ',' ORDER BY object_id) FROM (SELECT object_id, count(*) AS n FROM runs WHERE kind = 'src' GROUP BY 1) AS x"),
	'a1:1,a2:2,a3:1,a4:1', 'only the changed object a2 was worked again');
is(db("SELECT object::text FROM delta.resource WHERE object_id = 'a2'"), '{"v": 22}',
	'with its new body');

#
# Deleted resources are skipped, even with process_existing, which
# re-runs every other returned object.
#
db(q{INSERT INTO src (kind, id, body) VALUES ('src', 'a5', '{"delete": true}')});
db("SELECT delta.schedule_inform('src')");
ok(wait_for_state($node, 'postgres', 'src', 'a5', 'deleted'), 'a5 is deleted by its work function');
$cursor = cursor_of('src');
is($cursor, db("SELECT created::text FROM src WHERE id = 'a5'"), 'the cursor is at a5');
my $a5 = db("SELECT generation || ' ' || attempted_at FROM delta.resource WHERE object_id = 'a5'");
db("SELECT delta.schedule_inform('src', true, $everything)");
ok( poll_until(
		$node, 'postgres',
		"SELECT count(*) FROM (SELECT object_id FROM runs WHERE kind = 'src' AND object_id <> 'a5'"
		  . " GROUP BY 1 HAVING count(*) >= 2 + (object_id = 'a2')::int) AS x",
		'4'),
	'process_existing re-runs the unchanged synced objects a1..a4');
wait_settled('src', 4, 'they are synced again');
is(db("SELECT state || ' ' || generation || ' ' || attempted_at FROM delta.resource WHERE object_id = 'a5'"),
	"deleted $a5", 'the deleted resource a5 was skipped (not informed again, not run again)');
is(cursor_of('src'), $cursor, 'a process_existing run leaves the cursor alone');
is(db("SELECT returned FROM inform_log WHERE kind = 'src' ORDER BY ended DESC LIMIT 1"), '5',
	'(the run returned all five objects)');

#
# A compare function returning 0: a changed object counts as unchanged.
#
db(q{INSERT INTO src (kind, id, body) VALUES ('cmp', 'c1', '{"v": 1}')});
register('cmp', q{compare => 'same(jsonb, jsonb)'});
ok(wait_for_state($node, 'postgres', 'cmp', 'c1', 'synced'), 'c1 is synced');
wait_for_runs('cmp', 1, 'the first run of cmp ended');
$synced_at = db("SELECT synced_at || ' ' || generation FROM delta.resource WHERE object_id = 'c1'");
db(q{UPDATE src SET body = '{"v": 2}' WHERE id = 'c1'});
db("SELECT delta.schedule_inform('cmp', false, $everything)");
wait_for_runs('cmp', 2, 'the run after c1 changed ran');
is(db("SELECT state || ' ' || synced_at || ' ' || generation || ' ' || object::text FROM delta.resource WHERE object_id = 'c1'"),
	"synced $synced_at {\"v\": 1}", 'the compare function said "same": c1 is skipped');
is(db("SELECT count(*) FROM runs WHERE kind = 'cmp'"), '1', 'c1 was worked once');

#
# An inform function that raises: failed, retried, nothing scheduled.
#
db(q{INSERT INTO src (kind, id) VALUES ('broken', 'b1')});
register('broken', q{backoff_base => '100 ms', backoff_max => '300 ms'}, fail => 1);
ok( poll_until(
		$node, 'postgres',
		"SELECT attempt >= 3 FROM delta.inform_run WHERE kind = 'broken'"),
	'the failing run is retried (attempt grows)');
is(db("SELECT errors->-1->>'error' || ' / ' || (errors->-1->>'sqlstate') FROM delta.inform_run WHERE kind = 'broken'"),
	'inform of broken broke / P0001', 'the run records the error');
is(db("SELECT count(*) FROM delta.resource WHERE kind = 'broken'"), '0',
	'nothing the failed runs returned was scheduled');
is(cursor_of('broken'), 'NULL', 'the cursor did not move');
db(q{UPDATE mode SET fail = false WHERE kind = 'broken'});
ok(wait_for_state($node, 'postgres', 'broken', 'b1', 'synced'), 'once it works, b1 is synced');
wait_for_runs('broken', 1, 'and the inform run is done');
is(cursor_of('broken'), db("SELECT created::text FROM src WHERE id = 'b1'"), 'the cursor moved');

#
# An inform function returning a bad item: nothing of that run is scheduled.
#
db(q{INSERT INTO src (kind, id) VALUES ('baditem', 'd1')});
register('baditem', q{backoff_base => '1 hour'}, bad_item => 1);
ok( poll_until(
		$node, 'postgres',
		"SELECT state || ' ' || attempt FROM delta.inform_run WHERE kind = 'baditem'",
		'failed 1'),
	'a run returning a bad item fails');
like(db("SELECT errors->-1->>'error' FROM delta.inform_run WHERE kind = 'baditem'"),
	qr/"object" of object_id "bad" must be a JSON object/, 'with the reason');
is(db("SELECT count(*) FROM delta.resource WHERE kind = 'baditem'"), '0',
	'the good item of that run was not scheduled either');
is(cursor_of('baditem'), 'NULL', 'the cursor did not move');

#
# A run past inform_timeout is cancelled: failed with 57014.
#
db(q{INSERT INTO src (kind, id) VALUES ('slow', 's1')});
register('slow', q{inform_timeout => '300 ms', backoff_base => '1 hour'}, sleep => 5);
ok( poll_until(
		$node, 'postgres',
		"SELECT state || ' ' || (errors->-1->>'sqlstate') FROM delta.inform_run WHERE kind = 'slow'",
		'failed 57014'),
	'a run past inform_timeout fails with 57014 (query_canceled)');
is(db("SELECT count(*) FROM delta.resource WHERE kind = 'slow'"), '0', 'nothing was scheduled');
is(cursor_of('slow'), 'NULL', 'the cursor did not move');

# (their failed runs would otherwise be retried later)
db(q{SET ROLE app; SELECT delta.unregister_controller('slow'); SELECT delta.unregister_controller('baditem')});
is(db(q{SELECT count(*) FROM delta.inform_run WHERE kind IN ('slow', 'baditem')}), '0', 'their runs are gone');

#
# One run per kind at a time.
#
db(q{INSERT INTO src (kind, id) VALUES ('one', 'o1')});
register('one', undef, sleep => 2);
ok( poll_until(
		$node, 'postgres', "SELECT state FROM delta.inform_run WHERE kind = 'one'", 'running'),
	'the first run of kind "one" is running');
my $max_informing = 0;
foreach my $i (1 .. 6)
{
	db("SELECT delta.schedule_inform('one', $i % 2 = 0)");
	my $n = db("SELECT count(*) FROM delta.workers WHERE state = 'informing' AND kind = 'one'");
	$max_informing = $n if $n > $max_informing;
	usleep(200_000);
}
wait_for_runs('one', 2, 'the runs asked for during the first one ended');
is(db("SELECT count(*) FROM inform_log WHERE kind = 'one'"), '2',
	'the six requests made during the run were served by one more run');
is( db(q{SELECT count(*) FROM inform_log AS a JOIN inform_log AS b
        ON a.kind = 'one' AND b.kind = 'one' AND a.started < b.started AND b.started < a.ended}),
	'0', 'the runs did not overlap')
  or diag(db("SELECT started, ended FROM inform_log WHERE kind = 'one' ORDER BY started"));
ok($max_informing <= 1, "at most one worker was informing kind \"one\" at a time (saw $max_informing)");

#
# Periodic runs and the owner.
#
ok( poll_until(
		$node, 'postgres', "SELECT count(*) >= 3 FROM inform_log WHERE kind = 'tick'"),
	'with inform_interval 2 seconds the inform function runs by itself, again and again');
is(db("SELECT string_agg(DISTINCT who, ',') FROM inform_log"), 'app',
	'every inform function ran as the controllers\' owner app');

$node->stop;
done_testing();
