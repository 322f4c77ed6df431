
# Copyright: the delta authors.
#
# The controllers of examples/ (DESIGN.md section 8), loaded with psql -f
# as examples/README.md says, do what their comments promise:
#   - plpgsql/crm_sync.sql: informs from a trigger in the user's
#     transaction (a rolled back insert informs nothing); syncs good users
#     to crm.contacts with an idempotent upsert (an update pushes the same
#     contact again); an invalid email fails, is retried and ends degraded
#     with every attempt's error recorded, and syncs once fixed; a
#     soft-deleted user's contact is removed; a purged user's resource ends
#     deleted; the inform function picks up users that bypassed the trigger
#     on schedule_inform and moves the cursor;
#   - plpython/http_mirror.sql (skipped without plpython3u): pulls products
#     and pushes them locally; a Python exception is recorded with its text
#     and traceback; the local rate limit snoozes without counting the
#     attempt; against a mock HTTP server, GET (with the cursor as "after")
#     and POST work, 429 + Retry-After snoozes, HTTP 500 and a refused
#     connection are recorded failures (with the Python exception's text);
#   - c/: the C work function stores the SHA-256 that SQL's sha256() gives,
#     and its ereport(ERROR) on bad input is recorded with SQLSTATE, detail
#     and hint until the resource is degraded.

use strict;
use warnings;

use FindBin;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(strftime);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib '.';
use DeltaTest;

# beside the test, wherever prove runs it from (scripts/test: test/; make
# installcheck: the top directory)
my $examples = "$FindBin::RealBin/../../examples";
my $db       = 'postgres';
my $mock;    # pid of the mock HTTP server (a child process), while it runs

# never leave the mock behind, even when the test dies
END { if ($mock) { kill 'KILL', $mock; waitpid($mock, 0); } }

# the PL/Python example talks HTTP to 127.0.0.1: never through a proxy
$ENV{no_proxy} = $ENV{NO_PROXY} = '127.0.0.1,localhost';

my $node = DeltaTest::new_node('examples',
	conf => {
		'delta.inform_jitter'        => 0,
		'delta.maintenance_interval' => "'500ms'",
	});
create_extension($node, $db);

sub sql { return $node->safe_psql($db, $_[0]); }

# Loads an example the documented way.
sub load_example
{
	my ($file) = @_;
	$node->command_ok(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr($db), '-f', "$examples/$file"
		],
		"psql -f examples/$file");
	return;
}

# Waits for the first inform run of kind (queued by the leader right after
# registration) to be over, so that later runs are the test's own.
sub wait_first_inform_run
{
	my ($kind) = @_;
	ok( poll_until(
			$node, $db,
			"SELECT last_inform_run_at IS NOT NULL AND NOT EXISTS "
			  . "(SELECT FROM delta.inform_run AS ir WHERE ir.kind = c.kind) "
			  . "FROM delta.controller AS c WHERE c.kind = '$kind'"),
		"$kind: the first inform run after registration is done");
	return;
}

# The last recorded error of a resource, as "error|sqlstate|...fields".
sub last_error
{
	my ($kind, $object_id, @fields) = @_;
	my $cols = join(" || '|' || ",
		map { "coalesce(errors -> -1 ->> '$_', '')" } ('error', @fields));
	return "SELECT $cols FROM delta.resource WHERE kind = '$kind' AND object_id = '$object_id'";
}

############################################################################
# PL/pgSQL: examples/plpgsql/crm_sync.sql
############################################################################

load_example('plpgsql/crm_sync.sql');
is(sql("SELECT max_attempts || '|' || work_timeout || '|' || inform::text "
		  . "FROM delta.controller WHERE kind = 'crm_user'"),
	'5|00:00:30|app.crm_user_inform(delta.inform_options)',
	'crm_user: registered with its inform function, max_attempts and work_timeout');

# Register again with a small back-off so an invalid email is degraded
# within seconds (resources take max_attempts when informed).
sql(q{SELECT delta.register_controller('crm_user', 'app.crm_user_work(delta.resource)',
	inform => 'app.crm_user_inform(delta.inform_options)', max_attempts => 3,
	work_timeout => '30 seconds', backoff_base => '100 milliseconds',
	backoff_max => '1 second', replace => true)});
wait_first_inform_run('crm_user');

