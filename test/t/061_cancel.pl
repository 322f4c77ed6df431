# Copyright: the delta authors.
#
# delta.cancel of a pending resource (cancel.c): the run its worker holds is
# cut short when the cancel commits, or never starts if it was claimed but
# not started yet; the resource ends failed, not due, with the cancel's
# errors entry and a failed run in the history, and nothing retries it.  The
# worker goes on serving its namespace.  A cancel whose transaction is still
# open when the run ends on its own does nothing to that run's outcome, nor
# to the next run.  PREPARE TRANSACTION of a cancel is refused.
#
# One worker serves namespace solo, so the runs of a batch come one after
# the other and the test knows which worker holds what.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('cancel', conf => { max_prepared_transactions => 2 });
my $db = 'postgres';
create_extension($node, $db);

$node->safe_psql($db, q{
CREATE TABLE done (object_id text, attempt int);
CREATE SEQUENCE slow_runs;
-- slow*: a run that would take minutes; gate: waits for advisory lock 88;
-- the others are quick
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF r.object_id LIKE 'slow%' THEN
        PERFORM nextval('slow_runs');
        FOR i IN 1 .. 10 LOOP
            PERFORM pg_sleep(30);
        END LOOP;
    ELSIF r.object_id = 'gate' THEN
        PERFORM pg_advisory_xact_lock(88);
    END IF;
    INSERT INTO done VALUES (r.object_id, r.attempt);
END
$$;
SELECT delta.register_controller('sleepy', 'work(delta.resource)', work_timeout => '10 min');
SELECT delta.create_namespace('solo', max_workers => 1);
});

sub sql { return $node->safe_psql($db, $_[0]); }

sub id_of
{
	return sql("SELECT id FROM delta.resource WHERE kind = 'sleepy' AND object_id = '$_[0]'");
}

# the errors entry, run history and state a cancelled resource ends with
sub check_cancelled
{
	my ($object_id, $attempt, $what) = @_;
	ok(wait_for_state($node, $db, 'sleepy', $object_id, 'failed'), "$what: $object_id ends failed");
	is( sql(qq{SELECT due_at IS NULL, attempt, holder_pid IS NULL,
	               errors -> -1 ->> 'error', errors -> -1 ->> 'sqlstate', errors -> -1 ->> 'attempt'
	           FROM delta.resource WHERE kind = 'sleepy' AND object_id = '$object_id'}),
		"t|$attempt|t|cancelled by delta.cancel|57014|$attempt",
		"$what: $object_id is not due, its attempt kept, the cancel in errors");
	is( sql(qq{SELECT string_agg(outcome || ':' || attempt || ':' || sqlstate || ':' || error, ',')
	           FROM delta.run WHERE kind = 'sleepy' AND object_id = '$object_id'}),
		"failed:$attempt:57014:cancelled by delta.cancel",
		"$what: the history has the run, failed");
	is(sql("SELECT count(*) FROM done WHERE object_id = '$object_id'"), '0',
		"$what: ${object_id}'s work never completed");
}

# warm-up: quick runs make the worker claim several resources at once
sql(q{SELECT count(*) FROM delta.inform_many('sleepy', (SELECT jsonb_agg(jsonb_build_object('object_id', 'warm' || i, 'object', '{}'::jsonb)) FROM generate_series(1, 20) AS i), namespace => 'solo')});
ok(poll_until($node, $db, "SELECT count(*) FROM delta.resource WHERE kind = 'sleepy' AND state = 'synced'", '20'),
	'the warm-up runs are synced');
my $worker = sql("SELECT pid FROM delta.workers WHERE namespace = 'solo'");

# --- a batch of slow1 and next1: next1 is cancelled while slow1 runs ---
sql(q{BEGIN;
	SELECT delta.inform('sleepy', 'slow1', '{}', namespace => 'solo');
	SELECT delta.inform('sleepy', 'next1', '{}', namespace => 'solo');
	COMMIT;});
my $slow1 = id_of('slow1');
ok(poll_until($node, $db, "SELECT count(*) FROM delta.workers WHERE state = 'running' AND resource_id = $slow1", '1'),
	'the worker runs slow1');
is(sql("SELECT string_agg(object_id || ':' || state || ':' || (holder_pid = $worker), ',' ORDER BY id) "
	  . "FROM delta.resource WHERE object_id IN ('slow1', 'next1')"),
	'slow1:pending:true,next1:pending:true',
	'slow1 and next1 were claimed together');

is(sql(q{SELECT state FROM delta.cancel('sleepy', 'next1')}), 'pending',
	'cancelling next1 returns it still pending');
