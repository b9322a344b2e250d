# --precision bf16 in gr-sft and gr-dpo: bad values refused, a bf16 run trains
# (loss falls) and differs from the fp32 one, the precision is recorded in the
# checkpoints (a resume with the other precision is refused), a killed bf16
# run resumes bit for bit.
. "$(dirname "$0")/../lib.sh"
S=$GR_BIN/gr-sft
P=$GR_BIN/gr-dpo
M=$GR_ROOT/testdata/models/tiny-gqa-tied
D=$GR_ROOT/testdata/train/synth.jsonl
COMMON="--micro-batch 4 --grad-accum 2 --lr 1e-2 --quiet --save-dtype f32 --threads 2"

expect bf16_bad_value 2 "$S" --base "$M" --data "$D" --out "$T/x" --precision fp16
grep_check bf16_bad_value_msg "$T/err" "--precision: 'fp32' or 'bf16'"
expect dpo_bf16_bad_value 2 "$P" --base "$M" --data "$D" --out "$T/x" --precision half
grep "precision P" <("$S" --help) >/dev/null && ok bf16_help || fail bf16_help "not in --help"

expect bf16_run_fp32 0 "$S" --base "$M" --data "$D" --out "$T/f" $COMMON --epochs 2 --log "$T/f.log"
expect bf16_run 0 "$S" --base "$M" --data "$D" --out "$T/a" $COMMON --epochs 2 --save-every 3 \
    --precision bf16 --log "$T/a.log"
if command -v jq >/dev/null; then
    first=$(head -1 "$T/a.log" | jq .loss) last=$(tail -1 "$T/a.log" | jq .loss)
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.8 * a) }' && ok bf16_learns ||
        fail bf16_learns "loss $first -> $last"
    lf=$(tail -1 "$T/f.log" | jq .loss)
    awk -v a="$lf" -v b="$last" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.15 * a) }' &&
        ok bf16_near_fp32 || fail bf16_near_fp32 "final loss bf16 $last, fp32 $lf"
fi
cmp -s "$T/a/model.safetensors" "$T/f/model.safetensors" && fail bf16_differs "bf16 weights equal fp32" ||
    ok bf16_differs

# killed after step 4 (checkpoint 3), resumed: a fp32 resume is refused, bf16 bit for bit
GR_SFT_TEST_KILL_AT_STEP=4 "$S" --base "$M" --data "$D" --out "$T/b" $COMMON --epochs 2 --save-every 3 \
    --precision bf16 --log "$T/b.log" >/dev/null 2>&1 &
wait $! 2>/dev/null
[ -d "$T/b/checkpoint-3" ] && ok bf16_killed || fail bf16_killed "$(ls "$T/b")"
expect bf16_resume_fp32_refused 1 "$S" --base "$M" --data "$D" --out "$T/b" $COMMON --epochs 2 \
    --save-every 3 --log "$T/b.log" --resume
grep_check bf16_resume_fp32_msg "$T/err" "trained with --precision bf16"
expect bf16_resume 0 "$S" --base "$M" --data "$D" --out "$T/b" $COMMON --epochs 2 --save-every 3 \
    --precision bf16 --log "$T/b.log" --resume
cmp -s "$T/a/model.safetensors" "$T/b/model.safetensors" && ok bf16_resume_bit_exact ||
    fail bf16_resume_bit_exact "final weights differ"
