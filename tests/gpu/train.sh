# The training half of the GPU suite (issue 17), sourced by tests/gpu/run.sh
# (which provides say, bad, left, $OUT, $DEV, $GPU) in two places:
#   train_tests   every training op against the CPU table (build/gpu/test_train_ops);
#                 whole-model parity on the tiny models: loss, every gradient,
#                 recompute, one AdamW step, one weighted-DPO step
#                 (build/gpu/test_train_model); a 12-step gr-sft run on the GPU
#                 and on the CPU from the same data: every step's loss within
#                 2% relative (bf16 tensor-core matmuls; measured on the CPU
#                 stand-in: identical); a GPU run killed after step 6 and resumed
#                 from checkpoint-4 ends with the same weights bit for bit (the
#                 kernels are deterministic); the same 12 steps with fp32 storage
#                 (GR_CUDA_TRAIN_STORE=f32) against the default bf16 storage:
#                 every step's loss within 1% relative.
#   train_bench   R-SFT throughput and MFU for LLaMA-3.2-1B shapes (random
#                 weights, $1 = the folder), 4 packed sequences of 2048 tokens a
#                 step, 3 steps after a warm-up, with and without --recompute,
#                 peak GPU memory (nvidia-smi, sampled every 100 ms); the peer
#                 (PyTorch + transformers, bf16 autocast, sdpa) on the same batch;
#                 HS-DPO step throughput on 8 pairs of 1024 + 512 + 512 tokens;
#                 the allocator's peak (gr-sft's "device memory" line) is at most
#                 the memory plan for the run (lib/train_mem_plan.h).
# MFU = tokens/s · (6·N + 6·L·H·hd·S) / 989e12 (the causal half of the attention).

train_tests() {
    local rc line
    build/gpu/test_train_ops >"$OUT/train_ops.txt" 2>&1
    rc=$?
    grep -E "^not ok" "$OUT/train_ops.txt"
    line=$(tail -1 "$OUT/train_ops.txt")
    if [ $rc -eq 0 ]; then say "train ops vs cpu ($DEV): $line"; else bad "train ops vs cpu ($DEV): rc $rc: $line"; fi
    build/gpu/test_train_model >"$OUT/train_model.txt" 2>&1
    rc=$?
    grep -E "^(ok|not ok)" "$OUT/train_model.txt" | sed 's/^/   /'
    line=$(tail -1 "$OUT/train_model.txt")
    if [ $rc -eq 0 ]; then say "train model parity ($DEV): $line"; else bad "train model parity ($DEV): rc $rc: $line"; fi
    # the loss curve, GPU against CPU
    local M=testdata/models/tiny-gqa-tied D=testdata/train/synth.jsonl
    local O="--micro-batch 4 --grad-accum 1 --lr 1e-3 --epochs 1 --max-steps 12 --save-dtype f32 --quiet"
    rm -rf "$OUT/tc" "$OUT/tg" "$OUT/tk"
    if bin/gr-sft --base $M --data $D --out "$OUT/tc" $O --device cpu --log "$OUT/tc.log" 2>"$OUT/tc.err" &&
       bin/gr-sft --base $M --data $D --out "$OUT/tg" $O --device "$DEV" --log "$OUT/tg.log" 2>"$OUT/tg.err"; then
        line=$(python3 -c 'import json, sys
a = [json.loads(l)["loss"] for l in open(sys.argv[1])]
b = [json.loads(l)["loss"] for l in open(sys.argv[2])]
w = max(abs(x - y) / abs(x) for x, y in zip(a, b)) if a and len(a) == len(b) else 9
print("%d steps, loss %.4f -> %.4f (cpu) and %.4f -> %.4f, worst relative diff %.2g" % (len(a), a[0], a[-1], b[0], b[-1], w), "ok" if w <= 0.02 else "bad")' "$OUT/tc.log" "$OUT/tg.log")
        case $line in *ok) say "sft loss curve $DEV vs cpu: ${line% ok} (bound 0.02)";;
                      *) bad "sft loss curve $DEV vs cpu: ${line% bad} (bound 0.02)";; esac
        # bf16 storage (the default: bf16 weight copy, gradients, matmul inputs) against fp32 storage
        # (GR_CUDA_TRAIN_STORE=f32, the same bf16 tensor-core matmuls): every step's loss within 1%
        rm -rf "$OUT/tf"
        if GR_CUDA_TRAIN_STORE=f32 bin/gr-sft --base $M --data $D --out "$OUT/tf" $O --device "$DEV" --log "$OUT/tf.log" 2>"$OUT/tf.err"; then
            line=$(python3 -c 'import json, sys
a = [json.loads(l)["loss"] for l in open(sys.argv[1])]
b = [json.loads(l)["loss"] for l in open(sys.argv[2])]
w = max(abs(x - y) / abs(x) for x, y in zip(a, b)) if a and len(a) == len(b) else 9
print("%d steps, fp32 storage %.4f -> %.4f, bf16 storage %.4f -> %.4f, worst relative diff %.2g" % (len(a), a[0], a[-1], b[0], b[-1], w), "ok" if w <= 0.01 else "bad")' "$OUT/tf.log" "$OUT/tg.log")
            case $line in *ok) say "sft bf16 vs fp32 storage on $DEV: ${line% ok} (bound 0.01)";;
                          *) bad "sft bf16 vs fp32 storage on $DEV: ${line% bad} (bound 0.01)";; esac
        else
            bad "sft fp32-storage run failed: $(tail -1 "$OUT/tf.err" | head -c 300)"
        fi
        (GR_SFT_TEST_KILL_AT_STEP=6 bin/gr-sft --base $M --data $D --out "$OUT/tk" $O --device "$DEV" \
            --save-every 4) >/dev/null 2>&1
        if bin/gr-sft --base $M --data $D --out "$OUT/tk" $O --device "$DEV" --save-every 4 --resume 2>"$OUT/tk.err" &&
           cmp -s "$OUT/tg/model.safetensors" "$OUT/tk/model.safetensors"; then
            say "sft resume on $DEV: killed at step 6, resumed from checkpoint-4: the same weights bit for bit"
        else
            bad "sft resume on $DEV: the resumed run's weights differ (or it failed: $(tail -1 "$OUT/tk.err" | head -c 200))"
        fi
    else
        bad "sft loss curve: gr-sft failed: $(tail -1 "$OUT/tc.err" "$OUT/tg.err" 2>/dev/null | head -c 300)"
    fi
}

