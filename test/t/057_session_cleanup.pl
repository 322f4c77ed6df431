
# User code cannot leave anything behind in the worker's session (issue 7,
# item 8): after a run that takes session advisory locks, prepares
# a statement, opens a WITH HOLD cursor and releases every advisory lock of
# the session (the leader's too), the next run on the same worker finds none
# of it, and the worker still leads.  The runs see the controller's owner as
# session_user, not the superuser the worker connects as.  (LISTEN is
# refused in background processes by PostgreSQL itself: tested too.)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main');
my $db   = 'postgres';
create_extension($node, $db);

sub sql { return $node->safe_psql($db, @_); }

sql(q{
	CREATE ROLE app_owner LOGIN;
	GRANT CREATE ON SCHEMA public TO app_owner;
	GRANT USAGE ON SCHEMA delta TO app_owner;
	GRANT EXECUTE ON FUNCTION delta.register_controller TO app_owner;
	CREATE TABLE seen (run text, session_as name, superuser text, advisory bigint, listen text,
	                   prepared bigint, cursors bigint, search_path text);
	GRANT INSERT ON seen TO app_owner;
	SET ROLE app_owner;
	CREATE FUNCTION dirty_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM pg_advisory_lock(4711);
		PREPARE left_behind AS SELECT 1;
		EXECUTE 'DECLARE kept CURSOR WITH HOLD FOR SELECT 1';
		PERFORM pg_advisory_unlock_all();
		PERFORM pg_advisory_lock(4712);
	END $$;
	CREATE FUNCTION inspect_work(r delta.resource) RETURNS void LANGUAGE sql AS $$
		INSERT INTO public.seen SELECT r.object_id, session_user, current_setting('is_superuser'),
			(SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'
			 AND objid IN (4711, 4712)),
			NULL,
			(SELECT count(*) FROM pg_prepared_statements),
			(SELECT count(*) FROM pg_cursors),
			current_setting('search_path');
	$$;
	-- and changes the session's search_path: the next run must not see it
	CREATE FUNCTION dirty_path_work(r delta.resource) RETURNS void LANGUAGE sql
		AS $$ SELECT set_config('search_path', 'pg_temp', false) $$;
	SELECT delta.register_controller('dirty', 'dirty_work(delta.resource)', max_attempts => 1);
	SELECT delta.register_controller('dirty_path', 'dirty_path_work(delta.resource)', max_attempts => 1);
	SELECT delta.register_controller('inspect', 'inspect_work(delta.resource)', max_attempts => 1);
	CREATE FUNCTION listen_work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		LISTEN somewhere;
	END $$;
	SELECT delta.register_controller('listen', 'listen_work(delta.resource)', max_attempts => 1);
	RESET ROLE;
});

my $pid = sql(q{SELECT pid FROM delta.workers WHERE namespace = 'default' AND role = 'leader'});
ok($pid, 'one worker, the leader');

sql(q{ALTER DATABASE postgres SET search_path = public, pg_catalog});
sql(qq{SELECT pg_terminate_backend($pid)});
ok(poll_until($node, $db, qq{SELECT count(*) FROM delta.workers WHERE role = 'leader' AND pid <> $pid}, '1'),
	'a new worker, with the database search_path, leads');
$pid = sql(q{SELECT pid FROM delta.workers WHERE namespace = 'default' AND role = 'leader'});
sql(q{SELECT delta.inform('dirty', 'd1', '{}')});
ok(wait_for_state($node, $db, 'dirty', 'd1', 'synced'), 'the dirty run is synced');
sql(q{SELECT delta.inform('dirty_path', 'd2', '{}')});
ok(wait_for_state($node, $db, 'dirty_path', 'd2', 'synced'), 'the run changing search_path is synced');
sql(q{SELECT delta.inform('inspect', 'i1', '{}')});
ok(wait_for_state($node, $db, 'inspect', 'i1', 'synced'), 'the inspecting run is synced');

is(sql(q{SELECT concat_ws('|', session_as, superuser, advisory, prepared, cursors, search_path) FROM seen}),
	'app_owner|off|0|0|0|public, pg_catalog',
	'the next run sees no advisory lock, prepared statement, cursor or changed setting; '
	  . 'session_user is the owner; search_path is the database\'s');
is(sql(q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid IN (4711, 4712)}), '0',
	'no advisory lock of the run is held');
is(sql(qq{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1684368500
	AND objid = 0 AND objsubid = 2 AND granted AND pid = $pid}), '1',
	'the worker still holds the leader lock the run released');
is(sql(q{SELECT pid FROM delta.workers WHERE namespace = 'default' AND role = 'leader'}), $pid,
	'and still leads, without having exited');

sql(q{SELECT delta.inform('listen', 'l1', '{}')});
ok(wait_for_state($node, $db, 'listen', 'l1', 'degraded'), 'a run that LISTENs fails');
is(sql(q{SELECT errors -> -1 ->> 'sqlstate' FROM delta.resource WHERE object_id = 'l1'}), '0A000',
	'as PostgreSQL refuses LISTEN in a background process');

$node->stop;
done_testing();
