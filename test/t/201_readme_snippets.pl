
# Copyright: the delta authors.
#
# Every ```sql block of README.md and examples/README.md runs as pasted:
# each file's blocks, in order, each in one psql session with
# ON_ERROR_STOP, in a fresh database of a server that preloads delta.  A
# file that creates the extension itself (README.md's Quickstart) gets a
# database without it; one that does not (examples/README.md assumes an
# example was loaded) gets one with CREATE EXTENSION delta done.  A failing
# block is printed with its error.  A block that must not run (output, a
# configuration file) takes another fence language (```text, ```sh, or a
# bare ```).  After README.md's blocks, the resources its Quickstart
# informed and the user its informer lists are synced, as it says.

use strict;
use warnings;

use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib '.';
use DeltaTest;

my $top  = "$FindBin::RealBin/../..";
my $node = DeltaTest::new_node('readme');

# The ```sql blocks of $file: [line of the fence, text], in order.
sub sql_blocks
{
	my ($file) = @_;
	my (@blocks, $block);
	my $n = 0;
	foreach my $line (split /\n/, slurp_file($file))
	{
		$n++;
		if (!$block && $line =~ /^```sql\s*$/)
		{
			$block = [ $n, '' ];
		}
		elsif ($block && $line =~ /^```\s*$/)
		{
			push @blocks, $block;
			undef $block;
		}
		elsif ($block)
		{
			$block->[1] .= "$line\n";
		}
	}
	die "$file: the ```sql block of line $block->[0] is not closed" if $block;
	return @blocks;
}

my $i = 0;
foreach my $file ('README.md', 'examples/README.md')
{
	my @blocks = sql_blocks("$top/$file");
	cmp_ok(scalar @blocks, '>', 0, "$file has sql blocks");
	my $db = 'readme_' . ++$i;
	$node->safe_psql('postgres', qq{CREATE DATABASE "$db"});
	$node->safe_psql($db, 'CREATE EXTENSION delta')
	  unless grep { $_->[1] =~ /\bCREATE\s+EXTENSION\s+(IF\s+NOT\s+EXISTS\s+)?delta\b/i } @blocks;
	foreach my $b (@blocks)
	{
		my ($line, $sql) = @$b;
		my ($out, $err) = ('', '');
		my $ret = $node->psql($db, $sql,
			stdout => \$out, stderr => \$err, on_error_stop => 1);
		ok($ret == 0, "$file:$line runs")
		  or diag("the block of $file line $line:\n$sql\nfailed with:\n$err");
	}

	next unless $file eq 'README.md';
	ok(wait_for_state($node, $db, 'user', '42', 'synced'),
		'README.md: the Quickstart\'s user is synced');
	ok(wait_for_state($node, $db, 'invoice', 'inv-1', 'synced'),
		'README.md: the Quickstart\'s invoice is synced');
	ok(wait_for_state($node, $db, 'user', '7', 'synced'),
		'README.md: the user the Informers snippet lists is synced');
}

done_testing();
