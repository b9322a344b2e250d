# gr-sft from a quantized GGUF base: the real test model (SmolLM2-135M-Instruct
# Q4_1, scripts/fetch-test-model), token records made by gr-tokenize with the
# GGUF's own tokenizer. The pretrained model's first loss on plain instruction
# text must be far below a random model's ln(49152) = 10.8, and two steps at a
# small rate must lower it on the same batch.
. "$(dirname "$0")/../lib.sh"
gguf=$("$GR_ROOT/scripts/fetch-test-model" 2>"$T/fetch.err"); rc=$?
if [ "$rc" -eq 3 ]; then echo "# skip sft_gguf: the test model could not be downloaded"; exit 0; fi
[ "$rc" -eq 0 ] || { fail sft_gguf_fetch "$(tail -n 2 "$T/fetch.err")"; exit 0; }
cat >"$T/alpaca.jsonl" <<'J'
{"instruction":"Name the capital of France.","input":"","output":"The capital of France is Paris."}
{"instruction":"Translate to French.","input":"Good morning","output":"Bonjour."}
{"instruction":"Give the opposite word.","input":"hot","output":"The opposite of hot is cold."}
{"instruction":"Add the numbers.","input":"2 and 3","output":"2 plus 3 is 5."}
J
expect sft_gguf_tokenize 0 "$GR_BIN/gr-tokenize" -q -t "$gguf" "$T/alpaca.jsonl" -o "$T/tok.jsonl"
expect sft_gguf_train 0 "$GR_BIN/gr-sft" --base "$gguf" --data "$T/tok.jsonl" --out "$T/o" \
    --micro-batch 4 --grad-accum 1 --epochs 3 --lr 1e-4 --max-steps 3 --no-save --quiet --log "$T/log"
l1=$(sed -n 1p "$T/log" | sed 's/.*"loss":\([^,]*\).*/\1/')
l3=$(sed -n 3p "$T/log" | sed 's/.*"loss":\([^,]*\).*/\1/')
awk -v a="$l1" -v b="$l3" 'BEGIN { exit !(a > 0 && a < 6 && b < a) }' && ok sft_gguf_loss ||
    fail sft_gguf_loss "losses $l1 then $l3"
echo "# sft_gguf: losses $l1 then $l3"
