#!/usr/bin/env bash
# gr-classify --state as cron runs it, on SmolLM2-135M (GGUF, 2 generated
# tokens): a log that grows between runs, is rotated once by rename and once
# by copytruncate, with a SIGKILL in the middle of one run, a run killed
# before saving its state, a torn verdict line, and two runs at once on one
# state. At the end every complete line has exactly one verdict (or, if bad,
# one reject), none has two, and a partial last line was moderated only once
# it was complete.
. "$(dirname "$0")/../lib.sh"
C=$GR_BIN/gr-classify

# usage errors need no model
expect cron_usage_no_output 2 "$C" -m x --state "$T/st" "$T/log"
expect cron_usage_stdin 2 "$C" -m x --state "$T/st" -o "$T/v" -
expect cron_usage_no_logs 2 "$C" -m x --state "$T/st" -o "$T/v"
expect cron_usage_rejects_alone 2 "$C" -m x --rejects "$T/r" "$T/log"
expect cron_usage_shard 2 "$C" -m x --shard 0/2 "$T/log"
expect cron_usage_state_is_log 2 "$C" -m x --state "$T/some.log" -o "$T/v" "$T/some.log"
expect cron_usage_rejects_is_output 2 "$C" -m x --state "$T/st" --rejects "$T/v" -o "$T/v" "$T/some.log"
expect cron_missing_log 1 "$C" -m x --state "$T/st" -o "$T/v" "$T/nope.jsonl"
grep_check cron_missing_log_msg "$T/err" "nope.jsonl: No such file"
printf 'gr-classify-state 1\nlog dev=1\n' > "$T/badstate"
echo '{"prompt":"x"}' > "$T/some.log"
expect cron_bad_state 1 "$C" -m x --state "$T/badstate" -o "$T/v" "$T/some.log"
grep_check cron_bad_state_msg "$T/err" "badstate:2: "

MODEL=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip cron: model download failed: $(head -c 200 "$T/fetch.err")"; exit 0; fi
if [ "$rc" -ne 0 ]; then fail cron_fetch "fetch-test-model exit $rc: $(head -c 300 "$T/fetch.err")"; exit 0; fi

L=$T/app.jsonl V=$T/verdicts.jsonl R=$T/rejects.jsonl S=$T/app.state
run() { "$C" -m "$MODEL" --max-tokens 2 --batch 2 --threads 2 --state "$S" --rejects "$R" -o "$V" "$@" "$L"; }
add() { for i in $(seq "$2" "$3"); do printf '{"n":%d,"prompt":"message %d"}\n' "$i" "$i" >> "$1"; done; }
ns() { jq -r '.n' "$V" | sort -n | paste -sd ' '; }

# 1. lines 1-5, a line that is not JSON, a partial last line (the writer is mid-line)
add "$L" 1 5
echo 'not json at all' >> "$L"
printf '{"n":6,"pro' >> "$L"
expect cron_first_run 0 run
[ "$(ns)" = "1 2 3 4 5" ] && ok cron_first_verdicts || fail cron_first_verdicts "n: $(ns)"
jq -e -s 'length == 1 and .[0].source.line == 6 and .[0].source.offset == 145 and (.[0].source.file | endswith("app.jsonl"))
          and (.[0].reason | startswith("not JSON")) and .[0].text == "not json at all"' "$R" >/dev/null \
    && ok cron_reject_record || fail cron_reject_record "$(cat "$R")"
jq -e -s 'map(.source.line) == [1,2,3,4,5] and (map(.source.offset) | .[0] == 0 and .[1] == 29) and all(.source.gen == 0)
          and all(.id | test("app.jsonl:0:[0-9]+$"))' "$V" >/dev/null \
    && ok cron_source_and_ids || fail cron_source_and_ids "$(jq -c '[.id, .source]' "$V" | head -3)"
grep -Eq '^log dev=[0-9]+ ino=[0-9]+ gen=0 offset=161 line=6 fp=161:[0-9a-f]{16} path=' "$S" \
    && ok cron_state_line || fail cron_state_line "$(cat "$S")"

# 2. the partial line completed, two more, one the guard cannot read
printf 'mpt":"message 6"}\n' >> "$L"
add "$L" 7 8
echo '{"n":9,"text":"no prompt here"}' >> "$L"
expect cron_append_run 0 run
# one summary line at the end: the logs' figures and the run's in the same line
[ "$(grep -c 'records: .* written' "$T/err")" = 1 ] && grep -Eq 'new lines: .*; [0-9]+ records: .* records/s' "$T/err" \
    && ok cron_one_summary_line || fail cron_one_summary_line "$(cat "$T/err")"