sql(q{BEGIN;
	INSERT INTO app.users (email, name) VALUES ('ghost@example.com', 'Ghost');
	ROLLBACK;
	INSERT INTO app.users (email, name) VALUES
		('ann@example.com', 'Ann'), ('bob@example.com', 'Bob'), ('eve@invalid', 'Eve');});
my %uid = map { split /\|/ } split /\n/,
  sql("SELECT name || '|' || id FROM app.users");

ok(wait_for_state($node, $db, 'crm_user', $uid{Ann}, 'synced'), 'crm_user: Ann synced');
ok(wait_for_state($node, $db, 'crm_user', $uid{Bob}, 'synced'), 'crm_user: Bob synced');
is(sql("SELECT external_id || '|' || email || '|' || full_name || '|' || pushes "
		  . "FROM crm.contacts ORDER BY external_id::bigint"),
	"$uid{Ann}|ann\@example.com|Ann|1\n$uid{Bob}|bob\@example.com|Bob|1",
	'crm_user: the synced users are in the CRM, pushed once each');
is(sql("SELECT string_agg(object_id, ',' ORDER BY id) FROM delta.resource WHERE kind = 'crm_user'"),
	"$uid{Ann},$uid{Bob},$uid{Eve}",
	'crm_user: the trigger informed in the users\' transaction: nothing for the rolled back insert');

ok(wait_for_state($node, $db, 'crm_user', $uid{Eve}, 'degraded'),
	'crm_user: the invalid email is degraded after max_attempts');
is( sql("SELECT attempt || '|' || jsonb_array_length(errors) || '|' || "
		  . "(SELECT string_agg(e ->> 'attempt', ',') FROM jsonb_array_elements(errors) AS e) "
		  . "FROM delta.resource WHERE kind = 'crm_user' AND object_id = '$uid{Eve}'"),
	'3|3|1,2,3',
	'crm_user: each of the 3 attempts recorded its error');
is(sql(last_error('crm_user', $uid{Eve}, 'sqlstate', 'hint')),
	qq{CRM rejected user $uid{Eve}: invalid email address "eve\@invalid"|22023|}
	  . 'Fix the address in app.users: the UPDATE informs delta again.',
	'crm_user: the error has the message, SQLSTATE and hint of the RAISE');
is(sql("SELECT count(*) FROM crm.contacts WHERE external_id = '$uid{Eve}'"),
	'0', 'crm_user: the degraded user never reached the CRM');

# An update informs again: the same contact is pushed with the new data.
sql("UPDATE app.users SET email = 'ann\@new.example.com' WHERE id = $uid{Ann}");
ok( poll_until(
		$node, $db,
		"SELECT email || '|' || pushes FROM crm.contacts WHERE external_id = '$uid{Ann}'",
		'ann@new.example.com|2'),
	'crm_user: an update pushes the same contact again (upsert)');

# Fixing the address schedules the degraded user again, from attempt 0.
sql("UPDATE app.users SET email = 'eve\@example.com' WHERE id = $uid{Eve}");
ok(wait_for_state($node, $db, 'crm_user', $uid{Eve}, 'synced'),
	'crm_user: the fixed user is synced');
is(sql("SELECT email FROM crm.contacts WHERE external_id = '$uid{Eve}'"),
	'eve@example.com', 'crm_user: the fixed user is in the CRM');
is(sql("SELECT attempt FROM delta.resource WHERE kind = 'crm_user' AND object_id = '$uid{Eve}'"),
	'1', 'crm_user: informing a degraded resource started its attempts again');

# Soft delete: the contact goes, the resource is synced.  Purge: deleted.
sql("UPDATE app.users SET deleted_at = now() WHERE id = $uid{Bob}");
ok( poll_until(
		$node, $db,
		"SELECT (SELECT count(*) FROM crm.contacts WHERE external_id = '$uid{Bob}') || '|' || "
		  . "state || '|' || (object ->> 'deleted_at' IS NOT NULL) "
		  . "FROM delta.resource WHERE kind = 'crm_user' AND object_id = '$uid{Bob}'",
		'0|synced|true'),
	'crm_user: a soft-deleted user\'s contact is removed by a synced run');
sql("DELETE FROM app.users WHERE id = $uid{Bob}");
ok(wait_for_state($node, $db, 'crm_user', $uid{Bob}, 'deleted'),
	'crm_user: a purged user\'s resource is deleted (resource_delete)');