is(sql("SELECT count(*) FROM delta.workers WHERE state = 'running' AND resource_id = $slow1"), '1',
	'the cancel of next1 leaves slow1 running');

# a cancel cannot be prepared: it would be lost with the transaction's memory
my ($ret, $out, $err) = $node->psql($db, q{BEGIN;
	SELECT delta.cancel('sleepy', 'slow1');
	PREPARE TRANSACTION 'cancel_slow1';});
like($err, qr/cannot PREPARE a transaction that cancelled a pending run/, 'PREPARE TRANSACTION of a cancel is refused');
is(sql("SELECT count(*) FROM pg_prepared_xacts"), '0', 'nothing was prepared');
is(sql("SELECT state FROM delta.resource WHERE id = $slow1"), 'pending', 'slow1 still runs');

is(sql(q{SELECT state FROM delta.cancel('sleepy', 'slow1')}), 'pending', 'cancelling slow1 returns it still pending');
check_cancelled('slow1', 1, 'a run in progress');
check_cancelled('next1', 1, 'a claimed run not started yet');
is(sql("SELECT last_value FROM slow_runs"), '1', 'slow1 ran once');

# the worker goes on, and nothing retries the cancelled ones
sql(q{SELECT delta.inform('sleepy', 'after1', '{}', namespace => 'solo')});
ok(wait_for_state($node, $db, 'sleepy', 'after1', 'synced'), 'the worker serves its namespace after the cancels');
is(sql("SELECT pid FROM delta.workers WHERE namespace = 'solo'"), $worker, 'the same worker');
sleep 3;    # a few maintenance and poll intervals
is(sql("SELECT string_agg(object_id || ':' || state || ':' || attempt, ',' ORDER BY object_id) "
	  . "FROM delta.resource WHERE object_id IN ('slow1', 'next1')"),
	'next1:failed:1,slow1:failed:1', 'the cancelled resources stay failed: never retried');
is(sql("SELECT last_value FROM slow_runs"), '1', 'slow1 did not run again');

# retry starts a cancelled resource over; a cancel then cuts it again
sql(q{SELECT delta.retry('sleepy', 'slow1')});
ok(poll_until($node, $db, "SELECT count(*) FROM delta.workers WHERE state = 'running' AND resource_id = $slow1", '1'),
	'slow1 runs again once retried');
sql(q{SELECT delta.cancel('sleepy', 'slow1')});
ok(poll_until($node, $db, "SELECT state || ':' || attempt || ':' || (due_at IS NULL) FROM delta.resource WHERE id = $slow1",
	'failed:1:true'), 'the retried run is cancelled too');

# --- a run that ends on its own before the cancel commits keeps its outcome ---
my $holder = $node->background_psql($db);
$holder->query_safe('SELECT pg_advisory_lock(88)');
sql(q{SELECT delta.inform('sleepy', 'gate', '{"v": 1}', namespace => 'solo')});
ok(poll_until($node, $db,
	"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 88 AND NOT granted AND pid = $worker", '1'),
	"gate's run waits for the advisory lock");
my $app = $node->background_psql($db);
$app->query_safe('BEGIN');
is($app->query_safe(q{SELECT state FROM delta.cancel('sleepy', 'gate')}), 'pending', 'gate is cancelled, not committed');
$holder->query_safe('SELECT pg_advisory_unlock(88)');
# the run has returned; recording its outcome waits for the cancel's row lock
ok(poll_until($node, $db,
	"SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted AND pid = $worker", '1'),
	"gate's outcome waits for the cancel's transaction");
$app->query_safe('COMMIT');
ok(wait_for_state($node, $db, 'sleepy', 'gate', 'synced'), 'gate keeps its own outcome: synced');
is(sql(q{SELECT errors FROM delta.resource WHERE object_id = 'gate'}), '[]', 'no cancel entry for gate');

# its next run (the same worker, the same resource) is not cancelled
sql(q{SELECT delta.inform('sleepy', 'gate', '{"v": 2}', namespace => 'solo')});
ok(poll_until($node, $db, "SELECT count(*) FROM done WHERE object_id = 'gate'", '2'), "gate's next run completes");
ok(wait_for_state($node, $db, 'sleepy', 'gate', 'synced'), 'gate is synced again');
is(sql(q{SELECT errors FROM delta.resource WHERE object_id = 'gate'}), '[]', 'still no cancel entry for gate');
is(sql("SELECT pid FROM delta.workers WHERE namespace = 'solo'"), $worker, 'the same worker served it');

$holder->quit;
$app->quit;
$node->stop;
done_testing();
