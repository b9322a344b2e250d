#!/usr/bin/env bash
# The CUDA backend is a library loaded on --device cuda (lib/cuda_dl.h): no tool
# links a CUDA library, a CPU run never loads one, and a missing or broken
# libgr-cuda.so is a clear runtime error (exit 1). In a build without CUDA only
# the link check runs.
. "$(dirname "$0")/../lib.sh"
C=$GR_BIN/gr-classify
# no tool names a CUDA library among the libraries it needs
bad=""
for b in "$GR_BIN"/gr-*; do
    readelf -d "$b" | grep -Eq 'NEEDED.*(cudart|cublas|nccl|libcuda)' && bad="$bad $(basename "$b")"
done
[ -z "$bad" ] && ok cuda_not_linked || fail cuda_not_linked "links CUDA:$bad"
"$C" --version >"$T/ver"
if ! grep -q 'backends: cpu, cuda' "$T/ver"; then
    ok "cuda_lib_skip (a build without CUDA)"
    exit 0
fi
grep_check cuda_version_names_library "$T/ver" "cuda \(/.*libgr-cuda\.so, loaded by --device cuda\)"
M=$GR_ROOT/testdata/models/tiny-smollm2-vocab
TOK=$GR_ROOT/testdata/tokenizer/smollm2/tokenizer.json.zst
printf '{"prompt":"x","response":null}\n' > "$T/in.jsonl"
# a CPU run loads no CUDA library (LD_DEBUG lists every object the loader opens)
LD_DEBUG=files "$C" -q -m "$M" -t "$TOK" --max-tokens 2 -o "$T/v.jsonl" "$T/in.jsonl" 2>"$T/ld" >/dev/null
grep -Eq 'file=.*(libgr-cuda|cudart|cublas)' "$T/ld" && fail cpu_run_loads_no_cuda "$(grep -E 'cudart|cublas|libgr-cuda' "$T/ld" | head -3)" \
    || { [ -s "$T/v.jsonl" ] && ok cpu_run_loads_no_cuda || fail cpu_run_loads_no_cuda "no verdict written"; }
# GR_CUDA_LIB names the library; nothing else is tried when it is set
expect cuda_lib_missing 1 env GR_CUDA_LIB="$T/none.so" "$C" -m "$M" -t "$TOK" --device cuda "$T/in.jsonl"
grep_check cuda_lib_missing_msg "$T/err" "libgr-cuda\.so could not be loaded \($T/none\.so: not found\); set GR_CUDA_LIB"
printf 'not an ELF file\n' > "$T/bad.so"
expect cuda_lib_broken 1 env GR_CUDA_LIB="$T/bad.so" "$C" -m "$M" -t "$TOK" --device cuda "$T/in.jsonl"
grep_check cuda_lib_broken_msg "$T/err" "$T/bad\.so: .*(ELF|header|short)"
# a library without the backend's entry points
cp "$(ldd "$C" | awk '/libzstd/ {print $3}')" "$T/other.so"
expect cuda_lib_wrong 1 env GR_CUDA_LIB="$T/other.so" "$C" -m "$M" -t "$TOK" --device cuda "$T/in.jsonl"
grep_check cuda_lib_wrong_msg "$T/err" "no symbol gr_backend_cuda"
# the training table and the NCCL transport come from the same library
expect sft_cuda_lib_missing 1 env GR_CUDA_LIB="$T/none.so" "$GR_BIN/gr-sft" --base "$M" --data /dev/null --out "$T/s" --device cuda
grep_check sft_cuda_lib_missing_msg "$T/err" "libgr-cuda\.so could not be loaded"
# the real library loads (its calls into the tool resolve: kernels/cuda/host.sym);
# without a GPU opening the device is the error
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    expect cuda_lib_loads 1 "$C" -m "$M" -t "$TOK" --device cuda "$T/in.jsonl"
    grep_check cuda_lib_loads_msg "$T/err" "no usable CUDA device"
fi
