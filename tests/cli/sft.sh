# gr-sft: options, bad input, checkpoints, bit-exact resume after SIGKILL,
# evaluation, learning a synthetic task, and (when transformers is installed)
# the saved folder loading in transformers with the same loss as our forward.
. "$(dirname "$0")/../lib.sh"
S=$GR_BIN/gr-sft
M=$GR_ROOT/testdata/models/tiny-gqa-tied
D=$GR_ROOT/testdata/train/synth.jsonl
E=$GR_ROOT/testdata/train/synth-eval.jsonl
COMMON="--micro-batch 4 --grad-accum 2 --lr 1e-2 --quiet"

expect sft_help 0 "$S" --help
grep_check sft_help_example "$T/out" "Example"
expect sft_no_data 2 "$S" --base "$M" --out "$T/x"
expect sft_bad_lr 2 "$S" --base "$M" --data "$D" --out "$T/x" --lr abc
expect sft_bad_loss_avg 2 "$S" --base "$M" --data "$D" --out "$T/x" --loss-average mean
# --device cuda: refused with a clear message when the build has no CUDA (usage
# error) or the machine no GPU (exit 1, before any step); nothing trained
if "$S" --version | grep -q "backends: cpu, cuda"; then
    if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU; then
        echo "# skip sft_cuda_refused: a GPU is present (tests/gpu/run.sh trains on it)"
    else
        expect sft_cuda_refused 1 "$S" --base "$M" --data "$D" --out "$T/x" --device cuda
        grep_check sft_cuda_refused_msg "$T/err" "^gr-sft: --device cuda(:0)?: .*(CUDA device|driver)"
        [ ! -e "$T/x/checkpoint-1" ] && ok sft_cuda_refused_no_step || fail sft_cuda_refused_no_step "trained"
    fi
else
    expect sft_cuda_refused 2 "$S" --base "$M" --data "$D" --out "$T/x" --device cuda
    grep_check sft_cuda_refused_msg "$T/err" "no CUDA backend"
fi
expect sft_device_unknown 2 "$S" --base "$M" --data "$D" --out "$T/x" --device tpu
expect sft_eval_only_needs_data 2 "$S" --base "$M" --eval-only

printf '{"id":"a","ids":[1,2,3],"n_prompt":1}\n{"id":"b","ids":[1,2,999],"n_prompt":1}\n' >"$T/bad.jsonl"
expect sft_bad_token 1 "$S" --base "$M" --data "$T/bad.jsonl" --out "$T/x"
grep_check sft_bad_token_line "$T/err" "bad.jsonl:2: .*token id"
printf '{"id":"a","ids":[1,2,3,4,5],"n_prompt":1}\n' >"$T/long.jsonl"
expect sft_cutoff 1 "$S" --base "$M" --data "$T/long.jsonl" --out "$T/x" --cutoff 4
grep_check sft_cutoff_msg "$T/err" "long.jsonl:1: 5 tokens, more than the cutoff 4"

# An uninterrupted run (f32 weights, so the comparison is of the master weights).
expect sft_run_a 0 "$S" --base "$M" --data "$D" --out "$T/a" $COMMON --epochs 3 --save-every 3 \
    --save-dtype f32 --threads 2 --log "$T/a.log"
steps=$(wc -l <"$T/a.log")
[ "$steps" -eq 18 ] && ok sft_steps_logged || fail sft_steps_logged "$steps lines, want 18"
[ -f "$T/a/checkpoint-18/trainer_state.bin" ] && [ -f "$T/a/checkpoint-3/model.safetensors" ] &&
    [ -f "$T/a/model.safetensors" ] && [ -f "$T/a/config.json" ] && [ -f "$T/a/generation_config.json" ] &&
    ok sft_checkpoint_files || fail sft_checkpoint_files "$(ls "$T/a")"
expect sft_refuses_existing 1 "$S" --base "$M" --data "$D" --out "$T/a" $COMMON
grep_check sft_refuses_existing_msg "$T/err" "use --resume"

# Activation recomputation changes nothing but memory and time.
expect sft_recompute 0 "$S" --base "$M" --data "$D" --out "$T/r" $COMMON --epochs 3 --save-dtype f32 \
    --threads 1 --recompute
cmp -s "$T/a/model.safetensors" "$T/r/model.safetensors" && ok sft_recompute_same ||
    fail sft_recompute_same "weights differ with --recompute"

# The same run killed by SIGKILL after step 7 (last checkpoint: 6), then resumed.
GR_SFT_TEST_KILL_AT_STEP=7 "$S" --base "$M" --data "$D" --out "$T/b" $COMMON --epochs 3 \
    --save-every 3 --save-dtype f32 --threads 2 --log "$T/b.log" >/dev/null 2>&1 &
