# gr-dpo: options, bad input, checkpoints, bit-exact resume after SIGKILL, raw
# pairs = their gr-tokenize form, and the tiny pipeline gr-sft -> gr-sample ->
# gr-mine -> gr-dpo raising the reward margin and preference accuracy on the
# mined pairs.
. "$(dirname "$0")/../lib.sh"
D=$GR_BIN/gr-dpo
# The tiny random LLaMA with a byte-level tokenizer (ids 3..258 = bytes).
M=$T/m
mkdir -p "$M"
cp "$GR_ROOT/testdata/models/tiny-gqa-tied/config.json" "$GR_ROOT/testdata/models/tiny-gqa-tied/model.safetensors" \
   "$GR_ROOT/testdata/dpo/byte-tokenizer/tokenizer.json" "$GR_ROOT/testdata/dpo/byte-tokenizer/tokenizer_config.json" "$M/"

expect dpo_help 0 "$D" --help
grep_check dpo_help_example "$T/out" "Example"
grep_check dpo_help_defaults "$T/out" "DPO β \(0.01\)"
expect dpo_no_pairs 2 "$D" --base "$M" --out "$T/x"
expect dpo_bad_beta 2 "$D" --base "$M" --pairs x --out "$T/x" --beta -1
expect dpo_bad_template 2 "$D" --base "$M" --pairs x --out "$T/x" --template nope
if "$D" --version | grep -q "backends: cpu, cuda"; then
    if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU; then
        echo "# skip dpo_cuda_refused: a GPU is present"
    else
        printf '{"prompt_ids":[1,5],"chosen_ids":[6,2],"rejected_ids":[7,2],"weight":1}\n' >"$T/cu.jsonl"
        expect dpo_cuda_refused 1 "$D" --base "$M" --pairs "$T/cu.jsonl" --out "$T/cu" --device cuda
        grep_check dpo_cuda_refused_msg "$T/err" "^gr-dpo: --device cuda(:0)?: .*(CUDA device|driver)"
    fi
else
    expect dpo_cuda_refused 2 "$D" --base "$M" --pairs x --out "$T/x" --device cuda
    grep_check dpo_cuda_refused_msg "$T/err" "no CUDA backend"
fi

