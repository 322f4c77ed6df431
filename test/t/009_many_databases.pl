
# More databases than the launcher's shared table holds (64): databases
# without delta give their entry back once probed, so the ones that have
# delta get workers whatever their number among the others (issue 7 item 9).
# Seventy databases without delta are created first, then two with it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('main');

$node->safe_psql('postgres', join('', map { "CREATE DATABASE plain$_;\n" } 1 .. 70));
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'plain%'}),
	'70', 'seventy databases without delta');

for my $db (qw(late1 late2))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	create_extension($node, $db);
	$node->safe_psql($db, q{
		CREATE TABLE done (object_id text);
		CREATE FUNCTION work(r delta.resource) RETURNS void LANGUAGE sql
			AS $$ INSERT INTO public.done VALUES (r.object_id) $$;
		SELECT delta.register_controller('thing', 'work(delta.resource)');
		SELECT delta.inform('thing', 'o' || i, '{}') FROM generate_series(1, 5) AS i;
	});
}
for my $db (qw(late1 late2))
{
	ok(poll_until($node, $db, q{SELECT count(*) FROM delta.resource WHERE state = 'synced'}, '5'),
		"the resources of $db, created after seventy others, are synced");
}
ok(!$node->log_contains(qr/databases have delta, database \d+ is not served/),
	'no database with delta went unserved');

$node->stop;
done_testing();
