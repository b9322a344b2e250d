#!/usr/bin/env bash
# man/gr-verdict.schema.json against real gr-classify output (SmolLM2 GGUF):
# reason mode (with --logprobs, cut at --max-tokens), verdict and tiered mode,
# --instruction, --state (source), and a prompt too long for the context (the error field), all
# checked by scripts/check-schema.jq and, where Python's jsonschema is
# installed, by it too; records broken one field at a time are rejected with
# the field named, so the check can fail.
. "$(dirname "$0")/../lib.sh"
C=$GR_BIN/gr-classify
SCHEMA=$GR_ROOT/man/gr-verdict.schema.json
CHECK=$GR_ROOT/scripts/check-schema.jq
check() { jq -n -c --slurpfile schema "$SCHEMA" -f "$CHECK" "$@"; }

jq -e . "$SCHEMA" >/dev/null && ok schema_is_json || fail schema_is_json "not JSON"
# the checker refuses a keyword it does not implement
printf '{"a":"x"}\n' > "$T/a.json"
out=$(jq -n -c --argjson s '{"properties":{"a":{"type":"string","format":"email"}}}' '$s' | \
      jq -n -c --slurpfile schema /dev/stdin -f "$CHECK" "$T/a.json")
case $out in *"format is not supported"*) ok schema_checker_unknown_keyword ;; *) fail schema_checker_unknown_keyword "$out" ;; esac

MODEL=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip schema: model download failed: $(head -c 200 "$T/fetch.err")"; exit 0; fi
if [ "$rc" -ne 0 ]; then fail schema_fetch "fetch-test-model exit $rc: $(head -c 300 "$T/fetch.err")"; exit 0; fi

cat > "$T/in.jsonl" <<'J'
{"id":"a","prompt":"How do I make a bomb?","response":"I cannot help with that."}
{"prompt":"What is the capital of France?","response":null}
{"id":7,"instruction":"Classify.","input":"Human user:\nhello\n\nAI assistant:\nhi\n\n","output":"unharmful"}
J
# longer than SmolLM2's 8192 positions
jq -n -c '{id: "long", prompt: ([range(9000)] | map("word") | join(" ")), response: null}' >> "$T/in.jsonl"
printf 'Judge only whether the request is harmful.\n' > "$T/policy.txt"
R=(-m "$MODEL" --threads 2 --max-tokens 5)
expect schema_run_reason 0 "$C" "${R[@]}" --logprobs "$T/in.jsonl" -o "$T/reason.jsonl"
expect schema_run_verdict 0 "$C" "${R[@]}" --mode verdict --instruction "$T/policy.txt" "$T/in.jsonl" -o "$T/verdict.jsonl"
expect schema_run_tiered 0 "$C" "${R[@]}" --mode tiered --escalate 0.5:1 "$T/in.jsonl" -o "$T/tiered.jsonl"
# incremental (--state): every verdict carries its source; ids derived from it
head -n 3 "$T/in.jsonl" > "$T/log.jsonl"
expect schema_run_state 0 "$C" "${R[@]}" --mode verdict --state "$T/state" -o "$T/state.jsonl" "$T/log.jsonl"
cat "$T/reason.jsonl" "$T/verdict.jsonl" "$T/tiered.jsonl" "$T/state.jsonl" > "$T/all.jsonl"
# the runs hold every optional field the schema names that these modes write
jq -e -s 'any(.[]; has("truncated")) and any(.[]; has("error")) and any(.[]; has("token_logprobs"))
          and any(.[]; .mode == "verdict") and any(.[]; .mode == "reason") and any(.[]; has("source")) and all(.[]; has("fingerprint"))' "$T/all.jsonl" >/dev/null \
    && ok schema_sample_covers_fields || fail schema_sample_covers_fields "some optional field is missing from the sample"
out=$(check "$T/all.jsonl")
[ -z "$out" ] && [ "$(wc -l < "$T/all.jsonl")" -eq 15 ] && ok schema_real_output || fail schema_real_output "$(printf '%s' "$out" | head -c 600)"

# one broken field at a time: each is reported at its path
n=0 bad=""
while IFS='|' read -r edit want; do
    n=$((n + 1))
    out=$(head -n 1 "$T/verdict.jsonl" | jq -c "$edit" | check | jq -r ".errors[]")
    case $out in *"$want"*) ;; *) bad="$bad [$edit: $out]" ;; esac
done <<'E'
del(.policy)|missing required field policy
.policy = "abc"|/policy: "abc" does not match
.fingerprint = "XYZ"|/fingerprint: "XYZ" does not match
.mode = "fast"|/mode: "fast" is not one of
.pred.request = "maybe"|/pred/request: "maybe" is not one of
.pred.extra = 1|/pred/extra: not allowed here
.scores.request = 1.5|/scores/request: 1.5 > maximum 1
.scores.response = "high"|/scores/response: string, wanted number or null
.tokens = -1|/tokens: -1 < minimum 0
.tokens = 2.5|/tokens: number, wanted integer
.parse_ok = "yes"|/parse_ok: string, wanted boolean
.id = null|/id: matches a schema it must not
.truncated = false|/truncated: false is not true
.token_ids = [1, -2]|/token_ids/1: -2 < minimum 0
.source = {file: "log", line: 0, offset: 3}|/source/line: 0 < minimum 1
.source = {file: "log", line: 2}|/source: missing required field offset
.source = {file: "log", line: 2, offset: 0, inode: -1}|/source/inode: -1 < minimum 0
.error = "x"|/parse_ok: true is not false
.parse_ok = false|/pred/request:
E
[ -z "$bad" ] && ok schema_rejects_broken_fields || fail schema_rejects_broken_fields "$bad"

# an independent checker, where installed
if python3 -c 'import jsonschema' 2>/dev/null; then
    python3 - "$SCHEMA" "$T/all.jsonl" > "$T/py.out" 2>&1 <<'P'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
bad = 0
for i, line in enumerate(open(sys.argv[2]), 1):
    for e in v.iter_errors(json.loads(line)):
        print(f"record {i}: {e.json_path}: {e.message}")
        bad += 1
broken = json.loads(open(sys.argv[2]).readline())
broken["mode"] = "fast"
if v.is_valid(broken):
    print("a broken record passed"); bad += 1
sys.exit(1 if bad else 0)
P
    [ $? -eq 0 ] && ok schema_python_jsonschema || fail schema_python_jsonschema "$(head -c 600 "$T/py.out")"
else
    echo "# skip schema_python_jsonschema: python3 jsonschema not installed"
fi
