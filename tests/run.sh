#!/usr/bin/env bash
# Runs unit-test binaries and CLI test scripts; every check prints one line,
# "ok NAME" or "not ok NAME: why". A program that exits non-zero without
# having reported a failure counts as one failure. Ends with the plain line
# "N passed, N failed".
#   tests/run.sh UNIT... -- SCRIPT...
set -u
pass=0 fail=0
root=$(cd "$(dirname "$0")/.." && pwd)
export GR_ROOT="$root" GR_BIN="$root/bin"
run_one() {
    local out rc
    out=$("$@" 2>&1); rc=$?
    local p f
    p=$(printf '%s\n' "$out" | grep -c '^ok ' || true)
    f=$(printf '%s\n' "$out" | grep -c '^not ok ' || true)
    printf '%s\n' "$out" | grep -E '^(not ok |# )' || true
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "not ok $*: exited with status $rc"
        printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
        f=1
    fi
    echo "$(basename "${@: -1}"): $p passed, $f failed" >&2
    pass=$((pass + p)); fail=$((fail + f))
}
mode=unit
for arg in "$@"; do
    if [ "$arg" = "--" ]; then mode=cli; continue; fi
    if [ "$mode" = unit ]; then run_one "$arg"; else run_one bash "$arg"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
