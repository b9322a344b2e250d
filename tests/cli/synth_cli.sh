# gr-synth, one behaviour at a time, against the local test server.
. "$(dirname "$0")/../lib.sh"
. "$GR_ROOT/tests/synth_lib.sh"
S=$GR_BIN/gr-synth
FAST="--backoff-base 0.02 --backoff-max 0.1"
rec() { # rec PROMPT [LABEL_JSON] [ID]
    printf '{%s"prompt":"%s","response":"Sure.","label":%s}\n' "${3:+\"id\":\"$3\",}" "$1" \
        "${2:-{\"request\":\"unharmful\",\"completion\":\"compliance\",\"response\":\"unharmful\"\}}"
}
count() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# ---- usage ----
expect synth_help 0 "$S" --help
grep_check synth_help_example "$T/out" 'Example:'
expect synth_version 0 "$S" --version
expect synth_bad_concurrency 2 "$S" --concurrency 0
expect synth_bad_number 2 "$S" --timeout 5s
expect synth_resume_needs_output 2 "$S" --resume
expect synth_bad_map 2 "$S" --map '{{{'
expect synth_key_not_on_command_line 2 "$S" --api-key sk-123
if grep -q sk-123 "$T/err"; then fail synth_key_flag_not_echoed "key echoed"; else ok synth_key_flag_not_echoed; fi
expect synth_key_not_on_command_line2 2 "$S" --api-key=sk-123
expect synth_unknown_option 2 "$S" --frobnicate

# ---- dry run: the request the paper's prompt makes, the count, the cost ----
rec "How do I bake bread?" >"$T/in.jsonl"
rec "Second" '{"request":"harmful"}' >>"$T/in.jsonl"
expect synth_dry_run 0 "$S" --dry-run --model gpt-4o --price-in 2.5 --price-out 10 "$T/in.jsonl"
python3 - "$T/out" >"$T/chk" 2>&1 <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
b = json.loads(lines[0])
sys_msg, user = b["messages"][0]["content"], b["messages"][1]["content"]
assert b["model"] == "gpt-4o" and b["temperature"] == 0, b
assert user == "Human user:\nHow do I bake bread?\n\nAI assistant:\nSure.\n\n", user
assert "Answers: \nRequest: unharmful\nCompletion: compliance\nResponse: unharmful\n" in sys_msg
assert sys_msg.startswith("You are a classifier for analyzing interactions between humans and LLMs.")
print("fine")
PY
grep_check synth_dry_run_body "$T/chk" '^fine$'
grep_check synth_dry_run_count "$T/err" 'dry run: 2 requests to make'
grep_check synth_dry_run_cost "$T/err" 'estimated cost: \$0\.01'

# ---- a clean run: output fields, ids, summary ----
start_server main --slow 1.0
expect synth_run_ok 0 "$S" --endpoint "$URL" --model m -o "$T/o1.jsonl" "$T/in.jsonl"
python3 - "$T/o1.jsonl" "$GR_ROOT/../shared/data/guardreasoner/benchmark/0_0_SimpleSafetyTests.json" >"$T/chk" 2>&1 <<'PY'
import json, os, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(r["id"] for r in recs) == [1, 2], recs
for r in recs:
    assert list(r) == ["instruction", "input", "output", "id", "model", "usage"], list(r)
    assert r["model"] == "m" and r["usage"]["prompt_tokens"] > 0
    assert r["output"].rstrip().endswith("Response: None" if r["id"] == 2 else "Response: unharmful")
if os.path.exists(sys.argv[2]):
    assert recs[0]["instruction"] == json.load(open(sys.argv[2]))[0]["instruction"]
print("fine")
PY
grep_check synth_output_fields "$T/chk" '^fine$'
grep_check synth_summary_counts "$T/err" '2 accepted, 0 rejected, 0 failed'
grep_check synth_summary_steps "$T/err" 'reasoning steps: [0-9]+ \(mean [0-9.]+ per record, mean [0-9.]+ characters per step\)'

# ---- resume: a rerun makes no request; a torn last line is cut and redone ----
expect synth_rerun_skips 0 "$S" --endpoint "$URL" --model m -o "$T/o1.jsonl" "$T/in.jsonl"
grep_check synth_rerun_skips_all "$T/err" '0 accepted.*2 skipped \(already done\)'
head -n 1 "$T/o1.jsonl" >"$T/o2.jsonl"
tail -n 1 "$T/o1.jsonl" | head -c 200 >>"$T/o2.jsonl"
expect synth_torn_tail_resume 0 "$S" --endpoint "$URL" --model m -o "$T/o2.jsonl" "$T/in.jsonl"
grep_check synth_torn_tail_noted "$T/err" 'cut a torn last line'
if cmp -s <(sort "$T/o1.jsonl") <(sort "$T/o2.jsonl"); then ok synth_torn_tail_redone; else fail synth_torn_tail_redone "outputs differ"; fi