is(sql(last_error('crm_user', $uid{Bob}, 'sqlstate')),
	"resource deleted by its work function: user $uid{Bob} no longer exists|",
	'crm_user: the reason given to resource_delete is recorded, not as an error');

# A bulk load with triggers off informs nothing; the inform function finds
# the new users on schedule_inform, and the cursor moves to the newest.
sql(q{BEGIN;
	SET LOCAL session_replication_role = replica;
	INSERT INTO app.users (email, name) VALUES ('dan@example.com', 'Dan'), ('fay@example.com', 'Fay');
	COMMIT;});
%uid = map { split /\|/ } split /\n/, sql("SELECT name || '|' || id FROM app.users");
is(sql("SELECT count(*) FROM delta.resource WHERE kind = 'crm_user' "
		  . "AND object_id IN ('$uid{Dan}', '$uid{Fay}')"),
	'0', 'crm_user: users loaded with triggers off are not informed');
sql("SELECT delta.schedule_inform('crm_user')");
ok(wait_for_state($node, $db, 'crm_user', $uid{Dan}, 'synced'),
	'crm_user: schedule_inform picked up Dan');
ok(wait_for_state($node, $db, 'crm_user', $uid{Fay}, 'synced'),
	'crm_user: schedule_inform picked up Fay');
is( sql("SELECT string_agg(external_id, ',' ORDER BY external_id::bigint) FROM crm.contacts"),
	"$uid{Ann},$uid{Eve},$uid{Dan},$uid{Fay}",
	'crm_user: the CRM holds exactly the live users');
ok( poll_until(
		$node, $db,
		"SELECT c.last_inform_time = (SELECT max(created_at) FROM app.users) "
		  . "FROM delta.controller AS c WHERE c.kind = 'crm_user'"),
	'crm_user: the cursor moved to the newest user\'s created_at');

# Purged while in the CRM: one run removes the contact and ends the resource
# (resource_delete keeps the run's writes).
sql("DELETE FROM app.users WHERE id = $uid{Eve}");
ok( poll_until(
		$node, $db,
		"SELECT (SELECT count(*) FROM crm.contacts WHERE external_id = '$uid{Eve}') || '|' || state "
		  . "FROM delta.resource WHERE kind = 'crm_user' AND object_id = '$uid{Eve}'",
		'0|deleted'),
	'crm_user: a purged user\'s contact is removed by the run that deletes the resource');

############################################################################
# PL/Python: examples/plpython/http_mirror.sql
############################################################################

