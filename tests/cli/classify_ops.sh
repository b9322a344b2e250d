#!/usr/bin/env bash
# gr-classify / gr-sample for operators (issue 14 parts 2 and 6, issue 12 part
# 4): --token-ids, --replace-invalid, --fail-on (exit 3), unverified verdicts,
# the summary line and --summary-json, --progress / --quiet, --log.
. "$(dirname "$0")/../lib.sh"
C=$GR_BIN/gr-classify
S=$GR_BIN/gr-sample
expect classify_fail_on_bad_value 2 "$C" -m x --fail-on nope
grep_check classify_fail_on_bad_value_msg "$T/err" "'nope' is not harmful, refusal, unverified or any"
expect sample_has_no_fail_on 2 "$S" -m x --fail-on any

MODEL=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip classify_ops: model download failed: $(head -c 200 "$T/fetch.err")"; exit 0; fi
if [ "$rc" -ne 0 ]; then fail classify_ops_fetch "fetch-test-model exit $rc: $(head -c 300 "$T/fetch.err")"; exit 0; fi
run() { "$C" -m "$MODEL" --threads 2 "$@"; }
for i in 1 2 3 4; do printf '{"id":"r%d","prompt":"Question number %d: how are you?","response":"Fine %d."}\n' $i $i $i; done > "$T/four.jsonl"

# --token-ids: the generated ids, which decode to the reasoning
expect classify_token_ids 0 run --max-tokens 8 --token-ids "$T/four.jsonl" -o "$T/ids.jsonl"
jq -e '(.token_ids | type) == "array" and (.token_ids | length) == .tokens and all(.token_ids[]; type == "number")' \
    "$T/ids.jsonl" >/dev/null && ok classify_token_ids_fields || fail classify_token_ids_fields "$(head -c 300 "$T/ids.jsonl")"
jq -c '{ids: .token_ids, reasoning}' "$T/ids.jsonl" | "$GR_BIN/gr-tokenize" --decode --skip-special -t "$MODEL" 2>/dev/null \
    | jq -e 'select(.text != .reasoning)' > "$T/mismatch" 2>&1
[ -s "$T/mismatch" ] && fail classify_token_ids_decode "$(head -c 300 "$T/mismatch")" || ok classify_token_ids_decode
expect classify_token_ids_batch1 0 run --max-tokens 8 --token-ids --batch 1 "$T/four.jsonl" -o "$T/ids1.jsonl"
cmp -s "$T/ids.jsonl" "$T/ids1.jsonl" && ok classify_token_ids_batch_invariant || fail classify_token_ids_batch_invariant "differ"
printf '{"instruction":"I","input":"x","output":"harmful"}\n' > "$T/alp.jsonl"
expect sample_token_ids 0 "$S" -m "$MODEL" -k 2 --max-tokens 6 --token-ids "$T/alp.jsonl" -o "$T/sids.jsonl"
[ "$(jq -s 'map(select((.token_ids | length) == .tokens and .tokens > 0)) | length' "$T/sids.jsonl")" = 2 ] \
    && ok sample_token_ids_fields || fail sample_token_ids_fields "$(head -c 300 "$T/sids.jsonl")"

# --replace-invalid: a log with one bad byte is moderated (and the count said)
printf '{"id":"bad","prompt":"caf\xe9 au lait"}\n' > "$T/latin1.jsonl"
expect classify_invalid_utf8_refused 1 run --max-tokens 2 "$T/latin1.jsonl" -o "$T/l.jsonl"
grep_check classify_invalid_utf8_suggests "$T/err" "latin1.jsonl:1: .*--replace-invalid"
expect classify_replace_invalid 0 run --max-tokens 2 --replace-invalid "$T/latin1.jsonl" -o "$T/l.jsonl"
jq -e '.prompt == "caf\ufffd au lait"' "$T/l.jsonl" >/dev/null && ok classify_replace_invalid_text || fail classify_replace_invalid_text "$(cat "$T/l.jsonl" | head -c 200)"
grep_check classify_replace_invalid_counted "$T/err" "1 invalid UTF-8 sequences replaced"
expect sample_replace_invalid 0 "$S" -m "$MODEL" -k 1 --max-tokens 2 --replace-invalid "$T/latin1.jsonl" -o "$T/sl.jsonl"

# unverified verdicts (this tiny model writes no answer block in 8 tokens):
# parse_ok false, pred and scores null, never counted as safe, --fail-on unverified = 3
jq -e 'select(.parse_ok == false) | .pred == {request: null, completion: null, response: null}
       and .scores == {request: null, completion: null, response: null}' "$T/ids.jsonl" >/dev/null \
    && ok classify_unverified_nulls || fail classify_unverified_nulls "$(head -c 300 "$T/ids.jsonl")"
