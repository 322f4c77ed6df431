
# The PGXN distribution (README "Install"): make dist builds
# delta-<version>.zip from the committed tree plus the built SQL scripts, the
# zip builds on its own, and META.json names the version of delta.control,
# its resources and a PostgreSQL range that holds the server the tests run on.

use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp ();
use JSON::PP;

my $root = "$ENV{TESTDIR}/..";
my ($version) = slurp_file("$root/delta.control") =~ /^default_version = '([^']+)'/m;
ok($version, "delta.control has a default_version ($version)");

my $meta = decode_json(slurp_file("$root/META.json"));
is($meta->{version}, $version, 'META.json has the version of delta.control');
is($meta->{provides}{delta}{version}, $version, 'META.json provides delta at that version');
is($meta->{provides}{delta}{file}, "sql/delta--$version.sql", 'META.json names its install script');

ok($meta->{resources}{repository}{url} && $meta->{resources}{bugtracker}{web},
	'META.json names a repository and a bug tracker');

# the range in META.json (the same to build and to run) holds the PostgreSQL
# the tests run on
my $pg_config = $ENV{PG_CONFIG} // 'pg_config';
my $range = $meta->{prereqs}{runtime}{requires}{PostgreSQL};
is($meta->{prereqs}{build}{requires}{PostgreSQL}, $range, 'META.json builds and runs on the same range');
my ($major) = `$pg_config --version` =~ /PostgreSQL (\d+)/;
my ($low, $high) = $range =~ /^>= (\d+)\.0\.0, < (\d+)\.0\.0$/;
ok(defined $low && $major >= $low && $major < $high, "META.json's range $range holds PostgreSQL $major");

# make dist in a git repository of a copy of the tree
# outside the tree: a copy under test/tmp_check would copy itself forever
my $tmp = File::Temp::tempdir('delta_dist_XXXX', TMPDIR => 1, CLEANUP => 1);
system("tar -C $root -cf - --exclude=./tmp_check --exclude=./test/tmp_check --exclude=./results . | tar -C $tmp -xf -") == 0
  or BAIL_OUT('cannot copy the tree');
my $git = "git -C $tmp -c user.name=t -c user.email=t\@localhost";
system("$git init -q && $git add -A && $git commit -qm dist >/dev/null") == 0
  or BAIL_OUT('cannot make a git repository of the copy');
my $out = `make -C $tmp --no-print-directory -s PG_CONFIG=$pg_config dist 2>&1`;
is($?, 0, 'make dist succeeds') or diag($out);
my @files = split /\n/, `cd $tmp && unzip -Z1 delta-$version.zip`;
my %in = map { $_ => 1 } @files;
foreach my $f ('META.json', 'delta.control', 'Makefile', 'README.md', 'src/claim.c',
	'sql/src/schema.sql', "sql/delta--$version.sql", "sql/delta--0.1.0--$version.sql",
	'sql/delta--0.1.0.sql')
{
	ok($in{"delta-$version/$f"}, "the zip has delta-$version/$f");
}
is(scalar(grep { !m{^delta-\Q$version\E/} } @files), 0, "everything is under delta-$version/");
is(scalar(grep { /\.(o|so|bc)$/ } @files), 0, 'no build products');

# what PGXN users get builds without git: the library and both scripts
system("cd $tmp && unzip -q delta-$version.zip -d unpacked") == 0
  or BAIL_OUT('cannot unzip');
$out = `make -C $tmp/unpacked/delta-$version --no-print-directory -s PG_CONFIG=$pg_config 2>&1`;
is($?, 0, 'the unpacked zip builds') or diag($out);
ok(-f "$tmp/unpacked/delta-$version/delta.so", 'it builds delta.so');

done_testing();