printf '{"prompt_ids":[1,5],"chosen_ids":[6,2],"rejected_ids":[7,2]}\n{"prompt_ids":[1],"chosen_ids":[400],"rejected_ids":[7]}\n' >"$T/bad.jsonl"
expect dpo_bad_token 1 "$D" --base "$M" --pairs "$T/bad.jsonl" --out "$T/x" --quiet
grep_check dpo_bad_token_line "$T/err" "bad.jsonl:2: .*chosen_ids"
printf '{"prompt_ids":[1,5],"chosen_ids":[6,2],"rejected_ids":[7,2],"weight":null}\n' >"$T/nan.jsonl"
expect dpo_null_weight 1 "$D" --base "$M" --pairs "$T/nan.jsonl" --out "$T/x" --quiet
grep_check dpo_null_weight_msg "$T/err" "no-weights"
expect dpo_null_weight_plain 0 "$D" --base "$M" --pairs "$T/nan.jsonl" --out "$T/y" --quiet --no-weights --grad-accum 1
# raw pairs too (issue 12 §5): a null sample_weight is a null weight, an empty
# response is refused, both naming file:line
R1='{"instruction":"Classify.\n","input":"x","chosen":"Request: harmful","rejected":"Request: unharmful","sample_weight":1.0}'
printf '%s\n{"instruction":"Classify.\\n","input":"x","chosen":"Request: harmful","rejected":"Request: unharmful","sample_weight":null}\n' "$R1" >"$T/rawnan.jsonl"
expect dpo_raw_null_weight 1 "$D" --base "$M" --pairs "$T/rawnan.jsonl" --out "$T/rn" --template raw --quiet
grep_check dpo_raw_null_weight_msg "$T/err" "rawnan.jsonl:2: .*null.*no-weights"
printf '%s\n{"instruction":"Classify.\\n","input":"x","chosen":"","rejected":"Request: unharmful","sample_weight":1.0}\n' "$R1" >"$T/rawempty.jsonl"
expect dpo_raw_empty_chosen 1 "$D" --base "$M" --pairs "$T/rawempty.jsonl" --out "$T/re" --template raw --quiet
grep_check dpo_raw_empty_chosen_msg "$T/err" "rawempty.jsonl:2: .*empty"
# --log that cannot be written: refused before the reference pass
printf '%s\n' "$R1" >"$T/one.jsonl"
expect dpo_log_unwritable 1 "$D" --base "$M" --pairs "$T/one.jsonl" --out "$T/lu" --template raw --log "$T/no/such/dir/log.jsonl"
grep_check dpo_log_unwritable_msg "$T/err" "^gr-dpo: --log .*no/such/dir/log.jsonl: No such file"
if grep -q "reference log-probs" "$T/err"; then fail dpo_log_checked_first "the reference pass ran first"; else ok dpo_log_checked_first; fi
# --no-save says nothing was saved, and saves nothing
expect dpo_no_save 0 "$D" --base "$M" --pairs "$T/one.jsonl" --out "$T/ns" --template raw --no-save --grad-accum 1
if grep -q "model in" "$T/err"; then fail dpo_no_save_msg "$(tail -n 1 "$T/err")"; else grep_check dpo_no_save_msg "$T/err" "nothing saved"; fi
[ ! -e "$T/ns/model.safetensors" ] && ok dpo_no_save_no_model || fail dpo_no_save_no_model "model written"
# --replace-invalid reaches the pair reader
{ printf '{"instruction":"Classify.\\n","input":"bad \377 byte","chosen":"Request: harmful","rejected":"Request: unharmful"}\n'; } >"$T/badutf.jsonl"
expect dpo_invalid_utf8 1 "$D" --base "$M" --pairs "$T/badutf.jsonl" --out "$T/bu" --template raw --quiet
grep_check dpo_invalid_utf8_hint "$T/err" "badutf.jsonl:1: .*--replace-invalid"
expect dpo_replace_invalid 0 "$D" --base "$M" --pairs "$T/badutf.jsonl" --out "$T/bu2" --template raw --quiet --no-save --grad-accum 1 --replace-invalid

# Pairs: raw records of a fixed shape, with weights.
python_free_pairs() {
    local i w
    for i in 0 1 2 3 4 5 6 7 8 9 10 11; do
        w=$(awk -v i=$i 'BEGIN { printf "%.3f", 0.8 + 0.4 * i / 11 }')
        printf '{"id":"p%d","instruction":"Classify.\\n","input":"Human user:\\nitem %d\\n\\nAI assistant:\\nNone\\n\\n","chosen":"Request: %s","rejected":"Request: %s","sample_weight":%s}\n' \
            $i $i "$([ $((i % 2)) = 0 ] && echo harmful || echo unharmful)" \
            "$([ $((i % 2)) = 0 ] && echo unharmful || echo harmful)" "$w"
    done
}
python_free_pairs >"$T/pairs.jsonl"
COMMON="--template raw --lr 5e-3 --beta 0.5 --grad-accum 2 --epochs 3 --save-every 4 --save-dtype f32 --quiet"

expect dpo_run_a 0 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/a" $COMMON --threads 2 --log "$T/a.log"
steps=$(grep -c '"rewards/margins"' "$T/a.log")
[ "$steps" -eq 18 ] && ok dpo_steps_logged || fail dpo_steps_logged "$steps lines, want 18"
jq -e -s 'all(.[]; has("loss") and has("dpo_loss") and has("sft_loss") and has("rewards/chosen") and
    has("rewards/rejected") and has("rewards/accuracies") and has("rewards/margins") and has("lr") and has("grad_norm"))' \
    "$T/a.log" >/dev/null && ok dpo_log_fields || fail dpo_log_fields "$(head -c 300 "$T/a.log")"
# step 1: the policy is the reference, so every reward is 0
jq -e -s '.[0]["rewards/margins"] == 0 and .[0]["rewards/chosen"] == 0 and .[0].lr == 0.005' "$T/a.log" >/dev/null &&
    ok dpo_first_step_rewards_zero || fail dpo_first_step_rewards_zero "$(head -n 1 "$T/a.log")"
