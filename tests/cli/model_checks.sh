# Model loading refuses what it cannot run right (issue 12 §5): a config.json
# of another architecture, by name, and weights holding a NaN or an infinity,
# naming the tensor, row and column. Through gr-sft --eval-only, which loads
# the model and does nothing else first.
. "$(dirname "$0")/../lib.sh"
S=$GR_BIN/gr-sft
D=$GR_ROOT/testdata/train/synth-eval.jsonl
mk() { rm -rf "$T/$1"; cp -r "$GR_ROOT/testdata/models/$2" "$T/$1"; }

mk ok tiny-gqa-tied
expect model_ok 0 "$S" --base "$T/ok" --eval-only --eval-data "$D" --quiet

mk gpt2 tiny-gqa-tied
jq '.architectures = ["GPT2LMHeadModel"] | .model_type = "gpt2"' "$T/ok/config.json" >"$T/gpt2/config.json"
expect model_gpt2_refused 1 "$S" --base "$T/gpt2" --eval-only --eval-data "$D" --quiet
grep_check model_gpt2_refused_msg "$T/err" 'config.json: architecture GPT2LMHeadModel is not supported \(LlamaForCausalLM is\)'
mk qwen tiny-gqa-tied
jq '.model_type = "qwen2"' "$T/ok/config.json" >"$T/qwen/config.json"
expect model_type_refused 1 "$S" --base "$T/qwen" --eval-only --eval-data "$D" --quiet
grep_check model_type_refused_msg "$T/err" "model_type 'qwen2' is not supported"

# poke NAME TENSOR ROW COL HEX: writes the value (bytes of its dtype, as hex)
# at [ROW][COL] of TENSOR in NAME/model.safetensors
poke() {
    python3 - "$T/$1/model.safetensors" "$2" "$3" "$4" "$5" <<'PY'
import json, struct, sys
path, name, row, col, hexval = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    t = hdr[name]
    size = {"F32": 4, "F16": 2, "BF16": 2}[t["dtype"]]
    off = 8 + n + t["data_offsets"][0] + (row * t["shape"][1] + col) * size
    val = bytes.fromhex(hexval)[:size] if size == 4 else bytes.fromhex(hexval)[-2:]
    f.seek(off)
    f.write(val[::-1])  # hex is big-endian, the file little-endian
PY
}
dtype=$(python3 -c "import json,struct,sys; f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; print(json.loads(f.read(n))['model.layers.1.mlp.down_proj.weight']['dtype'])" "$T/ok/model.safetensors")
nan=7fc00000 inf=7f800000
[ "$dtype" = F32 ] || { nan=7fc0; inf=7f80; [ "$dtype" = F16 ] && { nan=7e00; inf=7c00; }; }
mk nan tiny-gqa-tied
poke nan model.layers.1.mlp.down_proj.weight 3 5 $nan
expect model_nan_refused 1 "$S" --base "$T/nan" --eval-only --eval-data "$D" --quiet
grep_check model_nan_refused_msg "$T/err" "layer 1's down_proj holds a NaN or an infinity \(row 3, column 5\)"
mk inf tiny-gqa-tied
poke inf model.embed_tokens.weight 0 0 $inf
expect model_inf_refused 1 "$S" --base "$T/inf" --eval-only --eval-data "$D" --quiet
grep_check model_inf_refused_msg "$T/err" "the token embedding holds a NaN or an infinity \(row 0, column 0\)"
