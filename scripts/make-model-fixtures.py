#!/usr/bin/env python3
"""Tiny random LlamaForCausalLM checkpoints + reference logits from transformers.

Writes testdata/models/NAME/ (config.json, model.safetensors) and
testdata/models/NAME/ref.json = {"prompts": [[ids..], ..], "logits": [[[v]*vocab]*len]*n}
(fp32 logits for every position of each prompt, computed by transformers in
float32 with eager attention). The configs cover what lib/forward.c must get
right: GQA and plain multi-head, tied and untied embeddings, llama3 rope
scaling, an odd head_dim (not dim/heads), eos as a list, BF16 and F16 storage.

Run: python3 scripts/make-model-fixtures.py  (needs torch, transformers, safetensors)"""
import json, os
import torch
from transformers import LlamaConfig, LlamaForCausalLM

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "models")

CONFIGS = {
    "tiny-gqa-tied": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, vocab_size=300,
                          tie_word_embeddings=True, dtype="float32"),
    "tiny-mha-untied": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=4, vocab_size=300,
                            tie_word_embeddings=False, dtype="float32", rope_theta=10000.0),
    "tiny-llama3-bf16": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=1, vocab_size=300,
                             tie_word_embeddings=True, dtype="bfloat16", rope_theta=500000.0,
                             max_position_embeddings=131072, eos_token_id=[298, 299],
                             rope_scaling={"factor": 32.0, "low_freq_factor": 1.0,
                                           "high_freq_factor": 4.0,
                                           "original_max_position_embeddings": 64,
                                           "rope_type": "llama3"}),
    "tiny-oddhead-f16": dict(hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                             num_attention_heads=3, num_key_value_heads=1, head_dim=10,
                             vocab_size=300, tie_word_embeddings=False, dtype="float16"),
}

PROMPTS = [[1, 17, 42, 99, 5, 250, 7, 8, 200, 13, 64, 3], [1, 2], [299, 0, 150, 151, 152, 153, 154, 10, 11, 12, 290, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99]]

def legacy_config(path):
    """transformers 5 writes rope_parameters/dtype; the released GuardReasoner
    (LLaMA 3.x) folders have the 4.x form: rope_theta, rope_scaling, torch_dtype.
    All but one fixture use the 4.x form; tiny-mha-untied keeps the 5.x one."""
    with open(path) as f:
        c = json.load(f)
    rp = c.pop("rope_parameters", None) or {}
    c["rope_theta"] = rp.pop("rope_theta", 10000.0)
    c["rope_scaling"] = rp if rp.get("rope_type", "default") != "default" else None
    c["torch_dtype"] = c.pop("dtype", "float32")
    with open(path, "w") as f:
        json.dump(c, f, indent=2)


def main():
    torch.manual_seed(0)
    for name, kw in CONFIGS.items():
        dtype = getattr(torch, kw.pop("dtype"))
        cfg = LlamaConfig(bos_token_id=1, eos_token_id=kw.pop("eos_token_id", 2),
                          rms_norm_eps=1e-5, attn_implementation="eager", **kw)
        model = LlamaForCausalLM(cfg)
        # larger weights than the 0.02 default so that errors would show
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 2:
                    p.normal_(0, 0.15)
                else:
                    p.uniform_(0.5, 1.5)
        model = model.to(dtype)  # round the weights to the stored dtype
        out = os.path.join(root, name)
        os.makedirs(out, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        if name != "tiny-mha-untied":
            legacy_config(os.path.join(out, "config.json"))
        # reference from what transformers reads back from the folder itself
        model = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
        logits = []
        with torch.no_grad():
            for p in PROMPTS:
                ids = torch.tensor([p])
                logits.append(model(ids).logits[0].tolist())
            # hidden states of the first prompt: the input of every layer, then the
            # final-normed output (transformers' output_hidden_states)
            hs = model(torch.tensor([PROMPTS[0]]), output_hidden_states=True).hidden_states
            hidden = [[[round(v, 6) for v in row] for row in h[0].tolist()] for h in hs]
        # a 32-token greedy continuation of the first prompt
        with torch.no_grad():
            g = model.generate(torch.tensor([PROMPTS[0]]), max_new_tokens=32, do_sample=False,
                               eos_token_id=None, pad_token_id=0)
        greedy = g[0, len(PROMPTS[0]):].tolist()
        with open(os.path.join(out, "ref.json"), "w") as f:
            json.dump({"prompts": PROMPTS, "logits": [[[round(v, 6) for v in row] for row in l] for l in logits],
                       "greedy": greedy, "hidden": hidden}, f)
        for fn in os.listdir(out):
            if fn not in ("config.json", "model.safetensors", "ref.json"):
                os.remove(os.path.join(out, fn))
        if name == "tiny-gqa-tied":
            # the same weights as shards + model.safetensors.index.json
            sh = os.path.join(root, name + "-sharded")
            os.makedirs(sh, exist_ok=True)
            model.save_pretrained(sh, safe_serialization=True, max_shard_size="100KB")
            for fn in os.listdir(sh):
                if fn == "config.json" or fn.endswith(".safetensors") or fn.endswith(".index.json"):
                    continue
                os.remove(os.path.join(sh, fn))
            legacy_config(os.path.join(sh, "config.json"))
        print(name, {fn: os.path.getsize(os.path.join(out, fn)) for fn in os.listdir(out)})

main()


def smollm2_vocab_model():
    """A tiny random model with SmolLM2's vocabulary size (49152) and special ids,
    BF16, so that gr-classify / gr-sample run end to end on a Hugging Face folder
    with the SmolLM2 tokenizer (testdata/tokenizer/smollm2). No reference logits:
    the CLI tests check the plumbing, the other fixtures the arithmetic."""
    torch.manual_seed(1)
    cfg = LlamaConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, vocab_size=49152,
                      tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                      rms_norm_eps=1e-5, max_position_embeddings=8192)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5) if p.dim() == 2 else p.uniform_(0.5, 1.5)
    out = os.path.join(root, "tiny-smollm2-vocab")
    os.makedirs(out, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    legacy_config(os.path.join(out, "config.json"))
    for fn in os.listdir(out):
        if fn not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(out, fn))
    print("tiny-smollm2-vocab", {fn: os.path.getsize(os.path.join(out, fn)) for fn in os.listdir(out)})


smollm2_vocab_model()