SKIP:
{
	skip 'plpython3u is not installed (Debian: apt-get install '
	  . 'postgresql-plpython3-15, which scripts/install-deps does): '
	  . 'PL/Python example not tested', 1
	  unless sql("SELECT count(*) FROM pg_available_extensions WHERE name = 'plpython3u'");

	load_example('plpython/http_mirror.sql');
	wait_first_inform_run('mirror_product');

	# local mode: mirror.products → mirror.outbox
	sql(q{INSERT INTO mirror.products (id, name, price) VALUES ('p1', 'Pen', 1.50), ('p2', 'Box', NULL);
		SELECT delta.schedule_inform('mirror_product');});
	ok(wait_for_state($node, $db, 'mirror_product', 'p1', 'synced'),
		'mirror_product: p1 pulled by the Python inform function and synced');
	is(sql("SELECT string_agg(object_id || ' ' || body::text, ',') FROM mirror.outbox"),
		'p1 {"id": "p1", "name": "Pen", "price": "1.50"}',
		'mirror_product: the Python work function wrote p1 to the outbox');
	ok( poll_until(
			$node, $db,
			last_error('mirror_product', 'p2', 'sqlstate'),
			'ValueError: product p2 has no price|38000'),
		'mirror_product: the Python exception text is recorded');
	like(sql(last_error('mirror_product', 'p2', 'context')),
		qr/Traceback.*raise ValueError/s,
		'mirror_product: with its Python traceback');

	# rate limit: snoozed, not failed, attempt not counted
	sql(q{UPDATE mirror.settings SET value = '1' WHERE name = 'local_rate_limit';
		INSERT INTO mirror.products (id, name, price) VALUES ('p3', 'Cup', 4);
		SELECT delta.schedule_inform('mirror_product');});
	ok( poll_until(
			$node, $db,
			"SELECT state || '|' || attempt || '|' || errors::text || '|' || "
			  . "(due_at > now() + interval '1 second') "
			  . "FROM delta.resource WHERE kind = 'mirror_product' AND object_id = 'p3'",
			'scheduled|0|[]|true'),
		'mirror_product: over the rate limit, p3 is snoozed (scheduled later, attempt 0, no error)');
	sql("UPDATE mirror.settings SET value = NULL WHERE name = 'local_rate_limit'");
	ok(wait_for_state($node, $db, 'mirror_product', 'p3', 'synced'),
		'mirror_product: p3 synced after its snooze');
	is(sql("SELECT attempt || '|' || errors::text FROM delta.resource "
			  . "WHERE kind = 'mirror_product' AND object_id = 'p3'"),
		'1|[]', 'mirror_product: the snoozed run did not count as an attempt');

	# HTTP mode, against a mock server on 127.0.0.1
	my $log = "$PostgreSQL::Test::Utils::tmp_check/http_mock.log";
	my $listen = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
		ReuseAddr => 1, Proto => 'tcp') or die "cannot listen: $!";
	my $port = $listen->sockport;
	$mock = fork() // die "fork: $!";
	if ($mock == 0)
	{
		# the child must not run the test's END blocks (they would stop
		# the node): it only ever leaves through _exit or a signal
		alarm(300);
		eval { serve_mock($listen, $log); };
		POSIX::_exit(0);
	}
	close $listen;

	sql(qq{UPDATE mirror.settings SET value = 'http://127.0.0.1:$port/products' WHERE name = 'list_url';
		UPDATE mirror.settings SET value = 'http://127.0.0.1:$port/push' WHERE name = 'push_url';
		UPDATE mirror.settings SET value = '5' WHERE name = 'http_timeout';
		SELECT delta.schedule_inform('mirror_product');});
	ok(wait_for_state($node, $db, 'mirror_product', 'h1', 'synced'),
		'mirror_product: h1 listed by GET and pushed by POST');
	ok(wait_for_state($node, $db, 'mirror_product', 'h2', 'synced'),
		'mirror_product: h2 synced after a 429');
	ok( poll_until(
			$node, $db,
			last_error('mirror_product', 'h3'),
			"RuntimeError: POST http://127.0.0.1:$port/push for product h3 answered HTTP 500"),
		'mirror_product: an HTTP 500 is a recorded failure');

	my @requests = map { decode_json($_) } split /\n/, slurp_file($log);
	my @gets = grep { $_->{method} eq 'GET' } @requests;
	is(scalar(@gets), 1, 'mock: one GET');
	like($gets[0]{path}, qr{^/products\?after=\d{4}-\d\d-\d\d}, 'mock: the GET passed the cursor as "after"');
	my @h1 = grep { $_->{method} eq 'POST' && $_->{body} =~ /"h1"/ } @requests;
	is_deeply(
		[ map { [ $_->{path}, $_->{body}, $_->{key} ] } @h1 ],
		[ [ '/push', '{"id": "h1", "name": "Hat", "price": "9.90"}', 'mirror_product/h1/0' ] ],
		'mock: h1 POSTed once, as JSON, with its idempotency key');
	my @h2 = grep { $_->{method} eq 'POST' && $_->{body} =~ /"h2"/ } @requests;
	is(join(',', map { $_->{status} } @h2), '429,200', 'mock: h2 got 429, then 200 after Retry-After');
	is(sql("SELECT attempt || '|' || errors::text FROM delta.resource "
			  . "WHERE kind = 'mirror_product' AND object_id = 'h2'"),
		'1|[]', 'mirror_product: the 429 snoozed h2 without counting an attempt');

	kill 'KILL', $mock;
	waitpid($mock, 0);
	$mock = undef;

	# nothing listens any more: the connection error is the recorded failure
	sql(q{SELECT delta.inform('mirror_product', 'x1', '{"name": "X", "price": 1}')});
	ok( poll_until(
			$node, $db,
			"SELECT errors -> -1 ->> 'error' ~ '^urllib\\.error\\.URLError: <urlopen error .*Connection refused' "
			  . "FROM delta.resource WHERE kind = 'mirror_product' AND object_id = 'x1'"),
		'mirror_product: a refused connection is recorded as urllib.error.URLError');
}

