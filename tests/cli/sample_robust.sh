#!/usr/bin/env bash
# gr-sample loses and doubles nothing (issue 12 part 2), as gr-classify
# (classify_robust.sh): over-long records, the output lock (status 4), --resume
# keyed on (record fingerprint, k), output != input, samples flushed as they
# finish (SIGKILL), SIGTERM / SIGINT (143 / 130, no temporary left).
# Override the binary with GR_SAMPLE=... to run these checks on another build.
. "$(dirname "$0")/../lib.sh"
S=${GR_SAMPLE:-$GR_BIN/gr-sample}

MODEL=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip sample_robust: model download failed: $(head -c 200 "$T/fetch.err")"; exit 0; fi
if [ "$rc" -ne 0 ]; then fail sample_robust_fetch "fetch-test-model exit $rc: $(head -c 300 "$T/fetch.err")"; exit 0; fi
run() { "$S" -m "$MODEL" --threads 2 "$@"; }
bg() { "$S" -m "$MODEL" --threads 2 "$@" & bg=$!; }
lines() { if [ -e "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
wait_for() { local i; for i in $(seq 600); do "$@" && return 0; sleep 0.1; done; return 1; }

for i in 1 2 3; do printf '{"instruction":"Classify.","input":"Item %d: is it fine?","output":"unharmful"}\n' $i; done > "$T/three.jsonl"

# an over-long record, alone and between others: rejected up front with `error`
python3 -c 'import sys; sys.stdout.write("{\"instruction\":\"Classify.\",\"input\":\"" + "word " * 100000 + "\",\"output\":\"harmful\"}\n")' > "$T/long.jsonl"
{ head -n 1 "$T/three.jsonl"; cat "$T/long.jsonl"; sed -n 2p "$T/three.jsonl"; } > "$T/mixed.jsonl"
( ulimit -v 3000000; run -k 2 --max-tokens 4 "$T/long.jsonl" -o "$T/long.out" ) >"$T/out" 2>"$T/err"; rc=$?
[ "$rc" -eq 0 ] && [ "$(jq -r '[.k, .tokens, (.error | test("longer than the model.s context"))] | @text' "$T/long.out" | tr '\n' ' ')" = "[0,0,true] [1,0,true] " ] \
    && ok sample_long_alone || fail sample_long_alone "exit $rc: $(head -c 300 "$T/err")"
grep_check sample_long_counted "$T/err" "2 rejected as too long"
( ulimit -v 3000000; run -k 2 --max-tokens 4 "$T/mixed.jsonl" -o "$T/mixed.out" ) >"$T/out" 2>"$T/err"; rc=$?
[ "$rc" -eq 0 ] && [ "$(jq -r '"\(.id)/\(.k)/\(has("error"))"' "$T/mixed.out" | tr '\n' ' ')" = "0/0/false 0/1/false 1/0/true 1/1/true 2/0/false 2/1/false " ] \
    && ok sample_long_in_middle || fail sample_long_in_middle "exit $rc: $(jq -c '[.id,.k,.error]' "$T/mixed.out" 2>/dev/null | tr '\n' ' ')"

# the output lock
bg -k 2 --batch 1 --max-tokens 48 "$T/three.jsonl" -o "$T/locked.jsonl" --resume >/dev/null 2>"$T/bg.err"
if wait_for test -e "$T/locked.jsonl.lock"; then
    expect sample_second_run_locked 4 run -k 2 --max-tokens 4 "$T/three.jsonl" -o "$T/locked.jsonl" --resume
    grep_check sample_locked_message "$T/err" "another run \(pid $bg\) is writing it"
else
    fail sample_second_run_locked "no lock file appeared: $(head -c 300 "$T/bg.err")"
fi
wait $bg; rc=$?
[ "$rc" -eq 0 ] && [ "$(jq -r '"\(.id)/\(.k)"' "$T/locked.jsonl" | sort -u | wc -l)" -eq 6 ] && [ "$(lines "$T/locked.jsonl")" -eq 6 ] \
    && ok sample_locked_each_once || fail sample_locked_each_once "exit $rc, $(lines "$T/locked.jsonl") lines"

# position ids collide across files; the records are still different
printf '{"instruction":"I","input":"alpha","output":"harmful"}\n' > "$T/A.jsonl"
printf '{"instruction":"I","input":"beta","output":"harmful"}\n' > "$T/B.jsonl"
expect sample_resume_a 0 run -k 2 --max-tokens 2 "$T/A.jsonl" -o "$T/ab.jsonl" --resume
expect sample_resume_b 0 run -k 2 --max-tokens 2 "$T/B.jsonl" -o "$T/ab.jsonl" --resume
grep_check sample_resume_other_file "$T/err" "2 samples written, 0 already done"
expect sample_resume_again 0 run -k 3 --max-tokens 2 "$T/B.jsonl" -o "$T/ab.jsonl" --resume
grep_check sample_resume_more_k "$T/err" "1 samples written, 2 already done"
cp "$T/A.jsonl" "$T/self.jsonl"
expect sample_output_is_input 2 run --max-tokens 2 "$T/self.jsonl" -o "$T/self.jsonl" --resume

# SIGKILL keeps every finished sample; --resume completes the same output
expect sample_reference 0 run -k 2 --batch 1 --max-tokens 24 "$T/three.jsonl" -o "$T/ref.jsonl"
bg -k 2 --batch 1 --max-tokens 24 "$T/three.jsonl" -o "$T/killed.jsonl" --resume >/dev/null 2>"$T/bg.err"
if wait_for has_lines "$T/killed.jsonl" 2; then
    kill -KILL $bg; wait $bg 2>/dev/null
    n=$(lines "$T/killed.jsonl")
    [ "$n" -ge 2 ] && [ "$n" -lt 6 ] && ok sample_sigkill_keeps_finished || fail sample_sigkill_keeps_finished "$n lines"
else
    kill -KILL $bg 2>/dev/null; wait $bg 2>/dev/null
    fail sample_sigkill_keeps_finished "fewer than 2 samples appeared: $(head -c 300 "$T/bg.err")"
fi
expect sample_sigkill_resume 0 run -k 2 --batch 1 --max-tokens 24 "$T/three.jsonl" -o "$T/killed.jsonl" --resume
cmp -s "$T/ref.jsonl" "$T/killed.jsonl" && ok sample_sigkill_resume_same || fail sample_sigkill_resume_same "$(diff "$T/ref.jsonl" "$T/killed.jsonl" | head -c 300)"

# SIGTERM without --resume: 143, nothing under the final name, no temporary
bg -k 2 --batch 1 --max-tokens 48 "$T/three.jsonl" -o "$T/term.jsonl" >/dev/null 2>"$T/bg.err"
wait_for test -e "$T/term.jsonl.lock"; sleep 1; kill -TERM $bg; wait $bg; rc=$?
[ "$rc" -eq 143 ] && ok sample_sigterm_status || fail sample_sigterm_status "exit $rc: $(head -c 300 "$T/bg.err")"
ls -a "$T" | grep -q '^\.term\.jsonl\.tmp\.' && fail sample_sigterm_no_temp "temporary left" || ok sample_sigterm_no_temp
[ ! -e "$T/term.jsonl" ] && ok sample_sigterm_atomic || fail sample_sigterm_atomic "output left"
# SIGINT with --resume: 130, what is complete kept
bg -k 2 --batch 1 --max-tokens 24 "$T/three.jsonl" -o "$T/int.jsonl" --resume >/dev/null 2>"$T/bg.err"
wait_for has_lines "$T/int.jsonl" 1; kill -INT $bg; wait $bg; rc=$?
[ "$rc" -eq 130 ] && [ "$(lines "$T/int.jsonl")" -ge 1 ] && ok sample_sigint || fail sample_sigint "exit $rc, $(lines "$T/int.jsonl") lines"
expect sample_sigint_resume 0 run -k 2 --batch 1 --max-tokens 24 "$T/three.jsonl" -o "$T/int.jsonl" --resume
cmp -s "$T/ref.jsonl" "$T/int.jsonl" && ok sample_sigint_resume_same || fail sample_sigint_resume_same "$(diff "$T/ref.jsonl" "$T/int.jsonl" | head -c 300)"
