
# Copyright: the delta authors.  Shared helpers of delta's TAP tests.
#
#   use lib '.';          # prove -I . from test/
#   use DeltaTest;
#
#   my $node = DeltaTest::new_node('main');               # initdb + start
#   my $node = DeltaTest::new_node('slow', conf => { 'delta.poll_interval' => '1h' });
#   my $node = DeltaTest::new_node('primary', init => { allows_streaming => 1 }, start => 0);
#   create_extension($node, 'postgres');
#   ok(wait_for_state($node, 'postgres', 'k', 'o1', 'synced'), '...');
#   my @w = workers($node, 'postgres');                   # hashrefs of delta.workers
#   ok(poll_until($node, 'postgres', $sql, $expected, $timeout), '...');
#
# Interface is shared by several test files: only ever add functions here.

package DeltaTest;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(
  create_extension
  wait_for_state
  wait_for_workers
  workers
  resource
  poll_until
  query_rows
);

# Seconds a poll waits before giving up (the failure prints what it saw).
our $TIMEOUT = $ENV{DELTA_TEST_TIMEOUT} || 90;

# Settings of every node, before the caller's own.
our %DEFAULT_CONF = (
	shared_preload_libraries    => "'delta'",
	max_worker_processes        => 24,
	'delta.max_workers'         => 16,
	'delta.poll_interval'       => "'1s'",
	'delta.maintenance_interval' => "'1s'",
	'delta.log_level'           => "'log'",
	log_min_messages            => 'warning',
	log_line_prefix             => "'%m [%p] %b %q%a '",
	max_connections             => 40,
);

# new_node($name, conf => {guc => value, ...}, init => {...}, start => 1)
#
# A node with delta preloaded and the settings above (values are written
# into postgresql.conf as given: quote strings yourself, e.g. "'1h'").
# Started unless start => 0.
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opts{init} || {} });
	my %conf = (%DEFAULT_CONF, %{ $opts{conf} || {} });
	my $text = '';
	foreach my $k (sort keys %conf)
	{
		next unless defined $conf{$k};
		my $v = $conf{$k};
		# accept unquoted interval strings like 1h / 500ms / 1s
		$v = "'$v'" if $v =~ /^\d+\s*[a-z]+$/i && $v !~ /^'/;
		$text .= "$k = $v\n";
	}
	$node->append_conf('postgresql.conf', $text);
	$node->start unless defined $opts{start} && !$opts{start};
	return $node;
}

# CREATE DATABASE $db unless it exists (and it is not 'postgres').
sub create_database
{
	my ($node, $db) = @_;
	my $exists = $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_database WHERE datname = '$db'");
	$node->safe_psql('postgres', qq{CREATE DATABASE "$db"}) unless $exists;
	return;
}

# CREATE EXTENSION delta in $db (creating $db first when needed).
sub create_extension
{
	my ($node, $db) = @_;
	create_database($node, $db) if $db ne 'postgres';
	$node->safe_psql($db, 'CREATE EXTENSION IF NOT EXISTS delta');
	return;
}

# Creates the SQL function crash(delta.resource) that raises SIGSEGV in the
# server (test/modules/delta_test.so must be installed).
sub create_crash_function
{
	my ($node, $db, $name) = @_;
	$name ||= 'crash';
	$node->safe_psql($db,
		"CREATE FUNCTION $name(delta.resource) RETURNS void AS 'delta_test', 'delta_test_crash' LANGUAGE c"
	);
	return;
}

# Rows of a query as hashrefs (columns by name).  Values are text, NULL is
# undef.  One statement only.
sub query_rows
{
	my ($node, $db, $sql) = @_;
	# row_to_json keeps column names and NULLs apart from empty strings
	my $out = $node->safe_psql($db,
		"SELECT coalesce(json_agg(q), '[]') FROM ($sql) AS q");
	require JSON::PP;
	my $rows = JSON::PP->new->decode($out);
	foreach my $r (@$rows)
	{
		foreach my $k (keys %$r)
		{
			$r->{$k} = "$r->{$k}"
			  if defined $r->{$k} && ref $r->{$k} eq '';
		}
	}
	return @$rows;
}