[ "$(ns)" = "1 2 3 4 5 6 7 8" ] && ok cron_partial_once_complete || fail cron_partial_once_complete "n: $(ns)"
jq -e -s 'length == 2 and .[1].source.line == 10 and (.[1].reason | test("neither"))' "$R" >/dev/null \
    && ok cron_reject_unreadable || fail cron_reject_unreadable "$(cat "$R")"
expect cron_nothing_new 0 run
grep_check cron_nothing_new_summary "$T/err" "0 new lines"

# 3. rename rotation: the writer still appends to the old file after the
# rename, then the new file starts; this run is killed by SIGKILL mid-way
add "$L" 10 19
mv "$L" "$L.1"
add "$L.1" 20 20
add "$L" 21 23
printf '{"n":24,' >> "$L"
before=$(wc -l < "$V")
"$C" -m "$MODEL" --max-tokens 2 --batch 1 --threads 1 --state "$S" --rejects "$R" -o "$V" "$L" 2>"$T/killed.err" &
pid=$!
for _ in $(seq 1 3000); do
    [ "$(wc -l < "$V")" -gt "$before" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
exec 3>&2 2>/dev/null # bash's own "Killed" notice
kill -9 "$pid"
wait "$pid"
krc=$?
exec 2>&3 3>&-
if [ "$krc" -eq 137 ]; then
    echo "# cron: SIGKILL after $(( $(wc -l < "$V") - before )) of 14 new verdicts"
else
    echo "# cron: the run to be killed had already finished (status $krc)"
fi
expect cron_after_kill 0 run
[ "$(ns)" = "$(seq 1 8 | paste -sd ' ') $(seq 10 23 | paste -sd ' ')" ] \
    && ok cron_rename_rotation || fail cron_rename_rotation "n: $(ns)"
jq -e -s 'map(select(.n == 20))[0].source | (.file | endswith("app.jsonl.1")) and .line == 21 and .gen == 0' "$V" >/dev/null \
    && ok cron_old_tail_from_rotated || fail cron_old_tail_from_rotated "$(jq -c 'select(.n == 20) | .source' "$V")"
jq -e -s 'map(select(.n == 21))[0].source | (.file | endswith("app.jsonl")) and .line == 1 and .offset == 0 and .gen == 1' "$V" >/dev/null \
    && ok cron_new_file_from_zero || fail cron_new_file_from_zero "$(jq -c 'select(.n == 21) | .source' "$V")"

# 4. killed after writing its verdicts but before replacing the state (the
# old state restored), and the last verdict torn mid-write: the rerun writes
# the torn one again and nothing else
printf '"prompt":"message 24"}\n' >> "$L"
add "$L" 25 26
cp "$S" "$T/state.before"
expect cron_run4 0 run
cp "$T/state.before" "$S"
last=$(tail -n 1 "$V")
sed -i '$ d' "$V"
printf '%s' "${last:0:40}" >> "$V"
expect cron_rerun_after_state_loss 0 run
grep_check cron_rerun_skips_done "$T/err" "3 new lines: 1 records, .* 2 already written by an interrupted run; [0-9]* records: "
grep_check cron_rerun_writes_one "$T/err" "interrupted run; 1 records: 1 written"
[ "$(ns)" = "$(seq 1 8 | paste -sd ' ') $(seq 10 26 | paste -sd ' ')" ] \
    && ok cron_no_double_after_state_loss || fail cron_no_double_after_state_loss "n: $(ns)"

# 5. copytruncate, after a run that wrote the verdicts of lines 27-28 but was
# killed before saving its state: the log is copied to .1 (the old .1 shifted
# to .2) and truncated in place, and the writer goes on in the truncated file.
# The rerun reads 27-28 again from the copy and knows them done.
add "$L" 27 28
cp "$S" "$T/state.before"
expect cron_run5 0 run
cp "$T/state.before" "$S"
mv "$L.1" "$L.2"
cp "$L" "$L.1"
: > "$L"
add "$L" 29 30
expect cron_copytruncate_run 0 run
grep_check cron_copytruncate_skips_done "$T/err" "4 new lines: 2 records, .* 2 already written by an interrupted run; [0-9]* records: "
[ "$(ns)" = "$(seq 1 8 | paste -sd ' ') $(seq 10 30 | paste -sd ' ')" ] \
    && ok cron_copytruncate || fail cron_copytruncate "n: $(ns)"
jq -e -s '(map(select(.n == 27))[0].source | (.file | endswith("app.jsonl")) and .gen == 1) and
          (map(select(.n == 29))[0].source | .line == 1 and .offset == 0 and .gen == 2)' "$V" >/dev/null \
    && ok cron_copytruncate_sources || fail cron_copytruncate_sources "$(jq -c 'select(.n >= 27) | .source' "$V")"

# SIGTERM mid-run: exit 143, what was written is kept, the next run goes on
add "$L" 31 40
before=$(wc -l < "$V")
"$C" -m "$MODEL" --max-tokens 2 --batch 1 --threads 1 --state "$S" --rejects "$R" -o "$V" "$L" 2>"$T/term.err" &
pid=$!
for _ in $(seq 1 3000); do
    [ "$(wc -l < "$V")" -gt "$before" ] && break
    sleep 0.01
done
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rc=$?
if [ "$rc" -eq 143 ]; then
    ok cron_sigterm_status
    grep_check cron_sigterm_msg "$T/term.err" "stopped by SIGTERM"
elif [ "$rc" -eq 0 ]; then
    echo "# cron: the run to be stopped had already finished"
else
    fail cron_sigterm_status "exit $rc: $(head -c 300 "$T/term.err")"
fi
expect cron_after_sigterm 0 run
[ "$(ns)" = "$(seq 1 8 | paste -sd ' ') $(seq 10 40 | paste -sd ' ')" ] \
    && ok cron_sigterm_nothing_lost || fail cron_sigterm_nothing_lost "n: $(ns)"

# 6. two runs at once on one state: one moderates, the other exits 4 at once;
# with --wait the second waits for the first
add "$L" 41 44
run 2>"$T/a.err" &
pa=$!
for _ in $(seq 1 1000); do [ -e "$S.lock" ] && break; sleep 0.01; done
expect cron_second_run_locked 4 run
grep_check cron_locked_msg "$T/err" "another run"
wait "$pa"
[ $? -eq 0 ] && ok cron_first_of_two || fail cron_first_of_two "$(cat "$T/a.err")"
add "$L" 45 46
run 2>"$T/a.err" &
pa=$!
for _ in $(seq 1 1000); do [ -e "$S.lock" ] && break; sleep 0.01; done
expect cron_wait_run 0 run --wait
wait "$pa"
[ $? -eq 0 ] && ok cron_first_of_waited || fail cron_first_of_waited "$(cat "$T/a.err")"

# only a bad line is new: no model loaded, --fail-on unverified still pages (3),
# and --summary-json carries the logs' counts
echo '{"n":47,"broken' >> "$L"
echo >> "$L"
expect cron_fail_on_reject 3 run --fail-on unverified --summary-json "$T/sum.json"
jq -e '.state.rejects == 1 and .state.lines == 2 and .state.blank == 1 and .exit_status == 3 and .written == 0' "$T/sum.json" >/dev/null \
    && ok cron_summary_json || fail cron_summary_json "$(cat "$T/sum.json")"

# every complete line: exactly one verdict or one reject
want="$(seq 1 8 | paste -sd ' ') $(seq 10 46 | paste -sd ' ')"
[ "$(ns)" = "$want" ] && ok cron_every_line_once || fail cron_every_line_once "n: $(ns)"
[ -z "$(jq -r '.n' "$V" | sort | uniq -d)" ] && ok cron_no_line_twice || fail cron_no_line_twice "doubled: $(jq -r '.n' "$V" | sort | uniq -d | paste -sd ' ')"
[ "$(wc -l < "$R")" -eq 3 ] && ok cron_rejects_once || fail cron_rejects_once "$(wc -l < "$R") rejects"
[ -z "$(jq -c '[.source.log, .source.gen, .source.offset]' "$V" | sort | uniq -d)" ] && [ -z "$(jq -r .id "$V" | sort | uniq -d)" ] \
    && ok cron_sources_unique || fail cron_sources_unique "a source or an id twice"
ls -A "$T" | grep -Eq '\.(tmp|input|lock)' && fail cron_no_leftovers "$(ls -A "$T")" || ok cron_no_leftovers

# the shipped logrotate stanza parses (when logrotate is installed)
if command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ]; then
    LR=$(command -v logrotate || echo /usr/sbin/logrotate)
    sed "s#/var/log/app#$T#g; s#/var/lib/gr#$T#g; s/create 0640 app app/create/" \
        "$GR_ROOT/scripts/cron/logrotate.example" > "$T/lr.conf"
    cp "$T/app.jsonl" "$T/requests.jsonl"
    expect cron_logrotate_stanza 0 "$LR" -d -s "$T/lr.state" "$T/lr.conf"
else
    echo "# skip cron_logrotate_stanza: logrotate not installed"
fi