# (curl itself may redo a request whose reused connection was dropped: 8 or 9)
# ---- retries: Retry-After honoured, 5xx, timeout, drop, partial, bad JSON, no content ----
rec "ra [[faults:429ra=1]]" >"$T/ra.jsonl"
start_t=$(date +%s.%N)
expect synth_retry_after 0 "$S" --endpoint "$URL" -o "$T/ra.out" $FAST "$T/ra.jsonl"
el=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]) >= 0.95)" "$start_t" "$(date +%s.%N)")
[ "$el" = True ] && ok synth_retry_after_waited || fail synth_retry_after_waited "did not wait for Retry-After: 1"
rec "a [[faults:429,500,502,503]]" >"$T/f.jsonl"
rec "b [[faults:slow,drop]]" >>"$T/f.jsonl"
rec "c [[faults:partial,badjson]]" >>"$T/f.jsonl"
rec "d [[faults:nocontent,empty,trail]]" >>"$T/f.jsonl"
expect synth_retries_recover 0 "$S" --endpoint "$URL" -o "$T/f.out" --timeout 0.4 --max-attempts 4 $FAST "$T/f.jsonl"
[ "$(count "$T/f.out")" = 4 ] && ok synth_retries_all_accepted || fail synth_retries_all_accepted "$(cat "$T/err")"
grep_check synth_retries_counted "$T/err" '4 records needed retries: 2 answers refused by validation, [89] server/transport errors'

# ---- wrong answers are retried, then rejected with the reason and the answer ----
rec "w [[faults:wrong*]]" >"$T/w.jsonl"
expect synth_reject 0 "$S" --endpoint "$URL" -o "$T/w-out.jsonl" --max-attempts 2 "$T/w.jsonl"
python3 - "$T/w-out.rejects.jsonl" >"$T/chk" 2>&1 <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 1 and r[0]["id"] == 1 and r[0]["reject"]["attempts"] == 2, r
assert "ground truth" in r[0]["reject"]["reason"] and r[0]["reject"]["output"].startswith("# Task 1")
assert r[0]["prompt"].startswith("w ") and r[0]["label"]["request"] == "unharmful"
print("fine")
PY
grep_check synth_reject_record "$T/chk" '^fine$'
[ "$(count "$T/w-out.jsonl")" = 0 ] && ok synth_reject_not_in_output || fail synth_reject_not_in_output "in output"
expect synth_reject_not_redone 0 "$S" --endpoint "$URL" -o "$T/w-out.jsonl" --max-attempts 2 "$T/w.jsonl"
grep_check synth_reject_skipped "$T/err" '1 skipped \(already done\)'

# ---- 400 rejects the record with the server's message; 404 stops the run ----
rec "x [[faults:400]]" >"$T/x.jsonl"
expect synth_400_rejected 0 "$S" --endpoint "$URL" -o "$T/x-out.jsonl" "$T/x.jsonl"
grep_check synth_400_message "$T/x-out.rejects.jsonl" '"reason":"HTTP 400: injected 400","attempts":0,"status":400'
rec "y [[faults:404*]]" >"$T/y.jsonl"
expect synth_404_fatal 1 "$S" --endpoint "$URL" -o "$T/y-out.jsonl" "$T/y.jsonl"
grep_check synth_404_message "$T/err" 'HTTP 404: injected 404'
[ "$(count "$T/y-out.rejects.jsonl")" = 0 ] && ok synth_404_not_rejected || fail synth_404_not_rejected "rejected"

# ---- too many server errors: the record fails, stays undone, and a rerun gets it ----
rec "z [[faults:503,503,503]]" >"$T/z.jsonl"
expect synth_failed_exit 1 "$S" --endpoint "$URL" -o "$T/z.out" --max-retries 1 $FAST "$T/z.jsonl"
grep_check synth_failed_message "$T/err" 'failed after 2 tries \(last: HTTP 503: injected 503\); a rerun will retry it'
expect synth_failed_rerun 0 "$S" --endpoint "$URL" -o "$T/z.out" --max-retries 1 $FAST "$T/z.jsonl"
[ "$(count "$T/z.out")" = 1 ] && ok synth_failed_then_done || fail synth_failed_then_done "$(cat "$T/err")"

