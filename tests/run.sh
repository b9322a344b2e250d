#!/usr/bin/env bash
# Runs unit-test binaries and CLI test scripts; every check prints one line,
# "ok NAME" or "not ok NAME: why". A program that exits non-zero without
# having reported a failure counts as one failure. Ends with the plain line
# "N passed, N failed".
#   tests/run.sh UNIT... -- SCRIPT...
# The first line names the CPU and its vector ISA, so a failure report says
# where it happened (kernels and compilers differ per ISA); GR_TEST_BUILD, set by
# the Makefile, names the builds under test.
set -u
pass=0 fail=0
root=$(cd "$(dirname "$0")/.." && pwd)
export GR_ROOT="$root" GR_BIN="$root/bin"
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
cpu_isa=$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1 | tr ' ' '\n' |
    grep -E '^(sse4_2|avx|avx2|fma|f16c|avx_vnni|avx512[a-z0-9_]*|amx[a-z0-9_]*)$' | paste -sd ' ')
echo "# cpu: ${cpu_model:-unknown} ($(nproc 2>/dev/null || echo ?) cores); isa: ${cpu_isa:-none}; builds: ${GR_TEST_BUILD:-native}"
run_one() {
    local out rc label
    out=$("$@" 2>&1); rc=$?
    # a unit binary of another build (build-v3/tests/test_x) keeps its build in its name
    label=$(basename "${@: -1}")
    case "${@: -1}" in build-*/tests/*) label="${@: -1}"; label="${label%%/*}/$(basename "$label")" ;; esac
    local p f
    p=$(printf '%s\n' "$out" | grep -c '^ok ' || true)
    f=$(printf '%s\n' "$out" | grep -c '^not ok ' || true)
    if [ "$label" != "$(basename "${@: -1}")" ]; then
        printf '%s\n' "$out" | grep -E '^(not ok |# )' | sed "s|^not ok |not ok ${label%%/*}: |" || true
    else
        printf '%s\n' "$out" | grep -E '^(not ok |# )' || true
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "not ok $*: exited with status $rc"
        printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
        f=1
    fi
    echo "$label: $p passed, $f failed" >&2
    pass=$((pass + p)); fail=$((fail + f))
}
mode=unit
for arg in "$@"; do
    if [ "$arg" = "--" ]; then mode=cli; continue; fi
    if [ "$mode" = unit ]; then run_one "$arg"; else run_one bash "$arg"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