expect classify_fail_on_unverified 3 run --max-tokens 8 --fail-on unverified "$T/four.jsonl" -o "$T/f1.jsonl" \
    --summary-json "$T/sum.json"
grep_check classify_fail_on_message "$T/err" "4 verdicts matched --fail-on: exit status 3"
[ "$(wc -l < "$T/f1.jsonl")" -eq 4 ] && ok classify_fail_on_still_writes || fail classify_fail_on_still_writes "output incomplete"
expect classify_fail_on_any 3 run --max-tokens 8 --fail-on harmful --fail-on any "$T/four.jsonl" -o "$T/f2.jsonl"
expect classify_fail_on_harmful_only 0 run --max-tokens 8 --fail-on harmful,refusal "$T/four.jsonl" -o "$T/f3.jsonl"
grep_check classify_summary_line "$T/err" "4 records: 4 written, 0 already done, 0 skipped as bad, 0 rejected as too long; flagged: request harmful 0, completion refusal 0, response harmful 0; 4 unverified .*records/s, .*tokens/s\)"
jq -e '.records == 4 and .written == 4 and .unverified == 4 and .flagged == {request: 0, completion: 0, response: 0}
       and .fail_on_matched == 4 and .exit_status == 3 and .rejected == 0 and .generated_tokens > 0
       and .tokens_per_s > 0 and .records_per_s > 0 and .stopped_by == null' "$T/sum.json" >/dev/null \
    && ok classify_summary_json || fail classify_summary_json "$(head -c 400 "$T/sum.json")"

# progress (forced off a terminal), --quiet, --log
expect classify_progress 0 run --batch 1 --max-tokens 24 --progress "$T/four.jsonl" -o "$T/p.jsonl"
grep_check classify_progress_line "$T/err" "^gr-classify: [0-9]+/4 records, [0-9.]+ records/s, [0-9.]+ tokens/s"
grep_check classify_progress_eta "$T/err" ", ETA [0-9]+s"
expect classify_quiet 0 run --max-tokens 2 --progress --quiet "$T/four.jsonl" -o "$T/q.jsonl"
[ ! -s "$T/err" ] && ok classify_quiet_silent || fail classify_quiet_silent "$(head -c 200 "$T/err")"
expect classify_no_progress_off_tty 0 run --max-tokens 24 --batch 1 "$T/four.jsonl" -o "$T/np.jsonl"
grep -q 'records/s, .* tokens/s, ETA' "$T/err" && fail classify_no_progress_off_tty_line "progress without --progress" \
    || ok classify_no_progress_off_tty_line
expect classify_log 0 run --max-tokens 6 --batch 2 --log "$T/steps.jsonl" "$T/four.jsonl" -o "$T/lg.jsonl"
jq -s -e 'length > 0 and all(.[]; has("step") and has("seqs") and has("fed") and has("records") and has("tokens") and has("elapsed"))
          and (map(.step) == [range(1; length + 1)]) and .[-1].records <= 4 and all(.[]; .seqs >= 1 and .seqs <= 2)' \
    "$T/steps.jsonl" >/dev/null && ok classify_log_lines || fail classify_log_lines "$(head -c 300 "$T/steps.jsonl")"
expect classify_log_unwritable 1 run --max-tokens 2 --log /nonexistent/dir/log.jsonl "$T/four.jsonl" -o "$T/x.jsonl"
expect sample_progress_log 0 "$S" -m "$MODEL" -k 2 --batch 1 --max-tokens 24 --progress --log "$T/ss.jsonl" "$T/four.jsonl" -o "$T/sp.jsonl"
grep_check sample_progress_line "$T/err" "^gr-sample: [0-9]+/8 samples, [0-9.]+ samples/s"
[ -s "$T/ss.jsonl" ] && jq -e . "$T/ss.jsonl" >/dev/null && ok sample_log_lines || fail sample_log_lines "empty or not JSON"
expect sample_summary_json 0 "$S" -m "$MODEL" -k 2 --max-tokens 4 "$T/four.jsonl" -o "$T/sj.jsonl" --summary-json "$T/ssum.json"
jq -e '.samples_written == 8 and .records == 4 and .exit_status == 0' "$T/ssum.json" >/dev/null \
    && ok sample_summary_json_fields || fail sample_summary_json_fields "$(head -c 300 "$T/ssum.json")"
