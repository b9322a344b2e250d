#!/usr/bin/env bash
# gr-classify loses and doubles nothing (issue 12 part 2): over-long records
# rejected up front whatever their position, one run per output (lock, status
# 4), --resume keyed on the record (fingerprint), output != input, a verdict
# flushed as soon as it and all before it are done (SIGKILL), and SIGINT /
# SIGTERM stopping cleanly (status 130 / 143, no temporary left).
# Override the binary with GR_CLASSIFY=... to run these checks on another build.
. "$(dirname "$0")/../lib.sh"
C=${GR_CLASSIFY:-$GR_BIN/gr-classify}

MODEL=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip classify_robust: model download failed: $(head -c 200 "$T/fetch.err")"; exit 0; fi
if [ "$rc" -ne 0 ]; then fail classify_robust_fetch "fetch-test-model exit $rc: $(head -c 300 "$T/fetch.err")"; exit 0; fi
run() { "$C" -m "$MODEL" --threads 2 "$@"; }
# bg CMD...: the classifier in the background, $bg its own pid (not a subshell's)
bg() { "$C" -m "$MODEL" --threads 2 "$@" & bg=$!; }
lines() { if [ -e "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
# wait_for CMD...: polls CMD (up to 60 s) until it succeeds
wait_for() { local i; for i in $(seq 600); do "$@" && return 0; sleep 0.1; done; return 1; }

# six short interaction records with ids
for i in 1 2 3 4 5 6; do printf '{"id":"r%d","prompt":"Question number %d: how are you?","response":"Fine %d."}\n' $i $i $i; done > "$T/six.jsonl"

# ---- an over-long record: rejected up front, counted, whatever its position --
# ~100k tokens: a KV cache of ~4.6 GB if sized from it (and its shared prefix
# run first when it is alone in the window); under a 3 GB address-space limit
# that aborts. The limit leaves the model and a normal window room.
python3 -c 'import sys; sys.stdout.write("{\"id\":\"long\",\"prompt\":\"" + "word " * 100000 + "\"}\n")' > "$T/long.jsonl"
( ulimit -v 3000000; run --max-tokens 4 "$T/long.jsonl" -o "$T/long.out" ) >"$T/out" 2>"$T/err"; rc=$?
[ "$rc" -eq 0 ] && ok classify_long_alone_status || fail classify_long_alone_status "exit $rc: $(head -c 300 "$T/err")"
jq -e '.id == "long" and (.error | test("longer than the model.s context")) and .tokens == 0 and .parse_ok == false
       and .pred.request == null' "$T/long.out" >/dev/null 2>&1 \
    && ok classify_long_alone_error_field || fail classify_long_alone_error_field "$(head -c 200 "$T/long.out" 2>/dev/null)"
grep_check classify_long_counted "$T/err" "1 rejected as too long"
ls -a "$T" | grep -q '^\.long\.out\.tmp' && fail classify_long_no_temp "temporary left" || ok classify_long_no_temp
# the same record between two normal ones: the same answer, the others answered
{ head -n 1 "$T/six.jsonl"; cat "$T/long.jsonl"; sed -n 2p "$T/six.jsonl"; } > "$T/mixed.jsonl"
( ulimit -v 3000000; run --max-tokens 4 "$T/mixed.jsonl" -o "$T/mixed.out" ) >"$T/out" 2>"$T/err"; rc=$?
[ "$rc" -eq 0 ] && [ "$(jq -r '.id' "$T/mixed.out" | tr '\n' ' ')" = "r1 long r2 " ] \
    && [ "$(jq -r 'select(.error) | .id' "$T/mixed.out")" = long ] \
    && ok classify_long_in_middle || fail classify_long_in_middle "exit $rc: $(head -c 300 "$T/err")"
# a 20 MB line: rejected from its length alone, without tokenizing it
python3 -c 'import sys; sys.stdout.write("{\"prompt\":\"" + "x" * 20000000 + "\"}\n")' > "$T/huge.jsonl"
expect classify_huge_line 0 run --max-tokens 4 "$T/huge.jsonl" -o "$T/huge.out"
jq -e '.error | test("bytes: at least")' "$T/huge.out" >/dev/null 2>&1 \
    && ok classify_huge_line_error || fail classify_huge_line_error "$(head -c 200 "$T/huge.out" | tail -c 120)"
rm -f "$T/huge.jsonl" "$T/huge.out"

# ---- one run per output: a second run exits 4 -----------------------------
bg --batch 1 --max-tokens 48 "$T/six.jsonl" -o "$T/locked.jsonl" --resume >"$T/bg.out" 2>"$T/bg.err"
if wait_for test -e "$T/locked.jsonl.lock"; then
    expect classify_second_run_locked 4 run --max-tokens 4 "$T/six.jsonl" -o "$T/locked.jsonl" --resume
    grep_check classify_locked_message "$T/err" "locked.jsonl: another run \(pid $bg\) is writing it"
else
    fail classify_second_run_locked "no lock file appeared: $(head -c 300 "$T/bg.err")"
fi
wait $bg; rc=$?
[ "$rc" -eq 0 ] && [ "$(lines "$T/locked.jsonl")" -eq 6 ] && [ "$(jq -r .id "$T/locked.jsonl" | sort -u | wc -l)" -eq 6 ] \
    && ok classify_locked_each_once || fail classify_locked_each_once "exit $rc, $(lines "$T/locked.jsonl") lines"
[ ! -e "$T/locked.jsonl.lock" ] && ok classify_lock_removed || fail classify_lock_removed "lock file left"

# ---- --resume recognises only the same record ------------------------------
# records without ids at the same positions in two files are different records
printf '{"prompt":"alpha"}\n{"prompt":"beta"}\n' > "$T/A.jsonl"
printf '{"prompt":"gamma"}\n{"prompt":"delta"}\n' > "$T/B.jsonl"
expect classify_resume_file_a 0 run --max-tokens 2 "$T/A.jsonl" -o "$T/ab.jsonl" --resume
expect classify_resume_file_b 0 run --max-tokens 2 "$T/B.jsonl" -o "$T/ab.jsonl" --resume
grep_check classify_resume_other_file_done_none "$T/err" "2 written, 0 already done"
# the same id-less content at another line of the same file is another record
printf '{"prompt":"alpha"}\n{"prompt":"alpha"}\n' > "$T/same.jsonl"
expect classify_resume_idless_dup 0 run --max-tokens 2 "$T/same.jsonl" -o "$T/same.out" --resume
[ "$(lines "$T/same.out")" -eq 2 ] && ok classify_idless_dup_both || fail classify_idless_dup_both "$(lines "$T/same.out") lines"
# ids shared by different records (the README's --map id: .ts): three verdicts
# (the log grows: the first line moderated alone, then the other two appended)
printf '{"ts":5,"q":"one"}\n' > "$T/ts.jsonl"
expect classify_shared_ids_first 0 run --max-tokens 2 --map '{id: .ts, prompt: .q}' "$T/ts.jsonl" -o "$T/ts.out" --resume
printf '{"ts":5,"q":"two"}\n{"ts":5,"q":"three"}\n' >> "$T/ts.jsonl"
expect classify_shared_ids 0 run --max-tokens 2 --map '{id: .ts, prompt: .q}' "$T/ts.jsonl" -o "$T/ts.out" --resume
grep_check classify_shared_ids_not_skipped "$T/err" "2 written, 1 already done"
[ "$(jq -r .prompt "$T/ts.out" | tr '\n' ' ')" = "one two three " ] && ok classify_shared_ids_all \
    || fail classify_shared_ids_all "$(jq -c '[.id,.prompt]' "$T/ts.out" 2>/dev/null | tr '\n' ' ')"
expect classify_shared_ids_resume 0 run --max-tokens 2 --map '{id: .ts, prompt: .q}' "$T/ts.jsonl" -o "$T/ts.out" --resume
grep_check classify_shared_ids_resume_done "$T/err" "0 written, 3 already done"
# the same record twice (same id, same content): two verdicts, and both done on resume
printf '{"id":1,"prompt":"same"}\n{"id":1,"prompt":"same"}\n' > "$T/twice.jsonl"
expect classify_twice 0 run --max-tokens 2 "$T/twice.jsonl" -o "$T/twice.out" --resume
printf '{"id":1,"prompt":"same"}\n' >> "$T/twice.jsonl"
expect classify_twice_resume 0 run --max-tokens 2 "$T/twice.jsonl" -o "$T/twice.out" --resume
grep_check classify_twice_resume_counts "$T/err" "1 written, 2 already done"
# an output from an older version (no fingerprint) is not resumed blindly
printf '{"id":1,"prompt":"same","parse_ok":false}\n' > "$T/old.out"
expect classify_resume_old_output 1 run --max-tokens 2 "$T/twice.jsonl" -o "$T/old.out" --resume
grep_check classify_resume_old_output_msg "$T/err" "old.out:1: a record without a fingerprint"
# the output may not be an input
cp "$T/six.jsonl" "$T/self.jsonl"
expect classify_output_is_input 2 run --max-tokens 2 "$T/self.jsonl" -o "$T/self.jsonl" --resume
expect classify_output_is_input_path 2 run --max-tokens 2 "$T/self.jsonl" -o "$T/./self.jsonl"
cmp -s "$T/six.jsonl" "$T/self.jsonl" && ok classify_output_is_input_untouched || fail classify_output_is_input_untouched "input changed"

# ---- a verdict is written as soon as it and all before it are done --------
# reference: one uninterrupted run
expect classify_reference 0 run --batch 1 --max-tokens 24 "$T/six.jsonl" -o "$T/ref.jsonl"
bg --batch 1 --max-tokens 24 "$T/six.jsonl" -o "$T/killed.jsonl" --resume >/dev/null 2>"$T/bg.err"
if wait_for has_lines "$T/killed.jsonl" 2; then
    kill -KILL $bg; wait $bg 2>/dev/null
    n=$(lines "$T/killed.jsonl")
    [ "$n" -ge 2 ] && [ "$n" -lt 6 ] && ok classify_sigkill_keeps_finished || fail classify_sigkill_keeps_finished "$n lines after SIGKILL"
else
    kill -KILL $bg 2>/dev/null; wait $bg 2>/dev/null
    fail classify_sigkill_keeps_finished "fewer than 2 verdicts appeared: $(head -c 300 "$T/bg.err")"
fi
expect classify_sigkill_resume 0 run --batch 1 --max-tokens 24 "$T/six.jsonl" -o "$T/killed.jsonl" --resume
cmp -s "$T/ref.jsonl" "$T/killed.jsonl" && ok classify_sigkill_resume_same || fail classify_sigkill_resume_same "$(diff "$T/ref.jsonl" "$T/killed.jsonl" | head -c 300)"

# a dead run's temporary (SIGKILL without --resume) is removed by the next run
bg --batch 1 --max-tokens 24 "$T/six.jsonl" -o "$T/tmpd.jsonl" >/dev/null 2>&1
wait_for test -e "$T/tmpd.jsonl.lock"; sleep 0.5; kill -KILL $bg; wait $bg 2>/dev/null
ls -a "$T" | grep -q '^\.tmpd\.jsonl\.tmp\.' && ok classify_sigkill_leaves_temp || fail classify_sigkill_leaves_temp "no temporary to clean up: the check below tests nothing"
expect classify_after_kill 0 run --max-tokens 2 "$T/A.jsonl" -o "$T/tmpd.jsonl"
ls -a "$T" | grep -q '^\.tmpd\.jsonl\.tmp\.' && fail classify_stale_temp_removed "$(ls -a "$T" | grep tmpd)" \
    || ok classify_stale_temp_removed

# ---- SIGTERM / SIGINT: stop, keep what is complete, no temporary, 143 / 130 --
bg --batch 1 --max-tokens 48 "$T/six.jsonl" -o "$T/term.jsonl" >/dev/null 2>"$T/bg.err"
wait_for test -e "$T/term.jsonl.lock"; sleep 1; kill -TERM $bg; wait $bg; rc=$?
[ "$rc" -eq 143 ] && ok classify_sigterm_status || fail classify_sigterm_status "exit $rc: $(head -c 300 "$T/bg.err")"
ls -a "$T" | grep -q '^\.term\.jsonl\.tmp\.' && fail classify_sigterm_no_temp "temporary left" || ok classify_sigterm_no_temp
[ ! -e "$T/term.jsonl" ] && [ ! -e "$T/term.jsonl.lock" ] && ok classify_sigterm_atomic || fail classify_sigterm_atomic "output or lock left"
grep_check classify_sigterm_message "$T/bg.err" "stopped by SIGTERM"
bg --batch 1 --max-tokens 24 "$T/six.jsonl" -o "$T/int.jsonl" --resume >/dev/null 2>"$T/bg.err"
wait_for has_lines "$T/int.jsonl" 1; kill -INT $bg; wait $bg; rc=$?
[ "$rc" -eq 130 ] && ok classify_sigint_status || fail classify_sigint_status "exit $rc: $(head -c 300 "$T/bg.err")"
n=$(lines "$T/int.jsonl")
[ "$n" -ge 1 ] && ok classify_sigint_keeps || fail classify_sigint_keeps "$n lines"
expect classify_sigint_resume 0 run --batch 1 --max-tokens 24 "$T/six.jsonl" -o "$T/int.jsonl" --resume
cmp -s "$T/ref.jsonl" "$T/int.jsonl" && ok classify_sigint_resume_same || fail classify_sigint_resume_same "$(diff "$T/ref.jsonl" "$T/int.jsonl" | head -c 300)"
