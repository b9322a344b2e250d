#!/usr/bin/env python3
"""Checks that a folder written by gr-sft loads in transformers and computes what
our forward computed: the mean NLL over the target tokens of token records DATA
(logits at t scored against ids[t+1] for t+1 >= n_prompt) must equal WANT (the
eval_loss gr-sft logged for the same records) within TOL (relative).

Usage: check-sft-checkpoint.py DIR DATA.jsonl WANT [TOL]   (exit 0 when it agrees)
Prints "ok LOSS" or "mismatch LOSS WANT"."""
import json, sys
import torch
from transformers import AutoModelForCausalLM


def main():
    d, data, want = sys.argv[1], sys.argv[2], float(sys.argv[3])
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-4
    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    nll, n = 0.0, 0
    with open(data) as f:
        for line in f:
            r = json.loads(line)
            ids, p = r["ids"], max(r["n_prompt"], 1)
            if len(ids) <= p:
                continue
            with torch.no_grad():
                lg = model(input_ids=torch.tensor([ids])).logits[0].float()
            lp = torch.log_softmax(lg, dim=-1)
            for t in range(p, len(ids)):
                nll -= float(lp[t - 1, ids[t]])
                n += 1
    loss = nll / n
    if abs(loss - want) <= tol * max(abs(want), 1e-3):
        print("ok", loss)
        return 0
    print("mismatch", loss, want)
    return 1


if __name__ == "__main__":
    sys.exit(main())
