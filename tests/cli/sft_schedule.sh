# gr-sft(1)'s statements about the schedule and the targets, checked on the
# tiny model: linear warmup k/W (the first update at rate 0), n_prompt 0 the
# same as 1, a step without target tokens logged with loss 0 and still taken.
. "$(dirname "$0")/../lib.sh"
S=$GR_BIN/gr-sft
M=$GR_ROOT/testdata/models/tiny-gqa-tied
D=$GR_ROOT/testdata/train/synth.jsonl
COMMON="--micro-batch 4 --grad-accum 2 --lr 1e-2 --quiet --save-dtype f32 --threads 1"

expect sft_warmup_run 0 "$S" --base "$M" --data "$D" --out "$T/w" $COMMON --warmup-steps 4 --log "$T/w.log"
got=$(jq -s -r '[.[0:5][].lr] | map(tostring) | join(" ")' "$T/w.log")
[ "$got" = "0 0.0025 0.005 0.0075 0.01" ] && ok sft_warmup_linear || fail sft_warmup_linear "lr of steps 1-5: $got"

# n_prompt 0 trains exactly as n_prompt 1
jq -c '.n_prompt = 1' "$D" >"$T/np1.jsonl"
jq -c '.n_prompt = 0' "$D" >"$T/np0.jsonl"
expect sft_np1 0 "$S" --base "$M" --data "$T/np1.jsonl" --out "$T/a1" $COMMON --max-steps 2
expect sft_np0 0 "$S" --base "$M" --data "$T/np0.jsonl" --out "$T/a0" $COMMON --max-steps 2
cmp -s "$T/a1/model.safetensors" "$T/a0/model.safetensors" && ok sft_n_prompt_0_is_1 || fail sft_n_prompt_0_is_1 "weights differ"

# no target token anywhere: loss 0, targets 0, the steps are still counted
jq -c '.n_prompt = (.ids | length)' "$D" >"$T/none.jsonl"
expect sft_no_targets 0 "$S" --base "$M" --data "$T/none.jsonl" --out "$T/n" $COMMON --max-steps 2 --log "$T/n.log"
got=$(jq -s -r '[length, (map(.loss) | add), (map(.targets) | add)] | map(tostring) | join(" ")' "$T/n.log")
[ "$got" = "2 0 0" ] && ok sft_no_targets_logged || fail sft_no_targets_logged "steps, loss, targets: $got"

# --replace-invalid reaches the training-data reader (issue 12 §5)
{ head -n 3 "$D"; printf '{"id":"bad \377","ids":[1,10,44,57,68,11,68,57,44,2],"n_prompt":6}\n'; } >"$T/badutf.jsonl"
expect sft_invalid_utf8 1 "$S" --base "$M" --data "$T/badutf.jsonl" --out "$T/bu" $COMMON --max-steps 1
grep_check sft_invalid_utf8_hint "$T/err" "badutf.jsonl:4: .*--replace-invalid"
expect sft_replace_invalid 0 "$S" --base "$M" --data "$T/badutf.jsonl" --out "$T/bu2" $COMMON --max-steps 1 --replace-invalid