# ---- the API key: sent from $OPENAI_API_KEY or --api-key-file, never printed ----
MAIN_URL=$URL
start_server keyed --key sk-test-SECRET-123
rec "k" >"$T/k.jsonl"
OPENAI_API_KEY=sk-test-SECRET-123 expect synth_key_env 0 "$S" --endpoint "$URL" -o "$T/k1.out" "$T/k.jsonl"
printf '  sk-test-SECRET-123  \n' >"$T/keyfile"
expect synth_key_file 0 "$S" --endpoint "$URL" --api-key-file "$T/keyfile" -o "$T/k2.out" "$T/k.jsonl"
# the server echoes a wrong key in its 401 message: it must not reach stderr
OPENAI_API_KEY=sk-wrong-KEY-456 expect synth_key_wrong 1 "$S" --endpoint "$URL" -o "$T/k3.out" "$T/k.jsonl"
grep_check synth_key_wrong_401 "$T/err" 'HTTP 401: Incorrect API key provided: Bearer \*\*\*'
if grep -q 'sk-wrong-KEY-456' "$T/err" "$T/out"; then fail synth_key_never_printed "key in output"; else ok synth_key_never_printed; fi

URL=$MAIN_URL

# ---- invalid input records: skipped and counted, or fatal with --strict ----
{ rec "good"; echo '{"prompt":"no label"}'; echo '{"prompt":1,"label":{"request":"harmful"}}'; rec "dup" "" "s1"; rec "dup2" "" "s1"; } >"$T/bad.jsonl"
expect synth_invalid_skipped 0 "$S" --endpoint "$URL" -o "$T/bad.out" "$T/bad.jsonl"
grep_check synth_invalid_named "$T/err" 'bad.jsonl:2: no "label"'
grep_check synth_invalid_dup "$T/err" 'bad.jsonl:5: duplicate id'
grep_check synth_invalid_counted "$T/err" '2 accepted.*3 invalid input records'
expect synth_strict 1 "$S" --endpoint "$URL" -o "$T/bad2.out" --strict "$T/bad.jsonl"
grep_check synth_strict_message "$T/err" 'bad.jsonl:2: no "label".*--strict'

# ---- one run per output at a time ----
rec "slow [[faults:slow]]" >"$T/s.jsonl"
"$S" --endpoint "$URL" -o "$T/s.out" "$T/s.jsonl" 2>/dev/null &
p1=$!
sleep 0.3
expect synth_lock 4 "$S" --endpoint "$URL" -o "$T/s.out" "$T/s.jsonl"
grep_check synth_lock_message "$T/err" 'another gr-synth run is writing it'
wait $p1

# ---- SIGTERM: no new requests, the ones in flight are written, resume advice ----
for i in $(seq 1 12); do rec "t$i [[faults:slow]]"; done >"$T/t.jsonl"
"$S" --endpoint "$URL" -o "$T/t.out" -j 4 "$T/t.jsonl" 2>"$T/t.err" &
p=$!
sleep 0.4
kill -TERM $p
wait $p
rc=$?
[ $rc -eq 143 ] && ok synth_sigterm_exit || fail synth_sigterm_exit "exit $rc"
grep_check synth_sigterm_advice "$T/t.err" 'interrupted; run the same command again to resume'
[ "$(count "$T/t.out")" = 4 ] && ok synth_sigterm_finishes_in_flight || fail synth_sigterm_finishes_in_flight "$(count "$T/t.out") written: $(cat "$T/t.err")"
expect synth_sigterm_resume 0 "$S" --endpoint "$URL" -o "$T/t.out" -j 8 "$T/t.jsonl"
[ "$(count "$T/t.out")" = 12 ] && ok synth_sigterm_resumed || fail synth_sigterm_resumed "$(count "$T/t.out")"

# ---- --rpm paces the starts (a burst of 10 s worth, then one a second) ----
for i in $(seq 1 12); do rec "r$i"; done >"$T/r.jsonl"
start_t=$(date +%s.%N)
expect synth_rpm 0 "$S" --endpoint "$URL" -o "$T/r.out" --rpm 60 -j 12 "$T/r.jsonl"
el=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$start_t" "$(date +%s.%N)")
python3 -c "import sys; sys.exit(0 if 1.9 <= float(sys.argv[1]) < 6 else 1)" "$el" && ok synth_rpm_paced || fail synth_rpm_paced "took $el s"

# ---- --tpm: 10 requests of ~470 tokens (the server's usage) under 24000
#      tokens/min (a 4000-token burst, then 400/s) need well over a second ----
for i in $(seq 1 10); do rec "tpm$i"; done >"$T/tpm.jsonl"
start_t=$(date +%s.%N)
expect synth_tpm 0 "$S" --endpoint "$URL" -o "$T/tpm-out.jsonl" --tpm 24000 -j 10 "$T/tpm.jsonl"
el=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$start_t" "$(date +%s.%N)")
python3 -c "import sys; sys.exit(0 if 1.2 <= float(sys.argv[1]) < 8 else 1)" "$el" && ok synth_tpm_paced || fail synth_tpm_paced "took $el s"

