
# Copyright: the delta authors.
#
# The leader's expirer and cleaner on a running server:
#   - in a namespace with resource_expiry, a synced resource becomes expired
#     and is worked again, over and over; it is never cleaned, even with a
#     synced_retention shorter than the expiry;
#   - without expiry, synced, degraded and deleted resources are deleted
#     once older than their namespace's retention for that state, each
#     retention on its own; a NULL retention keeps them;
#   - 2500 old synced resources (more than one batch of 1000) are all
#     cleaned;
#   - create_namespace takes its default retentions from the GUCs.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('cleaner',
	conf => { 'delta.maintenance_interval' => "'500ms'" });
create_extension($node, 'postgres');

$node->safe_psql('postgres', q{
CREATE TABLE runs (object_id text, attempt int, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO runs (object_id, attempt) VALUES (r.object_id, r.attempt);
    IF r.object ? 'fail' THEN
        RAISE EXCEPTION 'asked to fail';
    END IF;
    IF r.object ? 'delete' THEN
        PERFORM delta.resource_delete('asked to');
    END IF;
END
$$;
SELECT delta.register_controller('thing', 'work(delta.resource)', max_attempts => 1);
SELECT delta.create_namespace('exp', resource_expiry => '2 seconds', synced_retention => '1 second');
SELECT delta.create_namespace('clean', synced_retention => '1 second',
    degraded_retention => '1 second', deleted_retention => '1 second');
SELECT delta.create_namespace('half', synced_retention => '1 hour',
    degraded_retention => '1 second', deleted_retention => '1 hour');
SELECT delta.create_namespace('keep', synced_retention => NULL,
    degraded_retention => NULL, deleted_retention => NULL);
SELECT delta.create_namespace('bulk', synced_retention => '1 hour');
});

is( $node->safe_psql('postgres', q{
SET delta.synced_retention = '5min';
SET delta.degraded_retention = '2h';
SELECT synced_retention = '5 minutes' AND degraded_retention = '2 hours'
       AND deleted_retention = '24 hours'
FROM delta.create_namespace('gucs', max_workers => 0);
}),
	't',
	'create_namespace takes its default retentions from the GUCs');

# In each of clean, half and keep: one synced, one degraded, one deleted.
$node->safe_psql('postgres', q{
SELECT delta.inform('thing', 'e1', '{}', namespace => 'exp');
SELECT delta.inform('thing', ns || '-' || what, jsonb_build_object(what, true), namespace => ns)
FROM unnest(ARRAY['clean', 'half', 'keep']) AS ns,
     unnest(ARRAY['sync', 'fail', 'delete']) AS what;
});

my $states = q{SELECT string_agg(object_id || ':' || state, ',' ORDER BY object_id)
               FROM delta.resource WHERE namespace = '%s'};
ok( poll_until(
		$node, 'postgres', sprintf($states, 'keep'),
		'keep-delete:deleted,keep-fail:degraded,keep-sync:synced'),
	'the resources end synced, degraded and deleted');

#
# Expiry.
#
ok( poll_until(
		$node, 'postgres', q{SELECT count(*) >= 3 FROM runs WHERE object_id = 'e1'}),
	'e1 in a namespace with resource_expiry is expired and worked again, repeatedly');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(attempt::text, ',' ORDER BY at) FROM (SELECT * FROM runs WHERE object_id = 'e1' ORDER BY at LIMIT 3) AS x}),
	'1,1,1', 'each round after expiry starts again at attempt 1');
is($node->safe_psql('postgres', q{SELECT count(*) FROM delta.resource WHERE object_id = 'e1'}),
	'1', 'it is not cleaned although older than the synced_retention: its namespace expires resources');

#
# Retention.
#
ok(poll_until($node, 'postgres', sprintf($states, 'clean'), ''),
	'synced, degraded and deleted resources past their retention (1 second) are deleted');
