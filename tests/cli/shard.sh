#!/usr/bin/env bash
# --shard K/N for gr-classify and gr-sample, on SmolLM2-135M (GGUF): for N =
# 1, 2, 3 the shards are pairwise disjoint and their union is exactly the
# unsharded output (line for line: a record's output depends neither on its
# shard nor on the records beside it); the Slurm array script; --state with
# shards (each line moderated or rejected by exactly one shard).
. "$(dirname "$0")/../lib.sh"
C=$GR_BIN/gr-classify
S=$GR_BIN/gr-sample

expect shard_usage_zero 2 "$C" -m x --shard 0/3
expect shard_usage_k_gt_n 2 "$C" -m x --shard 4/3
expect shard_usage_shape 2 "$S" -m x --shard 1-3
grep_check shard_usage_msg "$T/err" "K/N"

MODEL=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip shard: model download failed: $(head -c 200 "$T/fetch.err")"; exit 0; fi
if [ "$rc" -ne 0 ]; then fail shard_fetch "fetch-test-model exit $rc: $(head -c 300 "$T/fetch.err")"; exit 0; fi

# records with string ids, number ids and none (sharded by their position;
# number ids kept apart from positions, which would collide with them)
for i in $(seq 1 6); do
    case $((i % 3)) in
    0) printf '{"id":"r%d","prompt":"question %d","response":"answer %d"}\n' "$i" "$i" "$i" ;;
    1) printf '{"id":%d,"instruction":"Classify.","input":"text %d","output":"harmful"}\n' "$((100 + i))" "$i" ;;
    2) printf '{"prompt":"question %d"}\n' "$i" ;;
    esac
done > "$T/in.jsonl"
opts=(-m "$MODEL" --max-tokens 2 --batch 4 --threads 2)

check_shards() { # NAME ALL PARTS...
    local name=$1 all=$2
    shift 2
    cat "$@" | sort > "$T/union"
    sort "$all" > "$T/all.sorted"
    if cmp -s "$T/union" "$T/all.sorted"; then ok "${name}_union"; else fail "${name}_union" "$(wc -l < "$T/union") lines vs $(wc -l < "$all")"; fi
    local dup
    dup=$(cat "$@" | jq -c '[.id, .k]' | sort | uniq -d | head -3)
    [ -z "$dup" ] && ok "${name}_disjoint" || fail "${name}_disjoint" "in two shards: $dup"
}

expect shard_classify_all 0 "$C" "${opts[@]}" -o "$T/c.all" "$T/in.jsonl"
expect shard_sample_all 0 "$S" "${opts[@]}" -k 2 -o "$T/s.all" "$T/in.jsonl"
for n in 1 2 3; do
    parts=() sparts=()
    for k in $(seq 1 "$n"); do
        expect "shard_classify_${k}_of_$n" 0 "$C" "${opts[@]}" --shard "$k/$n" -o "$T/c.$k.$n" "$T/in.jsonl"
        parts+=("$T/c.$k.$n")
        # gr-sample (k = 2: the (id, k) pairs) for N = 3 only, to keep the test short
        if [ "$n" -eq 3 ]; then
            expect "shard_sample_${k}_of_$n" 0 "$S" "${opts[@]}" -k 2 --shard "$k/$n" -o "$T/s.$k.$n" "$T/in.jsonl"
            sparts+=("$T/s.$k.$n")
        fi
    done
    check_shards "shard_classify_n$n" "$T/c.all" "${parts[@]}"
done
check_shards shard_sample_n3 "$T/s.all" "${sparts[@]}"
# progress with --shard: how many records are ours is unknown until their ids are
# read, so the line counts up without a total (not "n/6", which counted every shard)
expect shard_progress 0 "$C" "${opts[@]}" --progress --shard 1/3 -o "$T/c.p" "$T/in.jsonl"
if grep -q "gr-classify: [0-9]* records" "$T/err" && ! grep -q "gr-classify: [0-9]*/" "$T/err"; then ok shard_progress_no_total
else fail shard_progress_no_total "$(head -c 400 "$T/err")"; fi
# the split is the documented hash (values from Python's json.dumps + FNV-1a 64):
# "r3" -> 3 of 3, 101 -> 1 of 3, position 1 -> 3 of 3, "r6" -> 2 of 3
got=$(for k in 1 2 3; do jq -r --arg k "$k" '"\(.id)=\($k)"' "$T/c.$k.3"; done | sort | paste -sd ' ')
want=$(python3 -c '
import json
def h(b):
    x = 14695981039346656037
    for c in b: x = ((x ^ c) * 1099511628211) % 2**64
    return x
ids = [101, 1, "r3", 104, 4, "r6"]
print(" ".join(sorted("%s=%d" % (i, h(json.dumps(i).encode()) % 3 + 1) for i in ids)))' 2>/dev/null)
if [ -z "$want" ]; then echo "# skip shard_documented_hash: no python3"
elif [ "$got" = "$want" ]; then ok shard_documented_hash; else fail shard_documented_hash "$got vs $want"; fi

# the Slurm array script, as three tasks of --array=1-3 would run it
for k in 1 2 3; do
    expect "shard_slurm_task_$k" 0 env SLURM_ARRAY_TASK_ID=$k SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=3 \
        SLURM_CPUS_PER_TASK=2 GR_CLASSIFY="$C" bash "$GR_ROOT/scripts/slurm/classify-array.sh" "$T/slurm" \
        -m "$MODEL" --max-tokens 2 --batch 4 "$T/in.jsonl"
done
check_shards shard_slurm "$T/c.all" "$T/slurm"/verdicts.*-of-3.jsonl
expect shard_slurm_not_array 2 env -u SLURM_ARRAY_TASK_ID bash "$GR_ROOT/scripts/slurm/classify-array.sh" "$T/x" -m "$MODEL" "$T/in.jsonl"

# --state with shards: two hosts, each its own state and outputs, one log
L=$T/app.jsonl
for i in $(seq 1 10); do printf '{"n":%d,"prompt":"message %d"}\n' "$i" "$i"; done > "$L"
echo 'not json' >> "$L"
for k in 1 2; do
    expect "shard_state_$k" 0 "$C" "${opts[@]}" --shard "$k/2" --state "$T/st.$k" --rejects "$T/rej.$k" -o "$T/v.$k" "$L"
done
[ "$(cat "$T/v.1" "$T/v.2" | jq -r .n | sort -n | paste -sd ' ')" = "$(seq 1 10 | paste -sd ' ')" ] \
    && ok shard_state_union || fail shard_state_union "$(cat "$T/v.1" "$T/v.2" | jq -r .n | sort -n | paste -sd ' ')"
[ "$(cat "$T/rej.1" "$T/rej.2" | wc -l)" -eq 1 ] && ok shard_state_reject_once || fail shard_state_reject_once "$(cat "$T/rej.1" "$T/rej.2")"