# delta.workers as seen from $db (which must have the extension), as
# hashrefs, ordered by role, database, namespace.
sub workers
{
	my ($node, $db) = @_;
	return query_rows($node, $db,
		'SELECT * FROM delta.workers ORDER BY role, database, namespace, pid');
}

# The resource row (hashref, jsonb columns as JSON text), or undef.
sub resource
{
	my ($node, $db, $kind, $object_id) = @_;
	my @rows = query_rows($node, $db,
		"SELECT id, state, attempt, max_attempts, errors::text AS errors, due_at, synced_at, "
		  . "attempted_at, namespace, holder_pid, generation, object::text AS object "
		  . "FROM delta.resource WHERE kind = "
		  . quote($kind)
		  . " AND object_id = "
		  . quote($object_id));
	return $rows[0];
}

# SQL string literal.
sub quote
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	$s =~ s/'/''/g;
	return "'$s'";
}

# Runs $sql in $db every 100 ms until its output (psql -At) equals
# $expected, for at most $timeout seconds.  Returns 1, or 0 after printing
# (diag) the last output.  Query errors are retried too (and shown).
sub poll_until
{
	my ($node, $db, $sql, $expected, $timeout) = @_;
	$expected = 't' unless defined $expected;
	$timeout ||= $TIMEOUT;
	my $deadline = time() + $timeout;
	my ($stdout, $stderr) = ('', '');
	while (1)
	{
		my $ret = $node->psql($db, $sql,
			stdout => \$stdout, stderr => \$stderr,
			on_error_die => 0, on_error_stop => 1);
		return 1 if $ret == 0 && $stdout eq $expected;
		last if time() > $deadline;
		usleep(100_000);
	}
	diag("poll_until gave up after ${timeout}s on:\n$sql\n"
		  . "expected: $expected\nlast output: $stdout\nstderr: $stderr");
	return 0;
}

# Waits until resource ($kind, $object_id) of $db is in $state.  Returns 1,
# or 0 after printing the row it last saw.
sub wait_for_state
{
	my ($node, $db, $kind, $object_id, $state, $timeout) = @_;
	my $sql =
	    "SELECT state FROM delta.resource WHERE kind = "
	  . quote($kind)
	  . " AND object_id = "
	  . quote($object_id);
	return 1 if poll_until($node, $db, $sql, $state, $timeout);
	my $row = eval { resource($node, $db, $kind, $object_id) };
	diag("resource $kind/$object_id did not reach $state; row: "
		  . (defined $row ? explain_row($row) : 'none'));
	return 0;
}

# Namespace workers in delta.workers: role 'worker', or 'leader' for the one
# that currently runs the database's maintenance.
our $WORKER_ROLES = "role IN ('worker', 'leader')";

# Waits until delta.workers (seen from $db) has exactly $count namespace
# workers (roles 'worker' and 'leader') matching the SQL condition $where (e.g.
# "database = 'd1' AND namespace = 'n2'"; undef = all).  Returns 1 or 0
# after printing delta.workers.
sub wait_for_workers
{
	my ($node, $db, $where, $count, $timeout) = @_;
	$where = 'true' unless defined $where;
	my $sql =
	  "SELECT count(*) FROM delta.workers WHERE $WORKER_ROLES AND ($where)";
	return 1 if poll_until($node, $db, $sql, $count, $timeout);
	diag("delta.workers now:\n"
		  . $node->safe_psql($db, 'SELECT * FROM delta.workers ORDER BY pid'));
	return 0;
}

# Waits until delta.workers (seen from $db) shows no process of database
# $of_db (any role).
sub wait_for_no_workers_of
{
	my ($node, $db, $of_db, $timeout) = @_;
	my $sql = "SELECT count(*) FROM delta.workers WHERE database = "
	  . quote($of_db);
	return 1 if poll_until($node, $db, $sql, '0', $timeout);
	diag("delta.workers now:\n"
		  . $node->safe_psql($db, 'SELECT * FROM delta.workers ORDER BY pid'));
	return 0;
}

sub explain_row
{
	my ($row) = @_;
	return join(', ',
		map { "$_=" . (defined $row->{$_} ? $row->{$_} : 'NULL') }
		  sort keys %$row);
}

1;
