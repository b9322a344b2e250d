#!/usr/bin/env bash
# Continuous batching fed from the input (issue 16): with --batch smaller than
# the record count, records of mixed lengths enter the engine as slots free,
# and the output is still the input's order, byte for byte the output of
# --batch 1 (a bad record skipped, an over-long one answered with `error`, both
# in the middle); --resume from a partial output (cut at a record, and after
# SIGKILL) completes the same file; gr-sample's seeded samples do not depend on
# the batch either.
. "$(dirname "$0")/../lib.sh"
C=${GR_CLASSIFY:-$GR_BIN/gr-classify}
S=${GR_SAMPLE:-$GR_BIN/gr-sample}

MODEL=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip classify_stream: model download failed: $(head -c 200 "$T/fetch.err")"; exit 0; fi
if [ "$rc" -ne 0 ]; then fail classify_stream_fetch "fetch-test-model exit $rc: $(head -c 300 "$T/fetch.err")"; exit 0; fi
run() { "$C" -m "$MODEL" --threads 2 -q "$@"; }
lines() { if [ -e "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
wait_for() { local i; for i in $(seq 600); do "$@" && return 0; sleep 0.1; done; return 1; }

# 14 records of mixed lengths (1 to 40 repeated words), record 6 bad (no prompt),
# record 9 too long for the context
python3 - "$T/in.jsonl" <<'EOF'
import json, sys
words = ["apple", "how", "do", "I", "bake", "bread", "quickly", "at", "home", "today"]
with open(sys.argv[1], "w") as f:
    for i in range(14):
        if i == 6:
            f.write(json.dumps({"id": "bad", "text": "no prompt field"}) + "\n")
        elif i == 9:
            f.write(json.dumps({"id": "long", "prompt": "word " * 20000, "response": None}) + "\n")
        else:
            n = 1 + (i * 13) % 40
            f.write(json.dumps({"id": "r%d" % i, "prompt": " ".join(words[(i + j) % 10] for j in range(n)),
                                "response": "Sure." if i % 3 else None}) + "\n")
EOF
want_ids="r0 r1 r2 r3 r4 r5 r7 r8 long r10 r11 r12 r13 "

expect stream_reference_batch1 0 run --batch 1 --max-tokens 20 "$T/in.jsonl" -o "$T/ref.jsonl"
expect stream_batch3 0 run --batch 3 --max-tokens 20 "$T/in.jsonl" -o "$T/b3.jsonl"
grep_check stream_bad_record_named "$T/err" "in.jsonl:7:"
[ "$(jq -r '.id' "$T/b3.jsonl" | tr '\n' ' ')" = "$want_ids" ] && ok stream_input_order \
    || fail stream_input_order "$(jq -r '.id' "$T/b3.jsonl" | tr '\n' ' ')"
[ "$(jq -r 'select(.error) | .id' "$T/b3.jsonl")" = long ] && ok stream_long_rejected || fail stream_long_rejected "no error on long"
# the lengths really differ: records finish at different steps
[ "$(jq -r 'select(.error | not) | .tokens' "$T/b3.jsonl" | sort -u | wc -l)" -ge 2 ] && ok stream_mixed_lengths \
    || fail stream_mixed_lengths "every record generated as many tokens: $(jq -r .tokens "$T/b3.jsonl" | tr '\n' ' ')"
cmp -s "$T/ref.jsonl" "$T/b3.jsonl" && ok stream_batch_invariant || fail stream_batch_invariant "$(diff "$T/ref.jsonl" "$T/b3.jsonl" | head -c 400)"
expect stream_batch5 0 run --batch 5 --max-tokens 20 "$T/in.jsonl" -o "$T/b5.jsonl"
cmp -s "$T/ref.jsonl" "$T/b5.jsonl" && ok stream_batch5_same || fail stream_batch5_same "$(diff "$T/ref.jsonl" "$T/b5.jsonl" | head -c 400)"

# --resume from an output cut after 5 verdicts: the rest is added, the same file
head -n 5 "$T/ref.jsonl" > "$T/part.jsonl"
expect stream_resume_cut 0 run --batch 3 --max-tokens 20 "$T/in.jsonl" -o "$T/part.jsonl" --resume
cmp -s "$T/ref.jsonl" "$T/part.jsonl" && ok stream_resume_cut_same || fail stream_resume_cut_same "$(diff "$T/ref.jsonl" "$T/part.jsonl" | head -c 400)"
# SIGKILL with verdicts written, then --resume: the same file
"$C" -m "$MODEL" --threads 2 -q --batch 3 --max-tokens 20 "$T/in.jsonl" -o "$T/killed.jsonl" --resume 2>/dev/null & bg=$!
if wait_for has_lines "$T/killed.jsonl" 2; then
    kill -KILL $bg; wait $bg 2>/dev/null
    n=$(lines "$T/killed.jsonl")
    [ "$n" -ge 2 ] && [ "$n" -le 13 ] && ok stream_sigkill_keeps || fail stream_sigkill_keeps "$n lines"
    expect stream_sigkill_resume 0 run --batch 3 --max-tokens 20 "$T/in.jsonl" -o "$T/killed.jsonl" --resume
    cmp -s "$T/ref.jsonl" "$T/killed.jsonl" && ok stream_sigkill_resume_same \
        || fail stream_sigkill_resume_same "$(diff "$T/ref.jsonl" "$T/killed.jsonl" | head -c 400)"
else
    kill -KILL $bg 2>/dev/null; wait $bg 2>/dev/null
    fail stream_sigkill_keeps "fewer than 2 verdicts appeared"
fi

# gr-sample: 2 samples a record at temperature 0.8, --batch 1 and --batch 4
head -n 5 "$T/in.jsonl" > "$T/five.jsonl"
samp() { "$S" -m "$MODEL" --threads 2 -q -k 2 --temperature 0.8 --top-p 0.95 --seed 7 --max-tokens 16 "$@"; }
expect stream_sample_batch1 0 samp --batch 1 "$T/five.jsonl" -o "$T/s1.jsonl"
expect stream_sample_batch4 0 samp --batch 4 "$T/five.jsonl" -o "$T/s4.jsonl"
[ "$(lines "$T/s4.jsonl")" -eq 10 ] && cmp -s "$T/s1.jsonl" "$T/s4.jsonl" && ok stream_sample_batch_invariant \
    || fail stream_sample_batch_invariant "$(diff "$T/s1.jsonl" "$T/s4.jsonl" | head -c 400)"
[ "$(jq -r '"\(.id)/\(.k)"' "$T/s4.jsonl" | tr '\n' ' ')" = "r0/0 r0/1 r1/0 r1/1 r2/0 r2/1 r3/0 r3/1 r4/0 r4/1 " ] \
    && ok stream_sample_order || fail stream_sample_order "$(jq -r '"\(.id)/\(.k)"' "$T/s4.jsonl" | tr '\n' ' ')"

# more records than the read-ahead (max(64, 4 x batch) = 64): the engine pulls
# the rest from the input, with records answered at once (too long, 66 and 70)
# and a bad one (68) among them
python3 - "$T/many.jsonl" <<'EOF2'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(80):
        if i in (66, 70):
            f.write(json.dumps({"id": "long%d" % i, "prompt": "word " * 20000}) + "\n")
        elif i == 68:
            f.write(json.dumps({"id": "bad", "text": "no prompt"}) + "\n")
        else:
            f.write(json.dumps({"id": "m%d" % i, "prompt": "Tell me about item %d %s" % (i, "please " * (i % 7))}) + "\n")
EOF2
expect stream_many_batch1 0 run --batch 1 --max-tokens 2 "$T/many.jsonl" -o "$T/many1.jsonl"
expect stream_many_batch2 0 run --batch 2 --max-tokens 2 "$T/many.jsonl" -o "$T/many2.jsonl"
want=$(python3 -c 'print(" ".join(("long%d" % i) if i in (66, 70) else ("m%d" % i) for i in range(80) if i != 68))')
[ "$(jq -r '.id' "$T/many2.jsonl" | paste -sd ' ')" = "$want" ] && ok stream_many_order \
    || fail stream_many_order "$(jq -r '.id' "$T/many2.jsonl" | paste -sd ' ' | tail -c 300)"
[ "$(jq -r 'select(.error) | .id' "$T/many2.jsonl" | paste -sd ' ')" = "long66 long70" ] && ok stream_many_rejected \
    || fail stream_many_rejected "$(jq -c 'select(.error) | .id' "$T/many2.jsonl" | head -c 200)"
cmp -s "$T/many1.jsonl" "$T/many2.jsonl" && ok stream_many_batch_invariant \
    || fail stream_many_batch_invariant "$(diff "$T/many1.jsonl" "$T/many2.jsonl" | head -c 400)"
