
# Without shared_preload_libraries the SQL interface works and nothing runs
# the resources (README "Install"); loading delta then must never end the
# session (it used to: FATAL, cannot create PGC_POSTMASTER variables after
# startup).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $node = DeltaTest::new_node('plain', conf => { shared_preload_libraries => undef });
my ($out, $err) = ('', '');
my $ret = $node->psql('postgres', q{
	CREATE EXTENSION delta;
	CREATE FUNCTION w(r delta.resource) RETURNS void LANGUAGE sql AS 'SELECT';
	SELECT delta.register_controller('k', 'w(delta.resource)');
	SELECT state FROM delta.inform('k', 'o1', '{}');
	SELECT 'still connected';
}, stdout => \$out, stderr => \$err);
is($ret, 0, 'CREATE EXTENSION and the SQL functions work in one session') or diag($err);
like($out, qr/scheduled\nstill connected/, 'the inform is recorded and the session goes on');
unlike($err, qr/FATAL/, 'no FATAL');
is($node->safe_psql('postgres', 'SELECT count(*) FROM delta.workers'), '0', 'no delta process runs');
is($node->safe_psql('postgres', q{SELECT state FROM delta.resource WHERE object_id = 'o1'}), 'scheduled',
	'nothing claims the resource');

done_testing();