wait $! 2>/dev/null
rc=$?
[ "$rc" -eq 137 ] && [ -d "$T/b/checkpoint-6" ] && [ ! -e "$T/b/checkpoint-9" ] &&
    ok sft_killed || fail sft_killed "exit $rc; $(ls "$T/b")"
expect sft_resume 0 "$S" --base "$M" --data "$D" --out "$T/b" $COMMON --epochs 3 --save-every 3 \
    --save-dtype f32 --threads 2 --log "$T/b.log" --resume
cmp -s "$T/a/model.safetensors" "$T/b/model.safetensors" && ok sft_resume_bit_exact ||
    fail sft_resume_bit_exact "final weights differ"
cmp -s "$T/a/checkpoint-18/trainer_state.bin" "$T/b/checkpoint-18/trainer_state.bin" &&
    ok sft_resume_state_bit_exact || fail sft_resume_state_bit_exact "optimizer states differ"
if command -v jq >/dev/null; then
    if diff <(jq -c 'del(.tokens_per_s, .elapsed_s)' "$T/a.log") \
            <(jq -c 'del(.tokens_per_s, .elapsed_s)' "$T/b.log") >/dev/null; then
        ok sft_resume_log; else fail sft_resume_log "logs differ after resume"; fi
fi

# An external kill -9 at whatever point the run has reached, then --resume.
"$S" --base "$M" --data "$D" --out "$T/c" $COMMON --epochs 20 --save-every 5 --save-dtype f32 \
    --threads 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do [ -d "$T/c/checkpoint-5" ] && break; sleep 0.02; done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
"$S" --base "$M" --data "$D" --out "$T/c" $COMMON --epochs 20 --save-every 5 --save-dtype f32 \
    --threads 1 --resume >/dev/null 2>"$T/err"
"$S" --base "$M" --data "$D" --out "$T/d" $COMMON --epochs 20 --save-every 5 --save-dtype f32 \
    --threads 2 >/dev/null 2>&1
cmp -s "$T/c/model.safetensors" "$T/d/model.safetensors" && ok sft_kill9_resume_bit_exact ||
    fail sft_kill9_resume_bit_exact "$(cat "$T/err")"
ls -a "$T/c" | grep -q '\.tmp$' && fail sft_no_tmp_left "$(ls -a "$T/c")" || ok sft_no_tmp_left

# It learns the task (reverse three tokens): the last steps' loss is low, and
# evaluation is logged.
last=$(tail -n 1 "$T/a.log" | sed 's/.*"loss":\([^,]*\).*/\1/')
first=$(head -n 1 "$T/a.log" | sed 's/.*"loss":\([^,]*\).*/\1/')
awk -v f="$first" -v l="$last" 'BEGIN { exit !(f > 4 && l < f / 2) }' && ok sft_loss_decreases || fail sft_loss_decreases "first $first last $last"
expect sft_eval 0 "$S" --base "$M" --data "$D" --eval-data "$E" --eval-every 4 --out "$T/e" $COMMON \
    --epochs 2 --save-dtype f32 --log "$T/e.log"
n_eval=$(grep -c eval_loss "$T/e.log")
# steps 4 and 8, and the end (12)
[ "$n_eval" -eq 3 ] && ok sft_eval_logged || fail sft_eval_logged "$n_eval eval lines, want 3"
"$S" --base "$M" --data "$D" --out "$T/f" $COMMON --epochs 30 --log "$T/f.log" >/dev/null 2>&1
fl=$(tail -n 1 "$T/f.log" | sed 's/.*"loss":\([^,]*\).*/\1/')
awk -v l="$fl" 'BEGIN { exit !(l < 0.05) }' && ok sft_learns_task || fail sft_learns_task "final loss $fl"

# The saved folder in transformers: the same loss as our forward logged.
if python3 -c 'import torch, transformers' 2>/dev/null; then
    want=$(tail -n 1 "$T/e.log" | sed 's/.*"eval_loss":\([^}]*\)}.*/\1/')
    if python3 "$GR_ROOT/scripts/check-sft-checkpoint.py" "$T/e" "$E" "$want" 1e-4 >"$T/py" 2>&1; then
        ok sft_loads_in_transformers
    else
        fail sft_loads_in_transformers "$(tail -n 3 "$T/py")"
    fi
    # the bf16 folder: our forward (--eval-only) and transformers on the same weights
    expect sft_eval_only 0 "$S" --base "$T/f" --eval-data "$E" --eval-only
    want=$(sed 's/.*"eval_loss":\([^,]*\),.*/\1/' "$T/out")
    if python3 "$GR_ROOT/scripts/check-sft-checkpoint.py" "$T/f" "$E" "$want" 1e-4 >"$T/py" 2>&1; then
        ok sft_bf16_loads_in_transformers
    else
        fail sft_bf16_loads_in_transformers "$(tail -n 3 "$T/py")"
    fi
else
    echo "# skip sft_loads_in_transformers: torch/transformers not installed"
fi