[ -f "$T/a/checkpoint-18/trainer_state.bin" ] && [ -f "$T/a/checkpoint-4/model.safetensors" ] &&
    [ -f "$T/a/model.safetensors" ] && [ -f "$T/a/dpo_reference.bin" ] && [ -f "$T/a/tokenizer.json" ] &&
    ok dpo_checkpoint_files || fail dpo_checkpoint_files "$(ls "$T/a")"
expect dpo_refuses_existing 1 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/a" $COMMON
grep_check dpo_refuses_existing_msg "$T/err" "use --resume"

# Killed by SIGKILL after step 7 (last checkpoint: 4), then resumed: bit for bit.
GR_DPO_TEST_KILL_AT_STEP=7 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/b" $COMMON --threads 1 \
    --log "$T/b.log" >/dev/null 2>&1 &
wait $! 2>/dev/null
rc=$?
[ "$rc" -eq 137 ] && [ -d "$T/b/checkpoint-4" ] && [ ! -e "$T/b/checkpoint-8" ] &&
    ok dpo_killed || fail dpo_killed "exit $rc; $(ls "$T/b")"
cp "$T/b/dpo_reference.bin" "$T/ref-before"
expect dpo_resume 0 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/b" $COMMON --threads 2 \
    --log "$T/b.log" --resume
cmp -s "$T/ref-before" "$T/b/dpo_reference.bin" && ok dpo_resume_keeps_reference || fail dpo_resume_keeps_reference "rewritten"
cmp -s "$T/a/model.safetensors" "$T/b/model.safetensors" && ok dpo_resume_bit_exact ||
    fail dpo_resume_bit_exact "final weights differ"
cmp -s "$T/a/checkpoint-18/trainer_state.bin" "$T/b/checkpoint-18/trainer_state.bin" &&
    ok dpo_resume_state_bit_exact || fail dpo_resume_state_bit_exact "optimizer states differ"
if diff <(jq -c 'del(.tokens_per_s, .pairs_per_s, .elapsed_s)' "$T/a.log") \
        <(jq -c 'del(.tokens_per_s, .pairs_per_s, .elapsed_s)' "$T/b.log") >/dev/null; then
    ok dpo_resume_log; else fail dpo_resume_log "logs differ after resume"; fi
# resuming with another beta is refused
expect dpo_resume_other_beta 1 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/b" $COMMON --beta 0.4 --resume
grep_check dpo_resume_other_beta_msg "$T/err" "same --beta"
# --precision bf16: trains (margins grow), differs from fp32; a bf16 resume of the fp32 run is refused
expect dpo_bf16_resume_refused 1 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/b" $COMMON --precision bf16 --resume
grep_check dpo_bf16_resume_refused_msg "$T/err" "trained with --precision fp32"
expect dpo_bf16_run 0 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/h" $COMMON --threads 2 --precision bf16 \
    --log "$T/h.log"
jq -e -s '.[-1]["rewards/margins"] > 0' "$T/h.log" >/dev/null && ok dpo_bf16_learns ||
    fail dpo_bf16_learns "$(tail -n 1 "$T/h.log")"
cmp -s "$T/a/model.safetensors" "$T/h/model.safetensors" && fail dpo_bf16_differs "bf16 weights equal fp32" ||
    ok dpo_bf16_differs
# resuming with other pairs is refused
sed 's/item 3/item 33/' "$T/pairs.jsonl" >"$T/pairs2.jsonl"
rm -rf "$T/b/checkpoint-18" "$T/b/checkpoint-16"
expect dpo_resume_other_pairs 1 "$D" --base "$M" --pairs "$T/pairs2.jsonl" --out "$T/b" $COMMON --resume
grep_check dpo_resume_other_pairs_msg "$T/err" "dpo_reference.bin"

# Raw pairs and their gr-tokenize form train the same model.
"$GR_BIN/gr-tokenize" -t "$M" --template raw "$T/pairs.jsonl" -o "$T/pairs.tok.jsonl" -q
expect dpo_run_tokens 0 "$D" --base "$M" --pairs "$T/pairs.tok.jsonl" --out "$T/c" $COMMON --threads 2
cmp -s "$T/a/model.safetensors" "$T/c/model.safetensors" && ok dpo_raw_equals_tokenized ||
    fail dpo_raw_equals_tokenized "final weights differ"
