#!/usr/bin/env python3
"""Converts the test model's GGUF into a Hugging Face folder with transformers
(dequantized, float32, transformers' own Q/K un-permutation), beside the GGUF in
the cache: ${XDG_CACHE_HOME:-~/.cache}/guardreasoner-c/SmolLM2-135M-Instruct-hf/.
tests/unit/test_smollm2.c then checks that gr gives the same logits on the
folder as on the GGUF (and skips that check when the folder is absent, as in CI,
which has no torch). Needs torch, transformers, gguf, accelerate."""
import os, subprocess
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

here = os.path.dirname(os.path.abspath(__file__))
gguf_path = subprocess.check_output([os.path.join(here, "fetch-test-model")], text=True).strip()
d, f = os.path.split(gguf_path)
out = os.path.join(d, "SmolLM2-135M-Instruct-hf")
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
# a GGUF-loaded model refuses to serialise: copy its (dequantized) weights into
# a plain LlamaForCausalLM first
cfg = model.config
if hasattr(cfg, "quantization_config"):
    del cfg.quantization_config
plain = type(model)(cfg)
plain.load_state_dict(model.state_dict())
plain.save_pretrained(out, safe_serialization=True)
AutoTokenizer.from_pretrained(d, gguf_file=f).save_pretrained(out)
print(out)
