#!/usr/bin/env bash
# gr-sft --plan: the memory plan (lib/train_mem_plan.h) for cpu and cuda from
# a config.json alone: LLaMA-3.1-8B shapes, sequence 2048, micro-batch 1 fit
# an H200's 141 GB on cuda with --recompute and not without it.
. "$(dirname "$0")/../lib.sh"
cat > "$T/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
 "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
 "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
 "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
JSON
total() { # FILE DEVICE: the plan's total bytes for DEVICE
    awk -v d="($2):" '$1 == "memory" && $3 == d {on = 1} on && $1 == "total" {print $2; exit}' "$1"
}
expect plan_8b_recompute 0 "$GR_BIN/gr-sft" --base "$T/config.json" --plan --micro-batch 1 --cutoff 2048 --recompute
cp "$T/out" "$T/plan_r"
expect plan_8b 0 "$GR_BIN/gr-sft" --base "$T/config.json" --plan --micro-batch 1 --cutoff 2048
grep_check plan_8b_params "$T/plan_r" "8030261248 parameters"
r=$(total "$T/plan_r" cuda) f=$(total "$T/out" cuda)
[ -n "$r" ] && [ "$r" -le 141000000000 ] && ok plan_8b_recompute_fits || fail plan_8b_recompute_fits "cuda total $r"
[ -n "$f" ] && [ "$f" -gt 141000000000 ] && ok plan_8b_no_recompute_does_not_fit || fail plan_8b_no_recompute_does_not_fit "cuda total $f"
grep_check plan_cpu_fp32_grads "$T/plan_r" "gradients \(fp32\)  *32121044992 bytes"
grep_check plan_cuda_bf16_grads "$T/plan_r" "gradients \(bf16\)  *16060522496 bytes"
expect plan_tiny_model 0 "$GR_BIN/gr-sft" --base "$GR_ROOT/testdata/models/tiny-gqa-tied" --plan --micro-batch 2 --cutoff 64
grep_check plan_tiny_params "$T/out" "80960 parameters, micro-batch of 128 tokens in 2 sequences"
expect plan_bad_config 1 "$GR_BIN/gr-sft" --base "$T/missing.json" --plan