ok( poll_until(
		$node, 'postgres', sprintf($states, 'half'),
		'half-delete:deleted,half-sync:synced'),
	'each state has its own retention: only the degraded one (1 second) is deleted');
# a few more maintenance passes (500 ms each)
$node->safe_psql('postgres', 'SELECT pg_sleep(2)');
is( $node->safe_psql('postgres', sprintf($states, 'keep')),
	'keep-delete:deleted,keep-fail:degraded,keep-sync:synced',
	'a NULL retention keeps resources');
is( $node->safe_psql('postgres', sprintf($states, 'half')),
	'half-delete:deleted,half-sync:synced',
	'resources within their retention are kept');

#
# More than one batch.
#
$node->safe_psql('postgres', q{
BEGIN;
SELECT count(*) FROM delta.inform_many('thing',
    (SELECT jsonb_agg(jsonb_build_object('object_id', 'b' || i, 'object', '{}'::jsonb))
     FROM generate_series(1, 2500) AS i),
    namespace => 'bulk');
UPDATE delta.resource SET state = 'synced', attempt = 1, due_at = NULL,
    attempted_at = now() - interval '2 hours', synced_at = now() - interval '2 hours'
WHERE namespace = 'bulk';
COMMIT;
});
ok(poll_until($node, 'postgres', q{SELECT count(*) FROM delta.resource WHERE namespace = 'bulk'}, '0'),
	'2500 old synced resources are all cleaned');
is($node->safe_psql('postgres', q{SELECT count(*) FROM runs WHERE object_id LIKE 'b%'}),
	'0', '(none of them was worked)');

#
# Events: deleted once every subscription that wants them has read them,
# or once older than delta.event_retention.
#
$node->safe_psql('postgres', q{SELECT delta.register_controller('evk', 'work(delta.resource)')});
my $s1 = $node->safe_psql('postgres',
	q{SELECT delta.subscribe(ARRAY['object_synced'], ARRAY['evk'])});
my $s2 = $node->safe_psql('postgres',
	q{SELECT delta.subscribe(ARRAY['object_synced', 'object_failed'], ARRAY['evk'])});
$node->safe_psql('postgres',
	q{SELECT delta.inform('evk', 'v' || i, '{}') FROM generate_series(1, 3) AS i});
ok( poll_until(
		$node, 'postgres',
		q{SELECT count(*) FROM delta.resource WHERE kind = 'evk' AND state = 'synced'}, '3'),
	'three resources of kind evk are synced');
my $events = q{SELECT count(*) FROM delta.event WHERE kind = 'evk'};
is($node->safe_psql('postgres', $events), '3', 'their three events are recorded');

# read them through the first subscription only
my $read = 0;
foreach (1 .. 100)
{
	$read += $node->safe_psql('postgres', "SELECT count(*) FROM delta.events($s1)");
	last if $read >= 3;
	$node->safe_psql('postgres', 'SELECT pg_sleep(0.1)');
}
is($read, 3, 'the first subscription reads them');
$node->safe_psql('postgres', 'SELECT pg_sleep(2)');
is($node->safe_psql('postgres', $events), '3',
	'they are kept while the other subscription has not read them');
is($node->safe_psql('postgres', "SELECT count(*) FROM delta.events($s2)"), '3',
	'the other subscription gets all three');
ok(poll_until($node, 'postgres', $events, '0'),
	'once read by every subscription that wants them, they are deleted');

$node->safe_psql('postgres', q{SELECT delta.inform('evk', 'v4', '{}')});
ok(wait_for_state($node, 'postgres', 'evk', 'v4', 'synced'), 'one more is synced');
is($node->safe_psql('postgres', $events), '1', 'its event is recorded');
$node->safe_psql('postgres', q{
ALTER SYSTEM SET delta.event_retention = '1s';
SELECT pg_reload_conf();
});
ok(poll_until($node, 'postgres', $events, '0'),
	'an unread event older than delta.event_retention is deleted');

$node->stop;
done_testing();
