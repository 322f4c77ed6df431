
# Copyright: the delta authors.
#
# delta never works on a standby: nothing of it runs there during recovery
# (no launcher, no workers), resources informed on the primary are synced
# by the primary's workers only, and the standby merely replays the result.
# When the standby is promoted, its launcher and workers start on their own
# and work the resources that were still scheduled.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $primary = DeltaTest::new_node('primary',
	init => { allows_streaming => 1 },
	conf => { log_min_messages => 'log' });
create_extension($primary, 'postgres');

# The work function records which server ran it and whether it was in
# recovery.
$primary->safe_psql('postgres', q{
CREATE TABLE done (object_id text, port int, in_recovery boolean);
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO done VALUES (r.object_id, current_setting('port')::int, pg_is_in_recovery());
END
$$;
SELECT delta.register_controller('thing', 'work(delta.resource)');
});
ok(poll_until($primary, 'postgres',
		"SELECT count(*) FROM delta.workers WHERE namespace = 'default'", '1'),
	'the primary runs its namespace worker');

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;

# Work informed on the primary is done there.
$primary->safe_psql('postgres', q{SELECT delta.inform('thing', 'p1', '{}')});
ok(wait_for_state($primary, 'postgres', 'thing', 'p1', 'synced'),
	'a resource informed on the primary is synced');
$primary->wait_for_catchup($standby, 'replay');

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
is($standby->safe_psql('postgres', q{SELECT state FROM delta.resource WHERE object_id = 'p1'}),
	'synced', 'the standby replayed the synced resource');
is( $standby->safe_psql('postgres',
		'SELECT string_agg(object_id || \' \' || port || \' \' || in_recovery, \',\') FROM done'),
	'p1 ' . $primary->port . ' false',
	'it was worked once, by the primary, out of recovery');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM delta.workers'),
	'0', 'no delta process runs on the standby');
is( $standby->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'delta%'}),
	'0', 'pg_stat_activity of the standby shows no delta process');
ok(!$standby->log_contains(qr/delta launcher started/),
	'the standby never started a launcher');

# Resources left scheduled by the primary: turn its workers off (the
# standby keeps delta.enabled on: its configuration comes from the backup).
$primary->append_conf('postgresql.conf', 'delta.enabled = off');
$primary->restart;
$primary->safe_psql('postgres',
	q{SELECT delta.inform('thing', 'left' || i, '{}') FROM generate_series(1, 3) AS i});
$primary->wait_for_catchup($standby, 'replay');
is( $standby->safe_psql('postgres',
		q{SELECT string_agg(state::text, ',') FROM delta.resource WHERE object_id LIKE 'left%'}),
	'scheduled,scheduled,scheduled',
	'three resources are still scheduled when the primary goes away');
$primary->stop;

my $log_offset = -s $standby->logfile;
$standby->promote;
ok( poll_until($standby, 'postgres', 'SELECT pg_is_in_recovery()', 'f'),
	'the standby is promoted');

ok(poll_until($standby, 'postgres',
		"SELECT count(*) FROM delta.workers WHERE namespace = 'default'", '1'),
	'after promotion a namespace worker runs on the new primary');
ok($standby->log_contains(qr/delta launcher started/, $log_offset),
	'the launcher started after the promotion');
foreach my $i (1 .. 3)
{
	ok(wait_for_state($standby, 'postgres', 'thing', "left$i", 'synced'),
		"scheduled resource left$i is synced on the new primary");
}
is( $standby->safe_psql('postgres',
		q{SELECT string_agg(object_id || ' ' || port || ' ' || in_recovery, ',' ORDER BY object_id) FROM done WHERE object_id LIKE 'left%'}),
	join(',', map { "left$_ " . $standby->port . ' false' } 1 .. 3),
	'each was worked once, by the promoted server');

# and it keeps working
$standby->safe_psql('postgres', q{SELECT delta.inform('thing', 'after', '{}')});
ok(wait_for_state($standby, 'postgres', 'thing', 'after', 'synced'),
	'a resource informed on the new primary is synced');

$standby->stop;
done_testing();