# a micro-batch of 2 pairs = 2 accumulated micro-batches of 1 (the same pairs per step)
expect dpo_run_mb2 0 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/e" $COMMON --threads 2 --micro-batch 2 --grad-accum 1
cmp -s "$T/a/model.safetensors" "$T/e/model.safetensors" && ok dpo_micro_batch_equals_accumulation ||
    fail dpo_micro_batch_equals_accumulation "final weights differ"
# --recompute: the same weights
expect dpo_run_recompute 0 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/f" $COMMON --threads 2 --recompute
cmp -s "$T/a/model.safetensors" "$T/f/model.safetensors" && ok dpo_recompute_same ||
    fail dpo_recompute_same "final weights differ"
# --no-weights trains another model
expect dpo_run_plain 0 "$D" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/d" $COMMON --threads 2 --no-weights
cmp -s "$T/a/model.safetensors" "$T/d/model.safetensors" && fail dpo_no_weights_differs "same weights" ||
    ok dpo_no_weights_differs

# The tiny pipeline: R-SFT on labels that disagree 2:1 per prompt, k samples,
# mining, HS-DPO; the margin and the preference accuracy on the mined pairs rise.
P=$T/pipe
mkdir -p "$P"
i=0
for w in bomb cake gun tea hack song kill book; do
    g=$([ $((i % 2)) = 0 ] && echo harmful || echo unharmful)
    b=$([ $((i % 2)) = 0 ] && echo unharmful || echo harmful)
    inp="Human user:\\n$w\\n\\nAI assistant:\\nNone\\n\\n"
    printf '{"id":"e%d","instruction":"Classify.\\n","input":"%s","output":"Request: %s"}\n' $i "$inp" $g >>"$P/examples.jsonl"
    for o in $g $g $b; do
        printf '{"instruction":"Classify.\\n","input":"%s","output":"Request: %s"}\n' "$inp" $o >>"$P/sft.jsonl"
    done
    i=$((i + 1))
done
"$GR_BIN/gr-tokenize" -t "$M" --template raw "$P/sft.jsonl" -o "$P/sft.tok.jsonl" -q &&
"$GR_BIN/gr-sft" --base "$M" --data "$P/sft.tok.jsonl" --out "$P/rsft" --micro-batch 4 --grad-accum 1 \
    --lr 1e-2 --epochs 15 --quiet --threads 2 && cp "$M"/tokenizer* "$P/rsft/" &&
"$GR_BIN/gr-sample" -m "$P/rsft" -k 4 --temperature 1.0 --max-tokens 24 --seed 1 "$P/examples.jsonl" \
    -o "$P/samples.jsonl" -q &&
    # --answers eval: these outputs hold one answer line, and the reference reading
    # (gr-mine's default) counts a sample only with all three
    "$GR_BIN/gr-mine" --answers eval --self "$P/samples.jsonl" -o "$P/pairs.jsonl" 2>"$P/mine.err"
n=$(wc -l <"$P/pairs.jsonl" 2>/dev/null || echo 0)
[ "$n" -ge 4 ] && ok dpo_pipeline_mined || fail dpo_pipeline_mined "$n pairs; $(cat "$P/mine.err")"
expect dpo_pipeline_train 0 "$D" --base "$P/rsft" --pairs "$P/pairs.jsonl" --out "$P/dpo" --template raw \
    --lr 5e-3 --beta 0.5 --grad-accum 2 --epochs 40 --eval-every 20 --log "$P/dpo.log" --threads 2 --quiet
# evaluations over all mined pairs: margins rise, the last accuracy is high
# (40 epochs: at 20 the accuracy on these 8 pairs sat at 0.625-0.75 and moved
# with the last bits of the attention numerics; by 40 it is 0.875 either way)
r=$(jq -s -r '[.[] | select(has("eval_loss"))] | "\(.[0]["eval_rewards/margins"]) \(.[-1]["eval_rewards/margins"]) \(.[-1]["eval_rewards/accuracies"])"' "$P/dpo.log")
set -- $r
awk -v a="$1" -v b="$2" -v acc="$3" 'BEGIN { exit !(b > a && b > 0.5 && acc >= 0.75) }' &&
    ok dpo_pipeline_margin_and_accuracy_rise || fail dpo_pipeline_margin_and_accuracy_rise "margin $1 -> $2, accuracy $3"
