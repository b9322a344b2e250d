# Data-parallel gr-dpo over MPI (lib/dp.h, the code gr-sft shares): `mpirun -np 2`
# must take the same steps as one process, up to the summation order of the
# all-reduced gradients and metric sums. Tolerance: every step's loss, margin
# and gradient norm within 1e-5 relative (or 1e-9 absolute for the values that
# are 0 at step 1), the reference log-probs file identical (each pair is
# computed by one process, the others add 0: exact), the final weights within
# 1e-5 of the largest weight. The second run sums the gradients in 4 KiB
# buckets started during the backward pass (GR_DP_BUCKET_BYTES). Skipped when
# mpicc or mpirun is missing.
. "$(dirname "$0")/../lib.sh"
if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null; then
    echo "# skip dpo_mpi: Open MPI (mpicc, mpirun) not installed"
    exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
M=$T/m
mkdir -p "$M"
cp "$GR_ROOT/testdata/models/tiny-gqa-tied/config.json" "$GR_ROOT/testdata/models/tiny-gqa-tied/model.safetensors" \
   "$GR_ROOT/testdata/dpo/byte-tokenizer/tokenizer.json" "$GR_ROOT/testdata/dpo/byte-tokenizer/tokenizer_config.json" "$M/"
LDL=$(make -s -C "$GR_ROOT" print-ldlibs 2>/dev/null | tail -n 1)
# shellcheck disable=SC2086
if mpicc -DGR_MPI -I"$GR_ROOT/lib" -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DGR_VERSION='"mpi"' \
    -std=c11 -O2 -Wall -Wextra -Werror -pthread "$GR_ROOT/cmd/gr-dpo.c" "$GR_ROOT/lib/mpi/dp_mpi.c" \
    "$GR_ROOT/build/libgr.a" -o "$T/gr-dpo-mpi" $LDL 2>"$T/cc.err"; then
    ok dpo_mpi_build
else
    fail dpo_mpi_build "$(head -c 300 "$T/cc.err")"; exit 0
fi
for i in 0 1 2 3 4 5 6 7 8; do
    w=$(awk -v i=$i 'BEGIN { printf "%.3f", 0.8 + 0.4 * i / 8 }')
    printf '{"id":"p%d","instruction":"Classify.\\n","input":"item %d","chosen":"Request: %s","rejected":"Request: %s","sample_weight":%s}\n' \
        $i $i "$([ $((i % 2)) = 0 ] && echo harmful || echo unharmful)" \
        "$([ $((i % 2)) = 0 ] && echo unharmful || echo harmful)" "$w"
done >"$T/pairs.jsonl"
# 9 pairs, 3 per step: the two processes take 2 and 1 of each step's pairs
OPTS="--template raw --lr 5e-3 --beta 0.5 --micro-batch 1 --grad-accum 3 --epochs 2 --save-dtype f32 --threads 1 --quiet"
expect dpo_mpi_single 0 "$GR_BIN/gr-dpo" --base "$M" --pairs "$T/pairs.jsonl" --out "$T/one" $OPTS --log "$T/one.log"
expect dpo_mpi_run 0 env GR_DP_BUCKET_BYTES=4096 mpirun -x GR_DP_BUCKET_BYTES -np 2 "$T/gr-dpo-mpi" \
    --base "$M" --pairs "$T/pairs.jsonl" --out "$T/two" $OPTS --log "$T/two.log"
cmp -s "$T/one/dpo_reference.bin" "$T/two/dpo_reference.bin" && ok dpo_mpi_same_reference ||
    fail dpo_mpi_same_reference "reference log-probs differ"
n1=$(grep -c '"loss"' "$T/one.log"); n2=$(grep -c '"loss"' "$T/two.log")
[ "$n1" -eq 6 ] && [ "$n2" -eq 6 ] && ok dpo_mpi_one_log || fail dpo_mpi_one_log "$n1 and $n2 steps, want 6"
bad=$(jq -s -r --slurpfile b "$T/two.log" '
    [range(0; length) as $i | .[$i] as $x | $b[$i] as $y |
     ("loss", "rewards/margins", "rewards/accuracies", "grad_norm", "logps/chosen") as $f |
     select((($x[$f] - $y[$f]) | fabs) > 1e-5 * ($x[$f] | fabs) + 1e-9) |
     "step \($i + 1) \($f): \($x[$f]) vs \($y[$f])"] | join("; ")' "$T/one.log")
[ -z "$bad" ] && ok dpo_mpi_same_steps || fail dpo_mpi_same_steps "$bad"
python3 - "$T/one/model.safetensors" "$T/two/model.safetensors" >"$T/cmp.out" 2>&1 <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4),
                             b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
top = max(abs(x) for t in a.values() for x in t)
d = max(abs(x - y) for k in a for x, y in zip(a[k], b[k]))
print("max diff %.3g of max weight %.3g" % (d, top))
sys.exit(0 if sorted(a) == sorted(b) and d <= 1e-5 * top else 1)
PY
[ $? -eq 0 ] && ok dpo_mpi_same_model || fail dpo_mpi_same_model "$(cat "$T/cmp.out")"
