# Shared helpers for the CLI tests (tests/cli/*.sh). Each check prints one line,
# "ok NAME" or "not ok NAME: why", which tests/run.sh counts.
set -u
GR_ROOT=${GR_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
GR_BIN=${GR_BIN:-$GR_ROOT/bin}
SHARED=$GR_ROOT/../shared
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

ok() { echo "ok $1"; }
fail() { echo "not ok $1: $2"; }

# expect NAME STATUS CMD... : runs CMD, checks its exit status; stdout in $T/out, stderr in $T/err
expect() {
    local name=$1 want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then ok "$name"; else fail "$name" "exit $rc, wanted $want; stderr: $(head -c 300 "$T/err")"; fi
}
# grep_check NAME FILE PATTERN : FILE contains the (extended regex) PATTERN
grep_check() {
    if grep -Eq -- "$3" "$2"; then ok "$1"; else fail "$1" "'$3' not found in: $(head -c 300 "$2")"; fi
}
have_shared() { [ -d "$SHARED/data/guardreasoner" ]; }