############################################################################
# C: examples/c
############################################################################

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
ok(-e "$pkglibdir/delta_example.so", 'examples/c is installed')
  or diag("install it: make -C examples/c PG_CONFIG=... install (scripts/test does)");
load_example('c/example.sql');

sql(q{SELECT delta.inform('checksum', 'greeting', '{"data": "hello"}');
	SELECT delta.inform('checksum', 'accents', '{"data": "héllo ✓"}');
	SELECT delta.inform('checksum', 'broken', '{"data": 42}');});
ok(wait_for_state($node, $db, 'checksum', 'greeting', 'synced'), 'checksum: greeting synced');
ok(wait_for_state($node, $db, 'checksum', 'accents', 'synced'), 'checksum: accents synced');
is( sql("SELECT string_agg(object_id || '|' || (sha256 = sha256(convert_to(d, 'UTF8'))) || '|' || "
		  . "bytes || '|' || attempt || '|' || runs, ',' ORDER BY object_id) "
		  . "FROM example_c.checksums JOIN (VALUES ('greeting', 'hello'), ('accents', 'héllo ✓')) "
		  . "AS v(o, d) ON v.o = object_id"),
	'accents|true|10|1|1,greeting|true|5|1|1',
	'checksum: the C function stored the SHA-256 SQL computes, the byte count and the attempt');
ok(wait_for_state($node, $db, 'checksum', 'broken', 'degraded'),
	'checksum: bad input fails until degraded');
is( sql(last_error('checksum', 'broken', 'sqlstate', 'detail', 'hint')
		  . " AND attempt = 3 AND jsonb_array_length(errors) = 3"),
	'object "broken" has no string field "data"|22023|The object is {"data": 42}.|'
	  . 'Inform it again with an object like {"data": "some text"}.',
	'checksum: the ereport is recorded with its SQLSTATE, detail and hint, for each of 3 attempts');
is(sql("SELECT count(*) FROM example_c.checksums WHERE object_id = 'broken'"),
	'0', 'checksum: nothing stored for the bad input');

$node->stop;
done_testing();

# The mock HTTP API, in the child process: one request per connection.
#   GET  /products...  → three products (created now)
#   POST /push         → h2: 429 + Retry-After: 1 the first time; h3: 500;
#                        else 200
# Each request is logged to $log as a JSON line.
sub serve_mock
{
	my ($listen, $log) = @_;
	my %seen;
	open my $out, '>>', $log or die "$log: $!";
	$out->autoflush(1);
	while (my $c = $listen->accept)
	{
		local $/ = "\r\n";
		my $line = <$c>;
		next unless defined $line;
		my ($method, $path) = split / /, $line;
		my %h;
		while (my $hl = <$c>)
		{
			last if $hl eq "\r\n";
			$hl =~ s/\r\n$//;
			my ($k, $v) = split /:\s*/, $hl, 2;
			$h{ lc $k } = $v;
		}
		my $body = '';
		read($c, $body, $h{'content-length'}) if $h{'content-length'};
		my ($status, $extra, $reply) = (200, '', '{}');
		if ($method eq 'GET')
		{
			my $t = time();
			my $now = strftime('%Y-%m-%dT%H:%M:%S', gmtime($t))
			  . sprintf('.%06dZ', ($t - int($t)) * 1e6);
			$reply = encode_json([
				map { { id => $_->[0], name => $_->[1], price => $_->[2], created_at => $now } }
				  ([ 'h1', 'Hat', '9.90' ], [ 'h2', 'Mug', '5' ], [ 'h3', 'Tie', '12' ])
			]);
		}
		elsif ($body =~ /"id": "h2"/ && !$seen{h2}++)
		{
			($status, $extra) = (429, "Retry-After: 1\r\n");
		}
		elsif ($body =~ /"id": "h3"/)
		{
			$status = 500;
		}
		print $out encode_json({
				method => $method, path => $path, body => $body,
				key => $h{'idempotency-key'}, status => $status }) . "\n";
		print $c "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
		  . "Content-Length: " . length($reply) . "\r\nConnection: close\r\n$extra\r\n$reply";
		close $c;
	}
	return;
}
