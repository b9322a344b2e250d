#!/usr/bin/env bash
# The jq maps for common log shapes (scripts/cron/maps/*.jq) on their sample
# files: each line's record exactly (jq), the lines a map rejects with their
# reason, and gr-classify moderating each sample through --map (SmolLM2 GGUF,
# verdict mode): one verdict per record, ids and texts carried through.
. "$(dirname "$0")/../lib.sh"
C=$GR_BIN/gr-classify
D=$GR_ROOT/scripts/cron/maps

check_map() { # NAME MAP SAMPLE EXPECTED(one JSON record per line)
    local got
    got=$(jq -c -f "$2" "$3" 2>"$T/jq.err")
    [ "$got" = "$4" ] && ok "$1" || fail "$1" "got: $(printf '%s' "$got" | head -c 400) $(head -c 200 "$T/jq.err")"
}
check_map maps_openai_chat "$D/openai-chat.jq" "$D/openai-chat.sample.jsonl" \
'{"prompt":"How do I pick a lock?","response":"I can'"'"'t help with breaking into property.","id":"chatcmpl-1"}
{"prompt":"Describe this image.\nBe brief.","response":null,"id":"chatcmpl-2"}
{"prompt":"Write a haiku about rain.","response":"Soft rain on the roof","id":"batch-7"}
{"prompt":"What'"'"'s the weather in Paris?","response":"get_weather({\"city\":\"Paris\"})"}'
check_map maps_access_log "$D/access-log.jq" "$D/access-log.sample.jsonl" \
'{"prompt":"How do I make a bomb?","response":"I cannot help with that.","id":"r-1"}
{"prompt":"Tell me a joke.","response":"Why did the chicken cross the road?","id":"r-3"}
{"prompt":"Is this plain text ok?","response":null,"id":"r-4"}'

# every line of a .bad sample is an error naming why (jq -n + input: one line at a time)
check_rejects() { # NAME MAP BAD REASON...
    local name=$1 map=$2 bad=$3 i=0 n_ok=0
    shift 3
    for reason in "$@"; do
        i=$((i + 1))
        sed -n "${i}p" "$bad" | jq -c -f "$map" >/dev/null 2>"$T/rej.err"
        local rc=$?
        [ "$rc" -ne 0 ] && grep -q -- "$reason" "$T/rej.err" && n_ok=$((n_ok + 1))
    done
    [ "$n_ok" -eq "$i" ] && [ "$(wc -l < "$bad")" -eq "$i" ] && ok "$name" || fail "$name" "$n_ok of $i lines rejected with their reason"
}
check_rejects maps_openai_chat_rejects "$D/openai-chat.jq" "$D/openai-chat.bad.jsonl" \
    "no messages array" "no user turn" "content is neither"
check_rejects maps_access_log_rejects "$D/access-log.jq" "$D/access-log.bad.jsonl" "no prompt in the request body"

MODEL=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip maps: model download failed: $(head -c 200 "$T/fetch.err")"; exit 0; fi
if [ "$rc" -ne 0 ]; then fail maps_fetch "fetch-test-model exit $rc: $(head -c 300 "$T/fetch.err")"; exit 0; fi

for m in openai-chat access-log; do
    expect "maps_classify_$m" 0 "$C" -m "$MODEL" --mode verdict --threads 2 --map "$(cat "$D/$m.jq")" \
        "$D/$m.sample.jsonl" -o "$T/$m.v.jsonl"
    want=$(jq -c -f "$D/$m.jq" "$D/$m.sample.jsonl" | jq -c '[.prompt, .response]')
    got=$(jq -c '[.prompt, .response]' "$T/$m.v.jsonl")
    [ "$want" = "$got" ] && jq -e -s 'all(.[]; .parse_ok and .mode == "verdict")' "$T/$m.v.jsonl" >/dev/null \
        && ok "maps_classify_${m}_records" || fail "maps_classify_${m}_records" "$(head -c 300 "$T/$m.v.jsonl")"
done
# ids: the map's where the line has one, else one gr-classify derives (not null)
ids=$(jq -c .id "$T/openai-chat.v.jsonl" | head -n 3 | tr '\n' ' ')
[ "$ids" = '"chatcmpl-1" "chatcmpl-2" "batch-7" ' ] && [ "$(sed -n 4p "$T/openai-chat.v.jsonl" | jq -c .id)" != null ] \
    && ok maps_classify_ids || fail maps_classify_ids "$ids"
# a rejected line is reported with its file:line and the map's reason
"$C" -m "$MODEL" --mode verdict --threads 2 --map "$(cat "$D/openai-chat.jq")" "$D/openai-chat.bad.jsonl" \
    -o "$T/bad.v.jsonl" >/dev/null 2>"$T/bad.err"
grep_check maps_classify_reject_reason "$T/bad.err" "openai-chat.bad.jsonl:1: .*no messages array"