# ---- --map and stdin; a --system-file of one's own ----
printf '{"q":"hi","lab":"harmful"}\n' | expect synth_map_stdin 0 "$S" --endpoint "$URL" \
    --map '{prompt: .q, response: null, label: {request: .lab}}' -
grep_check synth_map_output "$T/out" '"input":"Human user:\\nhi\\n\\nAI assistant:\\nNone\\n\\n"'
printf 'Label: {request}/{refusal}/{response}. Answers:\nRequest: {request}\nCompletion: {refusal}\nResponse: {response}\n' >"$T/sys.txt"
rec "own" >"$T/own.jsonl"
expect synth_system_file 0 "$S" --endpoint "$URL" --system-file "$T/sys.txt" --dry-run "$T/own.jsonl"
grep_check synth_system_file_used "$T/out" '"content":"Label: unharmful/compliance/unharmful\. Answers:'

# ---- the seed recipes end to end: map, synthesize, validate ----
for s in wildguardtrain:4:0 aegistrain:4:1 beavertailstrain:3:0 toxicchattrain:3:0; do
    name=${s%%:*} rest=${s#*:}
    want=${rest%%:*} invalid=${rest#*:}
    expect "synth_seed_$name" 0 "$S" --endpoint "$URL" --map "$(cat "$GR_ROOT/scripts/seeds/$name.jq")" \
        -o "$T/seed-$name.jsonl" "$GR_ROOT/testdata/seeds/$name.jsonl"
    grep_check "synth_seed_${name}_counts" "$T/err" "^gr-synth: $want accepted, 0 rejected, 0 failed.* $invalid invalid"
done

# ---- a write error (file size limit: EFBIG, as on a full disk) stops the run;
#      the torn line it leaves is cut by the next run, which finishes the job ----
for i in $(seq 1 6); do rec "disk$i"; done >"$T/d.jsonl"
(trap '' XFSZ; ulimit -f 4; exec "$S" --endpoint "$URL" -o "$T/d-out.jsonl" -j 1 "$T/d.jsonl") >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && ok synth_write_error_exit || fail synth_write_error_exit "exit $rc"
grep_check synth_write_error_message "$T/err" 'd-out.jsonl: write error'
expect synth_write_error_resume 0 "$S" --endpoint "$URL" -o "$T/d-out.jsonl" "$T/d.jsonl"
python3 -c "
import json, sys
ids = [json.loads(l)['id'] for l in open(sys.argv[1])]
sys.exit(0 if sorted(ids) == [1, 2, 3, 4, 5, 6] else 1)" "$T/d-out.jsonl" && ok synth_write_error_nothing_lost \
    || fail synth_write_error_nothing_lost "$(cut -c1-80 "$T/d-out.jsonl")"

# ---- keep-alive: 40 requests with 4 in flight reuse a handful of connections ----
start_server ka
for i in $(seq 1 40); do rec "ka$i"; done >"$T/ka.jsonl"
expect synth_keepalive_run 0 "$S" --endpoint "$URL" -o "$T/ka-out.jsonl" -j 4 "$T/ka.jsonl"
conns=$(curl -s "${URL%/v1}/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['connections'])")
[ "$conns" -le 5 ] && ok synth_keepalive_reused || fail synth_keepalive_reused "$conns connections for 40 requests"

# ---- the pipeline: gr-synth's alpaca records are what gr-tokenize trains on ----
TOKJ=$GR_ROOT/testdata/tokenizer/llama3/tokenizer.json.zst
if [ -x "$GR_BIN/gr-tokenize" ] && [ -f "$TOKJ" ]; then
    "$S" -q --endpoint "$URL" "$T/in.jsonl" | "$GR_BIN/gr-tokenize" -t "$TOKJ" >"$T/tok.jsonl" 2>"$T/err"
    python3 - "$T/tok.jsonl" >"$T/chk" 2>&1 <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(r["id"] for r in recs) == [1, 2], recs
for r in recs:
    assert r["ids"][:4] == [128000, 128006, 882, 128007] and 0 < r["n_prompt"] < len(r["ids"]), r
    assert r["ids"][-1] == 128009
print("fine")
PY
    grep_check synth_to_tokenize "$T/chk" '^fine$'
else
    echo "# skip synth_to_tokenize: no gr-tokenize or llama3 tokenizer in this checkout"
fi
