
# A deterministic bad-input campaign over every public function of schema
# delta.  A generator with a fixed seed draws calls with arguments from
# pools of nasty values per type (NULLs, empty and over-long names,
# non-ASCII, infinite timestamps, huge and negative intervals, odd jsonb,
# arrays with NULLs, inform_item rows with bad fields) and some good ones so
# that calls get deep into the code.  Each call is its own transaction in a
# long-lived psql session of the superuser, of an application role and of
# an app_admin role that hold exactly the README's grants.  For every call:
# the server is still up, no internal error (XX000), no empty message, the
# SQLSTATE is one of the README's Errors table, and a failing call wrote
# nothing (checksum of every row of delta's tables before and after).
#
#   DELTA_FUZZ_CALLS=20000 DELTA_FUZZ_SEED=7 scripts/test tap  (more calls)
#
# The workers are off (delta.enabled) while the calls run, so nothing but
# the calls changes delta's tables; then they are turned on to work what
# the campaign stored, and must neither crash nor exit on an error.

use strict;
use warnings;
use utf8;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Encode ();
use lib '.';
use DeltaTest;

my $calls = $ENV{DELTA_FUZZ_CALLS} || 3000;
my $seed = $ENV{DELTA_FUZZ_SEED} || 20240610;
srand($seed);

my $node = DeltaTest::new_node('main',
	conf => {
		'delta.enabled' => 'off',
		log_error_verbosity => 'verbose',
		log_min_messages => 'warning',
	});
