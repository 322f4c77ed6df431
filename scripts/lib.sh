# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/demo.  Source it; do not run it.
#
#   delta_prepare          install deps, build and install delta (as root),
#                          or check the install is current (not root)
#   delta_prepare_test_modules   the same for test/modules (scripts/test)
#   delta_prepare_examples       the same for examples/c (scripts/test)
#   delta_as_pg_user CMD   run CMD (a path inside the repository, plus args)
#                          as an unprivileged user: as root, in a copy of the
#                          tree owned by $DELTA_PG_USER (initdb, pg_regress and
#                          the TAP framework refuse to run as root); otherwise
#                          in place as the current user
#
# Environment:
#   PG_CONFIG      pg_config to build against [/usr/lib/postgresql/15/bin/pg_config]
#   DELTA_PG_USER  user the servers run as when started by root [postgres]
#   DELTA_KEEP_TMP=1  keep the temporary copy of the tree (as root) afterwards

set -euo pipefail

DELTA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
DELTA_PG_USER=${DELTA_PG_USER:-postgres}
export PG_CONFIG

if [[ -t 1 ]]; then
	_delta_bold=$'\e[1m' _delta_red=$'\e[31m' _delta_off=$'\e[0m'
else
	_delta_bold='' _delta_red='' _delta_off=''
fi

delta_say()  { printf '%s==> %s%s\n' "$_delta_bold" "$*" "$_delta_off"; }
delta_warn() { printf '%s%s%s\n' "$_delta_red" "$*" "$_delta_off" >&2; }
delta_die()  { delta_warn "error: $*"; exit 1; }

delta_is_root() { [[ $(id -u) -eq 0 ]]; }

# make in the repository (or in the directory given with -C), against $PG_CONFIG
delta_make() { make -C "$DELTA_ROOT" --no-print-directory PG_CONFIG="$PG_CONFIG" "$@"; }

# value of a variable as the Makefile (and PGXS) compute it
delta_make_var() {
	# shellcheck disable=SC2016 # $(...) is make's, not the shell's
	delta_make -s --eval '__delta_print_var: ; @printf "%s\n" "$(strip $('"$1"'))"' __delta_print_var
}

# delta_build_install DIR NAME: build and install the PGXS project in DIR.
# As root: make install.  Otherwise install if we can, else insist that what
# is installed is byte-identical to what was built, so tests never run
# against a stale library or install script.
delta_build_install() {
	local dir=$1 name=$2 built_for
	# PGXS does not rebuild objects when only the server changes: objects
	# compiled against another major would be linked in (or refused at
	# load), so a build for another (or an unknown) server starts clean
	built_for="$PG_CONFIG $("$PG_CONFIG" --version)"
	if [[ ! -e $dir/.pg_config.built || $(<"$dir/.pg_config.built") != "$built_for" ]]; then
		delta_make -C "$dir" -s clean
	fi
	delta_say "building $name ($PG_CONFIG)"
	delta_make -C "$dir" -s
	printf '%s\n' "$built_for" >"$dir/.pg_config.built"
	delta_say "installing $name"
	local pkglibdir sharedir
	pkglibdir=$("$PG_CONFIG" --pkglibdir)
	sharedir=$("$PG_CONFIG" --sharedir)
	if delta_is_root || [[ -w $pkglibdir && -w $sharedir/extension ]]; then
		delta_make -C "$dir" -s install
		return
	fi
	if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo make -C "$dir" --no-print-directory -s PG_CONFIG="$PG_CONFIG" install
		return
	fi
	local f installed stale=()
	shopt -s nullglob
	for f in "$dir"/*.so "$dir"/*.control "$dir"/*--*.sql "$dir"/sql/*--*.sql; do
		case $f in
		*.so) installed=$pkglibdir/$(basename "$f") ;;
		*) installed=$sharedir/extension/$(basename "$f") ;;
		esac
		cmp -s "$f" "$installed" || stale+=("$installed")
	done
	shopt -u nullglob
	if ((${#stale[@]})); then
		delta_warn "not root, cannot install, and the installed $name is missing or stale:"
		printf '  %s\n' "${stale[@]}" >&2
		delta_die "run as root, or first: sudo make -C $dir PG_CONFIG=$PG_CONFIG install"
	fi
}

# dependencies, then build and install delta
delta_prepare() {
	"$DELTA_ROOT/scripts/install-deps"
	delta_build_install "$DELTA_ROOT" delta
}

# build and install the test-only C modules the tests load
# (test/modules/Makefile and test/modules/*/Makefile, if any)
delta_prepare_test_modules() {
	local mk dir
	shopt -s nullglob
	for mk in "$DELTA_ROOT"/test/modules/Makefile "$DELTA_ROOT"/test/modules/*/Makefile; do
		dir=$(dirname "$mk")
		delta_build_install "$dir" "${dir#"$DELTA_ROOT"/}"
	done
	shopt -u nullglob
}

# build and install the C example's module (examples/c), which
# test/t/200_examples.pl loads
delta_prepare_examples() {
	delta_build_install "$DELTA_ROOT/examples/c" examples/c
}

# delta_as_pg_user scripts/foo [args...]
# Runs "$DELTA_ROOT/scripts/foo args..." with DELTA_PREPARED=1 in the
# environment, as an unprivileged user.  Returns the command's exit status.
delta_as_pg_user() {
	local rel=$1; shift
	if ! delta_is_root; then
		DELTA_PREPARED=1 "$DELTA_ROOT/$rel" "$@"
		return
	fi
	id "$DELTA_PG_USER" >/dev/null 2>&1 || delta_die "user '$DELTA_PG_USER' does not exist (set DELTA_PG_USER)"
	local tmp rc=0
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/delta.XXXXXX")
	# the tree without .git and without results of earlier runs
	tar -C "$DELTA_ROOT" -cf - \
		--exclude=./.git --exclude=./tmp_check --exclude=./tmp_check_iso \
		--exclude=./results --exclude=./log --exclude=./test/output_iso \
		--exclude=./test/tmp_check . | tar -C "$tmp" -xf -
	chown -R "$DELTA_PG_USER:" "$tmp"
	chmod 700 "$tmp"
	delta_say "running as user $DELTA_PG_USER in $tmp (kept if this fails, outside CI)"
	# runuser resets HOME/USER/LOGNAME/SHELL for the target user; keep PATH etc.
	(cd "$tmp" && runuser -u "$DELTA_PG_USER" -- env DELTA_PREPARED=1 PG_CONFIG="$PG_CONFIG" \
		"$tmp/$rel" "$@") || rc=$?
	# keep it silently (the path was printed above): callers' last line of
	# output is theirs, e.g. scripts/test's summary
	if [[ ${DELTA_KEEP_TMP:-0} != 1 ]] && { ((rc == 0)) || [[ ${CI:-} == true ]]; }; then
		rm -rf "$tmp"
	fi
	return "$rc"
}
