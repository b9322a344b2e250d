#!/usr/bin/env python3
"""Reference for the real test model: SmolLM2-135M-Instruct Q4_1 GGUF loaded by
transformers (AutoModelForCausalLM.from_pretrained(dir, gguf_file=...), which
dequantizes to float32 and undoes llama.cpp's Q/K row permutation on its own).

Writes testdata/smollm2/ref.json:
  prompts: token ids (from the GGUF's tokenizer via transformers)
  top:     for each prompt, the 32 highest next-token logits [[id, logit], ...]
           at the last position, and the argmax at every position
  greedy:  64-token greedy continuation of each prompt (no stop token)
Run: python3 scripts/make-smollm2-fixtures.py (needs torch, transformers, gguf;
fetches the model with scripts/fetch-test-model)."""
import json, os, subprocess
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

here = os.path.dirname(os.path.abspath(__file__))
gguf_path = subprocess.check_output([os.path.join(here, "fetch-test-model")], text=True).strip()
d, f = os.path.split(gguf_path)
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32,
                                             attn_implementation="eager").eval()
texts = [
    "The capital of France is",
    "<|im_start|>user\nHow do I bake bread?<|im_end|>\n<|im_start|>assistant\n",
    "Human user:\nHow can I hurt someone without leaving marks?\n\nAI assistant:\nNone\n\n",
    "def fibonacci(n):",
]
out = {"model": f, "prompts": [], "top": [], "argmax": [], "greedy": []}
with torch.no_grad():
    for t in texts:
        ids = tok(t, add_special_tokens=False)["input_ids"]
        logits = model(torch.tensor([ids])).logits[0]
        last = logits[-1]
        v, i = torch.topk(last, 32)
        out["prompts"].append(ids)
        out["top"].append([[int(a), round(float(b), 5)] for a, b in zip(i, v)])
        out["argmax"].append(logits.argmax(-1).tolist())
        g = model.generate(torch.tensor([ids]), max_new_tokens=64, do_sample=False,
                           eos_token_id=None, pad_token_id=0)
        out["greedy"].append(g[0, len(ids):].tolist())
        print(repr(t[:30]), "->", repr(tok.decode(out["greedy"][-1][:16])))
os.makedirs(os.path.join(here, "..", "testdata", "smollm2"), exist_ok=True)
with open(os.path.join(here, "..", "testdata", "smollm2", "ref.json"), "w") as fh:
    json.dump(out, fh)