my $db = 'fuzz';
# UTF8, so that non-ASCII values are characters of several bytes
$node->safe_psql('postgres',
	"CREATE DATABASE $db ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
create_extension($node, $db);

# ---- the contract, from the README ------------------------------------------

my $readme = slurp_file("$ENV{TESTDIR}/../README.md");
my ($errors) = $readme =~ /^## Errors\n(.*?)^## /ms;
my %documented = map { $_ => 1 } ($errors // '') =~ /^\| `([0-9A-Z]{5})` /mg;
ok(scalar(keys %documented) >= 5, 'the README documents SQLSTATEs')
  or diag("Errors section: " . ($errors // 'not found'));
my ($grants) = $readme =~ /An application role needs:\n+```sql\n(.*?)```/s;
ok($grants && $grants =~ /TO app;/ && $grants =~ /TO app_admin;/,
	'the README lists the grants of app and app_admin')
  or diag("grants: " . ($grants // 'not found'));

# ---- roles, callbacks and a baseline ------------------------------------------

$node->safe_psql($db, q{
	CREATE SCHEMA fz;
	GRANT USAGE ON SCHEMA fz TO PUBLIC;
	-- the objects of the campaign tell the work function what to do
	CREATE FUNCTION fz.w(r delta.resource) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		IF r.object ? 'snooze' THEN
			PERFORM delta.resource_snooze((r.object->>'snooze')::interval);
		ELSIF r.object ? 'delete' THEN
			PERFORM delta.resource_delete(r.object->>'delete');
		ELSIF r.object ? 'fail' THEN
			RAISE EXCEPTION 'asked to fail: %', r.object->>'fail';
		END IF;
	END $$;
	CREATE FUNCTION fz.inf(o delta.inform_options) RETURNS SETOF delta.inform_item
		LANGUAGE sql AS $$
		SELECT ROW('i' || g, jsonb_build_object('g', g), NULL, NULL, NULL, NULL, NULL)::delta.inform_item
		FROM generate_series(1, least(coalesce(o."limit", 3), 3)) AS g $$;
	CREATE FUNCTION fz.cmp(a jsonb, b jsonb) RETURNS integer LANGUAGE sql
		AS $$ SELECT (b->>'g')::integer - (a->>'g')::integer $$;
	CREATE FUNCTION fz.bad_arg(r text) RETURNS void LANGUAGE sql AS 'SELECT';
	CREATE FUNCTION fz.bad_ret(r delta.resource) RETURNS integer LANGUAGE sql AS 'SELECT 1';
	CREATE FUNCTION fz.bad_inf(o delta.inform_options) RETURNS SETOF integer LANGUAGE sql AS 'SELECT 1';
	CREATE FUNCTION fz.bad_cmp(a jsonb) RETURNS integer LANGUAGE sql AS 'SELECT 1';
	CREATE FUNCTION fz.secret(r delta.resource) RETURNS void LANGUAGE sql AS 'SELECT';
	REVOKE EXECUTE ON FUNCTION fz.secret(delta.resource) FROM PUBLIC;
	CREATE PROCEDURE fz.proc(r delta.resource) LANGUAGE sql AS 'SELECT';
	CREATE FUNCTION fz.agg_sfunc(s integer, r delta.resource) RETURNS integer LANGUAGE sql AS 'SELECT s';
	CREATE AGGREGATE fz.agg(delta.resource) (SFUNC = fz.agg_sfunc, STYPE = integer);
});
# the README's block creates the roles it grants to; the campaign logs in as them
$node->safe_psql($db, $grants);
$node->safe_psql($db, 'ALTER ROLE app LOGIN; ALTER ROLE app_admin LOGIN; ALTER ROLE monitoring LOGIN');

# What the campaign starts from, and comes back to every 100 calls: two
# controllers of the superuser (one with inform and compare functions), one
# of app_admin, a second namespace, synced resources to invalidate, and a
# subscription of each role.
my $baseline = q{
	DO $$
	BEGIN
		IF NOT EXISTS (SELECT FROM delta.controller WHERE kind = 'k') THEN
			PERFORM delta.register_controller('k', 'fz.w(delta.resource)',
				inform => 'fz.inf(delta.inform_options)', compare => 'fz.cmp(jsonb, jsonb)');
		END IF;
		IF NOT EXISTS (SELECT FROM delta.controller WHERE kind = 'k2') THEN
			PERFORM delta.register_controller('k2', 'fz.w(delta.resource)');
		END IF;
		IF NOT EXISTS (SELECT FROM delta.namespace WHERE name = 'n1') THEN
			PERFORM delta.create_namespace('n1', max_workers => 1);
		END IF;
	END $$;
	SELECT count(*) FROM delta.inform_many('k', '[{"object_id": "s1", "object": {}},
		{"object_id": "s2", "object": {"g": 1}}, {"object_id": "o1", "object": {}}]'::jsonb)
	WHERE NOT already_exists;
	UPDATE delta.resource SET state = 'synced', due_at = NULL, synced_at = now()
	WHERE kind = 'k' AND object_id IN ('s1', 's2') AND state <> 'synced';
};
sub restore_baseline
{
	my ($session) = @_;
	if ($session)
	{
		$session->{postgres}->query_safe($baseline);
		$session->{app_admin}->query_safe(q{SELECT delta.register_controller('ka', 'fz.w(delta.resource)')})
		  if $session->{postgres}->query_safe(q{SELECT count(*) FROM delta.controller WHERE kind = 'ka'}) eq '0';
		return;
	}
	$node->safe_psql($db, $baseline);
	$node->safe_psql($db, q{SELECT delta.register_controller('ka', 'fz.w(delta.resource)')},
		extra_params => [ '-U', 'app_admin' ])
	  if $node->safe_psql($db, q{SELECT count(*) FROM delta.controller WHERE kind = 'ka'}) eq '0';
	return;
}
restore_baseline();
$node->safe_psql($db, q{SELECT delta.subscribe('{object_synced}')});
$node->safe_psql($db, q{SELECT delta.subscribe('{object_failed}', name => 'app')},
	extra_params => [ '-U', 'app' ]);

# ---- the functions under test ---------------------------------------------------

my @functions;
foreach my $line (split /\n/, $node->safe_psql($db, q{
	SELECT p.proname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
	       coalesce(array_to_string(p.proargnames[1:p.pronargs], ','), ''),
	       coalesce((SELECT string_agg(format_type(t, NULL), ',' ORDER BY o)
	                 FROM unnest(p.proargtypes) WITH ORDINALITY AS u(t, o)), ''),
	       p.pronargs, p.pronargdefaults
	FROM pg_proc AS p
	WHERE p.pronamespace = 'delta'::regnamespace AND p.proname !~ '^_'
	ORDER BY p.proname, p.oid}))
{
	my ($name, $signature, $argnames, $argtypes, $nargs, $ndefaults) = split /\|/, $line;
	push @functions, {
		name => $name,
		signature => $signature,
		args => [ split /,/, $argnames ],
		types => [ split /,/, $argtypes ],
		required => $nargs - $ndefaults,
	};
}
ok(@functions >= 10, 'schema delta has public functions to call')
  or diag("found: " . join(', ', map { $_->{name} } @functions));

# ---- pools of values --------------------------------------------------------------
#
# Each argument takes a good value or, with the call's probability $nasty, a
# bad one.  Calls are mostly wild, some nearly good, so that many fail early
# and some get deep into the code.

our $nasty = 0.5;

# A typed SQL literal.
sub lit
{
	my ($v, $type) = @_;
	return "NULL::$type" unless defined $v;
	$v =~ s/'/''/g;
	return "'$v'::$type";
}

# A JSON string.
sub json_str
{
	my ($s) = @_;
	return 'null' unless defined $s;
	$s =~ s/(["\\])/\\$1/g;
	$s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord($1))/ge;
	return "\"$s\"";
}

sub pick { return $_[ int(rand(@_)) ]; }

# good or bad: pick from $good or from $bad
sub choose
{
	my ($good, $bad) = @_;
	return pick(@$bad) if rand() < $nasty;
	return pick(@$good);
}

my @long = ('x' x 63, 'x' x 64, 'y' x 255, 'y' x 256, "\x{00e9}" x 32, "\x{1F600}" x 16, 'z' x 5000);
my @odd_text = ('', ' ', 'ü', "\x{00e9}t\x{00e9}", "k'q", 'a"b', 'a\\b', "tab\there", "line\nbreak",
	'%s%n', 'NULL', '-1', "\x{202e}rtl", "\x01ctl");
my @bad_text = (undef, undef, 'nope', @long, @odd_text);
my %good_text = (
	kind => [ 'k', 'k', 'k', 'k2', 'ka' ],
	object_id => [ 'o1', 'o1', 's1', 's2', 'o2', 'o3' ],
	namespace => [ 'default', 'default', 'n1' ],
	name => [ 'n1', 'n2', 'n3', 'default', 'sub' ],
	reason => [ 'done', undef ],
);
sub text_value { return choose($good_text{ $_[0] } || ['x'], \@bad_text); }

my @bad_intervals = (undef, '0', '-1 s', '0.5 ms', '1 microsecond', '24 days 1 ms', '100 years 1 s',
	'101 years', '10000 years', '400000 years', '-400000 years', '1000000 years', '178000000 years',
	'-178000000 years', '1 mon -30 days', '-1 mon 31 days', '2147483647 days', '-2147483648 days',
	'2147483647 mons', '-2147483648 hours');
my @good_intervals = ('1 s', '1 ms', '1 hour', '24 days', '100 years', '1 mon', undef);
my @bad_timestamps = ('infinity', '-infinity', '4713-01-01 00:00:00+00 BC', '294276-12-31 23:59:59+00');
my @good_timestamps = (undef, undef, 'now', 'epoch', '2000-01-01 00:00:00+00', '1999-12-31 23:59:59.999999+00');
my @bad_integers = (undef, 0, -1, 1025, 2147483647, -2147483648);
my %good_integers = (
	max_workers => [ 0, 1, 2 ],
	parallelism => [ undef, 1, 2, 1024 ],
	max_attempts => [ undef, 1, 3, 10 ],
	max => [ 1, 10, 100 ],
);
my @bad_bigints = (undef, 0, -1, 2147483648, '9223372036854775807', '-9223372036854775808');
my @good_bigints = (1, 2, 3, 4, 5, 6);

my $deep_array = ('[' x 500) . (']' x 500);
my $deep_object = ('{"a":' x 300) . '1' . ('}' x 300);
my @bad_jsonb = (undef, '[1,2]', '[]', 'null', '"x"', '1', 'true', $deep_array);
my @good_jsonb = ('{}', '{}', '{"g": 2}', '{"a": null}', $deep_object,
	'{"snooze": "400000 years"}', '{"snooze": "-1 s"}', '{"snooze": "1 s"}', '{"delete": null}',
	'{"fail": "x"}', '{"": 1}', '{"k": "' . ('v' x 10000) . '"}', '{"\u00e9": "\ud83d\ude00"}');
sub jsonb_value { return lit(choose(\@good_jsonb, \@bad_jsonb), 'jsonb'); }

my %good_array = (
	categories => [ '{object_synced}', '{object_failed,object_deleted}', '{object_synced,object_synced}' ],
	kinds => [ undef, '{k}', '{k,k2,nope}' ],
	tags => [ '{}', '{}', '{ab}', '{abc,a-b,tag_1}', '{ü_ü}', '{' . ('x' x 255) . '}' ],
);
my %bad_elements = (
	categories => [ 'bogus', '', undef, 'object_synced' ],
	kinds => [ '', undef, 'x' x 64, 'k' ],
	tags => [ 'a', '-ab', 'ab-', 'a b', 'x' x 256, '', undef, 'ab' ],
);
# A text[] literal: a good one, or bad elements, NULL, empty or 2-D.
sub array_value
{
	my ($arg) = @_;
	$arg = 'tags' unless $good_array{$arg};
	return lit(pick(@{ $good_array{$arg} }), 'text[]') if rand() >= $nasty;
	my $r = rand();
	return 'NULL::text[]' if $r < 0.15;
	return "'{}'::text[]" if $r < 0.25;
	return "ARRAY[ARRAY['ab','cd'],ARRAY['ef', NULL]]::text[]" if $r < 0.3;
	my @e = map { lit(pick(@{ $bad_elements{$arg} }), 'text') } 1 .. 1 + int(rand(3));
	return 'ARRAY[' . join(', ', @e) . ']::text[]';
}

# An inform_item literal; its optional fields are mostly NULL.
sub item_value
{
	return 'NULL::delta.inform_item' if rand() < $nasty / 10;
	my $opt = sub { rand() < 0.7 ? 'NULL::' . $_[0] : $_[1]->() };
	my @f = (
		lit(text_value('object_id'), 'text'),
		jsonb_value(),
		$opt->('timestamptz', sub { lit(choose(\@good_timestamps, \@bad_timestamps), 'timestamptz') }),
		$opt->('text', sub { lit(text_value('namespace'), 'text') }),
		$opt->('jsonb', \&jsonb_value),
		$opt->('text[]', sub { array_value('tags') }),
		$opt->('integer', sub { lit(choose($good_integers{max_attempts}, \@bad_integers), 'integer') }));
	return 'ROW(' . join(', ', @f) . ')::delta.inform_item';
}

sub items_array_value
{
	if (rand() < $nasty)
	{
		my $r = rand();
		return 'NULL::delta.inform_item[]' if $r < 0.1;
		return "'{}'::delta.inform_item[]" if $r < 0.2;
		return 'ARRAY[ARRAY[' . item_value() . '], ARRAY[' . item_value() . ']]::delta.inform_item[]'
		  if $r < 0.3;
	}
	return 'ARRAY[' . join(', ', map { item_value() } 1 .. 1 + int(rand(3))) . ']::delta.inform_item[]';
}

# A JSON value for a field of an item given as jsonb, of the right type or not.
my %json_field = (
	object_id => sub { json_str(text_value('object_id')) },
	object => sub { choose(\@good_jsonb, [ grep { defined } @bad_jsonb ]) },
	external_created_at => sub {
		choose([ map { json_str($_) } @good_timestamps ],
			[ (map { json_str($_) } @bad_timestamps), '"garbage"', '1', '[]', '"99999999-01-01"' ]) },
	namespace => sub { choose([ map { json_str($_) } @{ $good_text{namespace} } ], [ '1', 'null', '{}', json_str(pick(@bad_text)) ]) },
	metadata => sub { choose(\@good_jsonb, [ grep { defined } @bad_jsonb ]) },
	tags => sub { choose([ '[]', '["ab"]', '["abc", "a-b"]', 'null' ], [ '["-x"]', '[null]', '"ab"', '{}', '1', '["ab", 1]', '[["ab"]]', '"{ab}"' ]) },
	max_attempts => sub { choose([ '1', '3', 'null' ], [ '0', '-1', '2147483648', '1e20', '1.5', '"3"', '"x"', '[]', 'true' ]) },
	bogus => sub { '1' },
);
sub items_jsonb_value
{
	if (rand() < $nasty)
	{
		my $r = rand();
		return 'NULL::jsonb' if $r < 0.1;
		return lit(pick(grep { defined } @bad_jsonb, @good_jsonb), 'jsonb') if $r < 0.25;
	}
	my @objs;
	foreach (1 .. 1 + int(rand(3)))
	{
		if (rand() < $nasty / 10) { push @objs, pick('1', 'null', '[]', '"o1"'); next; }
		my @fields = ('object_id', 'object');
		foreach my $f (qw(external_created_at namespace metadata tags max_attempts bogus))
		{
			push @fields, $f if rand() < ($f eq 'bogus' ? $nasty / 10 : 0.2);
		}
		@fields = grep { rand() >= $nasty / 10 } @fields;
		push @objs, '{' . join(', ', map { json_str($_) . ': ' . $json_field{$_}->() } @fields) . '}';
	}
	return lit('[' . join(', ', @objs) . ']', 'jsonb');
}

sub options_value
{
	return choose([ 'NULL::delta.inform_options', 'ROW(NULL, NULL, 10, NULL)::delta.inform_options' ],
		[ 'ROW(' . join(', ',
			lit(pick(@bad_timestamps, @good_timestamps), 'timestamptz'),
			lit(pick(@bad_jsonb, @good_jsonb), 'jsonb'),
			lit(pick(@bad_integers, 1), 'integer'),
			lit(pick(undef, 'id', '', 'x' x 300, "\x{00e9}"), 'text'))
		  . ')::delta.inform_options' ]);
}

my %good_procs = (
	work => [ 'fz.w(delta.resource)' ],
	inform => [ 'fz.inf(delta.inform_options)', undef ],
	compare => [ 'fz.cmp(jsonb, jsonb)', undef ],
);
my @bad_procs = ('fz.bad_arg(text)', 'fz.bad_ret(delta.resource)', 'fz.secret(delta.resource)',
	'fz.proc(delta.resource)', 'fz.agg(delta.resource)', 'fz.inf(delta.inform_options)',
	'fz.w(delta.resource)', 'fz.bad_inf(delta.inform_options)', 'fz.bad_cmp(jsonb)',
	'fz.cmp(jsonb, jsonb)', 'pg_catalog.jsonb_cmp(jsonb, jsonb)', 'pg_catalog.now()', undef);
sub regprocedure_value
{
	my ($arg) = @_;
	my $r = rand();
	if (rand() < $nasty)
	{
		return '999999::oid::regprocedure' if $r < 0.1;
		return '0::oid::regprocedure' if $r < 0.15;
		return lit('fz.missing(delta.resource)', 'regprocedure') if $r < 0.2;
		return lit(pick(@bad_procs), 'regprocedure');
	}
	return lit(pick(@{ $good_procs{$arg} || $good_procs{work} }), 'regprocedure');
}

# A typed SQL expression for an argument.
sub value
{
	my ($type, $arg) = @_;
	return lit(text_value($arg), 'text') if $type eq 'text';
	return lit(choose($good_integers{$arg} || [ 1, 10 ], \@bad_integers), 'integer')
	  if $type eq 'integer';
	return lit(choose(\@good_bigints, \@bad_bigints), 'bigint') if $type eq 'bigint';
	return lit(choose([ 'true', 'false' ], [undef]), 'boolean') if $type eq 'boolean';
	# delta.claim's wait blocks for as long as it says when nothing is due
	return lit(choose([ '0', '10 ms' ], [ undef, '-1 s', '2 hours' ]), 'interval')
	  if $type eq 'interval' && $arg eq 'wait';
	return lit(choose(\@good_intervals, \@bad_intervals), 'interval') if $type eq 'interval';
	# claim tokens: a live one when there is one, an unknown one, NULL
	my @tokens = ('(SELECT token FROM delta.external_claim ORDER BY random() LIMIT 1)',
		'gen_random_uuid()', 'NULL::uuid');
	return $tokens[ int(rand(@tokens)) ] if $type eq 'uuid';
	return 'ARRAY[' . $tokens[ int(rand(@tokens)) ] . ', gen_random_uuid()]' if $type eq 'uuid[]';
	return lit(choose(\@good_timestamps, \@bad_timestamps), 'timestamptz')
	  if $type eq 'timestamp with time zone';
	if ($type eq 'jsonb')
	{
		return items_jsonb_value() if $arg eq 'items';
		return jsonb_value();
	}
	return array_value($arg) if $type eq 'text[]';
	return items_array_value() if $type eq 'delta.inform_item[]';
	return options_value() if $type eq 'delta.inform_options';
	return lit(choose([ '{degraded}', '{failed,degraded}', '{deleted,expired}' ],
			[ undef, '{}', '{NULL}', '{synced}', '{pending,failed}' ]),
		'delta.resource_state[]')
	  if $type eq 'delta.resource_state[]';
	return regprocedure_value($arg) if $type eq 'regprocedure';
	return undef;
}

# The functions each role may execute (by the README's grants).
my %granted;
foreach my $role ('postgres', 'app', 'app_admin')
{
	my %may = map { $_ => 1 } split /\n/, $node->safe_psql($db, qq{
		SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
		FROM pg_proc AS p
		WHERE p.pronamespace = 'delta'::regnamespace AND p.proname !~ '^_'
		  AND has_function_privilege('$role', p.oid, 'EXECUTE')});
	$granted{$role} = [ grep { $may{ $_->{signature} } } @functions ];
}
ok(@{ $granted{app} } >= 5 && @{ $granted{app_admin} } >= 3, 'app and app_admin may call some functions')
  or diag(explain { map { $_ => [ map { $_->{name} } @{ $granted{$_} } ] } keys %granted });

my %missing_pool;
foreach my $f (@functions)
{
	foreach my $i (0 .. $#{ $f->{types} })
	{
		my $t = $f->{types}[$i];
		$missing_pool{"$f->{name}($t)"} = 1 unless defined value($t, $f->{args}[$i]);
	}
}
ok(!%missing_pool, 'every argument type has a pool of values')
  or diag('no pool for: ' . join(', ', sort keys %missing_pool));

# A call of function $f: all required arguments, a random subset of the
# optional ones; named notation (shuffled) or positional.
sub call_sql
{
	my ($f) = @_;
	my $n = @{ $f->{types} };
	my @vals = map { value($f->{types}[$_], $f->{args}[$_]) } 0 .. $n - 1;
	my $named = rand() < 0.6;
	my $sql;
	if ($named)
	{
		my @idx = grep { $_ < $f->{required} || rand() < 0.5 } 0 .. $n - 1;
		# a random order: a Fisher-Yates shuffle driven by the fixed seed
		for (my $i = $#idx; $i > 0; $i--)
		{
			my $j = int(rand($i + 1));
			@idx[ $i, $j ] = @idx[ $j, $i ];
		}
		$sql = join(', ', map { "\"$f->{args}[$_]\" => $vals[$_]" } @idx);
	}
	else
	{
		my $k = $f->{required} + int(rand($n - $f->{required} + 1));
		$sql = join(', ', @vals[ 0 .. $k - 1 ]);
	}
	return "SELECT count(*) FROM delta.$f->{name}($sql)";
}

# ---- sessions ----------------------------------------------------------------------

my $checksum_sql = $node->safe_psql($db, q{
	SELECT 'SELECT md5(' || string_agg(format(
		'(SELECT coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''') FROM %s AS t)',
		c.oid::regclass), ' || ') || ')'
	FROM pg_class AS c
	WHERE c.relnamespace = 'delta'::regnamespace AND c.relkind IN ('r', 'p')});
like($checksum_sql, qr/delta\.resource/, 'the checksum covers delta.resource');

my %session;
foreach my $role ('postgres', 'app', 'app_admin')
{
	my @user = $role eq 'postgres' ? () : ('-U', $role);
	$session{$role} = $node->background_psql($db,
		on_error_stop => 0,
		extra_params => [ @user ]);
	$session{$role}->query_safe(q{\set VERBOSITY verbose});
	$session{$role}->query_safe(q{SET statement_timeout = '60s'});
	$session{$role}->query_safe(q{SET client_min_messages = error});
}
# checksums are taken by the superuser, who can read every table
my $su = $session{postgres};

# Runs $sql in $role's session: (undef) on success, or (sqlstate, message, full stderr).
sub run_in
{
	my ($role, $sql) = @_;
	my $s = $session{$role};
	$s->{stderr} = '';
	my ($out) = eval { $s->query(Encode::encode('UTF-8', $sql)) };
	my $err = $@ ? "session died: $@" : $s->{stderr};
	$s->{stderr} = '';
	return (undef) if $err eq '';
	if ($err =~ /^(?:psql:\S+ )?(ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}): ?(.*)$/m)
	{
		return ($2, $3, $err);
	}
	return ('?????', '', $err);
}

sub checksum
{
	my ($out) = $su->query($checksum_sql);
	die "checksum failed: $su->{stderr}" if $su->{stderr} ne '';
	return $out;
}

is(checksum(), checksum(), 'with the workers off, the checksum is stable');

# ---- the campaign ----------------------------------------------------------------

my (%by_state, %by_role, %by_function, @findings, %finding_seen);
my ($successes, $failures) = (0, 0);
my $started = time();

sub finding
{
	my ($what, $role, $sql, $detail) = @_;
	# one report per kind of finding, function and message
	my ($fname) = $sql =~ /delta\.(\w+)\(/;
	my ($message) = $detail =~ /(?:ERROR|FATAL|PANIC):\s+(.*)/;
	$message = substr($message // '', 0, 60);
	$message =~ s/"[^"]*"/""/g;
	$message =~ s/\d+/N/g;
	my $key = "$what $fname $message";
	push @findings, "$what, as $role:\n  $sql\n  $detail"
	  unless $finding_seen{$key}++;
	return;
}

my $before = checksum();
my $alive = 1;
for my $n (1 .. $calls)
{
	if ($n % 20 == 0)
	{
		restore_baseline(\%session);
		$before = checksum();
	}
	local $nasty = pick(0.5, 0.5, 0.3, 0.1, 0.02);
	my $role = pick('postgres', 'postgres', 'app', 'app_admin');
	# mostly functions the role may call
	my $f = pick(rand() < 0.85 ? @{ $granted{$role} } : @functions);
	my $sql = call_sql($f);
	my ($state, $message, $err) = run_in($role, $sql);
	$by_function{ $f->{name} }++;
	if (!defined $state)
	{
		$successes++;
		$by_state{ok}++;
		$by_role{"$role ok"}++;
		$before = checksum();
		next;
	}
	$failures++;
	$by_state{$state}++;
	$by_role{"$role $state"}++;
	if ($err =~ /session died|server closed the connection|connection to server was lost|terminating connection/)
	{
		finding('the server or the session went away', $role, $sql, $err);
		$alive = 0;
		last;
	}
	finding('internal error XX000', $role, $sql, $err) if $state eq 'XX000';
	finding('no SQLSTATE in the error', $role, $sql, $err) if $state eq '?????';
	finding('empty error message', $role, $sql, $err) if $message !~ /\S/;
	finding("undocumented SQLSTATE $state", $role, $sql, $err)
	  if $state ne 'XX000' && $state ne '?????' && !$documented{$state};
	my $after = checksum();
	if ($after ne $before)
	{
		finding('a failing call wrote', $role, $sql, $err);
		$before = $after;
	}
}
my $seconds = time() - $started;

ok($alive, 'every call got an answer');
# Lines of the server log from byte $offset on that match $re (shown when a test fails).
sub log_lines
{
	my ($offset, $re) = @_;
	my @lines = grep { /$re/ } split /\n/, substr(slurp_file($node->logfile), $offset);
	return @lines;
}
my @crashes = log_lines(0, qr/terminated by signal|PANIC|TRAP:/);
is(scalar(@crashes), 0, 'no server process crashed') or diag(join("\n", @crashes[ 0 .. 9 ]));
my @internal = log_lines(0, qr/\bXX000:/);
is(scalar(@internal), 0, 'the server log has no internal error') or diag(join("\n", @internal[ 0 .. 9 ]));
is($successes + $failures, $calls, "all $calls calls ran");
ok($successes > $calls / 20, 'some calls succeed, so the campaign gets deep into the code');
is(scalar(@findings), 0, 'no findings') or diag(Encode::encode('UTF-8', join("\n", @findings)));

diag(sprintf('%d calls (seed %s) in %ds: %d succeeded, %d failed', $calls, $seed,
		$seconds, $successes, $failures));
diag('by SQLSTATE: ' . join(', ', map { "$_ $by_state{$_}" } sort keys %by_state));
diag('by role: ' . join(', ', map { "$_ $by_role{$_}" } sort keys %by_role));
diag('by function: ' . join(', ', map { "$_ $by_function{$_}" } sort keys %by_function));

$_->quit foreach values %session;

# ---- then the workers work what the campaign stored ----------------------------
#
# Every namespace gets a worker; the resources (objects that snooze by huge
# or negative intervals, delete, fail) are worked with the settings the
# campaign left.  No worker may exit on an error or crash, and no internal
# error may be logged.
my $log_offset = -s $node->logfile;
$node->safe_psql($db, q{
	UPDATE delta.namespace SET paused = false, max_workers = greatest(max_workers, 1);
	-- and the kinds the campaign paused with delta.pause_kind
	SELECT delta.resume_kind(kind) FROM delta.controller WHERE paused;
	SELECT count(*)
	FROM delta.controller AS c,
	     (VALUES (1, '{"snooze": "400000 years"}'), (2, '{"snooze": "-1 s"}'), (3, '{"snooze": "100 years"}'),
	             (4, '{"delete": null}'), (5, '{"fail": "x"}'), (6, '{}')) AS o(n, object),
	     LATERAL delta.inform(c.kind, 'w' || o.n, o.object::jsonb) AS i;
	ALTER SYSTEM SET delta.enabled = on;
	SELECT pg_reload_conf();
});
my $due = $node->safe_psql($db, q{SELECT count(*) FROM delta.resource WHERE due_at IS NOT NULL});
ok(DeltaTest::poll_until($node, $db, q{
		SELECT count(*) FROM delta.resource AS r
		WHERE state IN ('scheduled', 'expired') AND due_at <= now()
		  -- external kinds (no work function) wait for delta.claim
		  AND NOT EXISTS (SELECT FROM delta.controller AS c WHERE c.kind = r.kind AND c.work IS NULL)}, '0'),
	"the workers work the $due due resources the campaign left");
my $worked = $node->safe_psql($db, q{
	SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
	FROM (SELECT state, count(*) AS n FROM delta.resource GROUP BY state) AS s});
$node->safe_psql($db, q{ALTER SYSTEM RESET delta.enabled; SELECT pg_reload_conf()});
my @bad = log_lines($log_offset, qr/terminated by signal|PANIC|TRAP:|\bXX000:/);
is(scalar(@bad), 0, 'no crash and no internal error while they work') or diag(join("\n", @bad[ 0 .. 9 ]));
@bad = log_lines($log_offset, qr/background worker "delta[^"]*" \(PID \d+\) exited with exit code [^0]/);
is(scalar(@bad), 0, 'no delta process exits on an error') or diag(join("\n", @bad[ 0 .. 9 ]));
diag("resources after the workers: $worked");

$node->stop;
done_testing();