# peak memory.used (MiB) while the command runs
with_peak() { # FILE CMD...: runs CMD, writes the peak to FILE
    local f=$1 pid
    shift
    if [ -n "$GPU" ]; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$f.samples" 2>/dev/null &
        pid=$!
    fi
    "$@"
    local rc=$?
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    { sort -n "$f.samples" 2>/dev/null | tail -1 | grep . || echo "n/a (no nvidia-smi)"; } >"$f"
    return $rc
}

train_bench() {
    local M1=$1 S=2048 B=4 cfg line
    [ "$(left)" -lt 120 ] && { say "train benchmarks: not run (out of time)"; return; }
    python3 - "$M1" "$S" "$B" "$OUT/sft-bench.jsonl" "$OUT/dpo-bench.jsonl" <<'PY' || { bad "train bench data"; return; }
import json, random, sys
m, S, B = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
V = json.load(open(m + "/config.json"))["vocab_size"]
r = random.Random(0)
with open(sys.argv[4], "w") as f:
    for i in range(4 * B):
        f.write(json.dumps({"id": i, "ids": [r.randrange(V) for _ in range(S)], "n_prompt": 1}) + "\n")
with open(sys.argv[5], "w") as f:
    for i in range(8):
        f.write(json.dumps({"prompt_ids": [r.randrange(V) for _ in range(1024)],
                            "chosen_ids": [r.randrange(V) for _ in range(512)],
                            "rejected_ids": [r.randrange(V) for _ in range(512)], "weight": 1.0}) + "\n")
PY
    cfg=$(python3 -c 'import json, sys
c = json.load(open(sys.argv[1] + "/config.json"))
hd = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
print(c["num_hidden_layers"] * c["num_attention_heads"] * hd)' "$M1")
    mfu() { # LOG N S: tokens/s of the steps after the first, MFU
        python3 -c 'import json, sys
L = [json.loads(l) for l in open(sys.argv[1]) if "\"loss\"" in l]
t = sum(x["tokens"] for x in L[1:]); s = sum(x["tokens"] / x["tokens_per_s"] for x in L[1:])
tps = t / s if s else 0
f = 6 * int(sys.argv[2]) + 6 * int(sys.argv[4]) * int(sys.argv[3])
print("%.0f tokens/s, MFU %.1f%%" % (tps, 100 * tps * f / 989e12))' "$1" "$2" "$3" "$cfg"
    }
    local rec
    for rec in "" --recompute; do
        [ "$(left)" -lt 60 ] && { say "gr-sft 1b $rec: not run (out of time)"; continue; }
        rm -rf "$OUT/sb"
        if with_peak "$OUT/sb.peak" timeout $(($(left) - 30)) bin/gr-sft --base "$M1" --data "$OUT/sft-bench.jsonl" \
                --out "$OUT/sb" --no-save --micro-batch $B --grad-accum 1 --epochs 1 --max-steps 4 --cutoff $S \
                --device "$DEV" $rec --log "$OUT/sb.log" 2>"$OUT/sb.err"; then
            local np
            np=$(grep -o '[0-9]* params' "$OUT/sb.err" | head -1 | cut -d' ' -f1)
            say "gr-sft 1b R-SFT $rec: $(mfu "$OUT/sb.log" "$np" $S) ($B x $S tokens a step, packed; peak GPU memory $(cat "$OUT/sb.peak") MiB; target >= 45% MFU)"
            # the allocator's own peak against the memory plan (lib/train_mem_plan.h); the plan
            # leaves out the CUDA context, which nvidia-smi's figure includes
            line=$(grep -o 'device memory: peak [0-9]* bytes.*plan for [0-9x ]* tokens: [0-9]* bytes' "$OUT/sb.err" | head -1)
            local pk pl
            pk=$(echo "$line" | sed -n 's/.*peak \([0-9]*\) bytes.*/\1/p'); pl=$(echo "$line" | sed -n 's/.*tokens: \([0-9]*\) bytes/\1/p')
            if [ -n "$pk" ] && [ -n "$pl" ] && [ "$pk" -le "$pl" ]; then say "memory plan 1b $rec: allocator peak $pk bytes <= plan $pl bytes"
            else bad "memory plan 1b $rec: allocator peak '${pk}' bytes vs plan '${pl}' bytes (the peak must not exceed the plan)"; fi
        else
            bad "gr-sft 1b $rec: failed or timed out: $(tail -1 "$OUT/sb.err" | head -c 300)"
        fi
    done
    # the tensor-core attention forward (opt-in, GR_CUDA_TRAIN_ATT=mma) on the same run
    if [ "$(left)" -gt 150 ]; then
        rm -rf "$OUT/sm"
        if GR_CUDA_TRAIN_ATT=mma timeout $(($(left) - 90)) bin/gr-sft --base "$M1" --data "$OUT/sft-bench.jsonl" \
                --out "$OUT/sm" --no-save --micro-batch $B --grad-accum 1 --epochs 1 --max-steps 4 --cutoff $S \
                --device "$DEV" --log "$OUT/sm.log" 2>"$OUT/sm.err"; then
            local np2
            np2=$(grep -o '[0-9]* params' "$OUT/sm.err" | head -1 | cut -d' ' -f1)
            say "gr-sft 1b R-SFT, tensor-core attention forward: $(mfu "$OUT/sm.log" "$np2" $S)"
        else
            bad "gr-sft 1b GR_CUDA_TRAIN_ATT=mma: failed or timed out: $(tail -1 "$OUT/sm.err" | head -c 300)"
        fi
    fi
    if [ "$(left)" -gt 90 ]; then
        line=$(timeout $(($(left) - 60)) python3 tests/gpu/peer_train_transformers.py "$M1" $B $S 3 2>"$OUT/peer-train.err" | tail -1)
        say "peer: ${line:-failed or timed out: $(tail -2 "$OUT/peer-train.err" | head -c 300)}"
    else
        say "peer train: not run (out of time)"
    fi
    if [ "$(left)" -gt 60 ]; then
        rm -rf "$OUT/db"
        if timeout $(($(left) - 30)) bin/gr-dpo --base "$M1" --pairs "$OUT/dpo-bench.jsonl" --out "$OUT/db" --no-save \
                --grad-accum 4 --epochs 1 --max-steps 2 --device "$DEV" --log "$OUT/db.log" 2>"$OUT/db.err"; then
            local np
            np=$(grep -o '[0-9]* params' "$OUT/db.err" | head -1 | cut -d' ' -f1)
            say "gr-dpo 1b HS-DPO (reference precomputed): $(mfu "$OUT/db.log" "$np" 1536) (4 pairs a step, 1024+512 tokens a sequence; target >= 0.9x the SFT MFU)"
        else
            bad "gr-dpo 1b: failed or timed out: $(tail -1 "$OUT/db.err" | head -c 300)"
        fi
    fi
}
