#!/usr/bin/env python3
"""Training fixtures from PyTorch + transformers for lib/train_*.c.

For each tiny model in testdata/models (loaded in float32, eager attention):
  testdata/train/NAME/batch.json     the sequences (ids, n_prompt), the micro-batch
                                     plan of the 3 optimizer steps, hyper-parameters,
                                     and the reference loss, grad norms and lr values
  testdata/train/NAME/grads.safetensors   d(loss)/d(param) of every parameter for one
                                     right-padded batch with masked prompts; loss =
                                     Σ NLL over labels != -100 / their count
  testdata/train/NAME/params3.safetensors the parameters after 3 AdamW steps (betas
                                     0.9/0.999, eps 1e-8, weight decay 0), gradient
                                     accumulation over 2 micro-batches with the
                                     token-weighted mean over the whole step, global
                                     norm clipping (active), cosine schedule
                                     (transformers.get_cosine_schedule_with_warmup)
testdata/train/lr.json: learning-rate sequences of the cosine schedule with warmup.

Run: python3 scripts/make-train-fixtures.py  (needs torch, transformers, safetensors)"""
import json, math, os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import LlamaForCausalLM, get_cosine_schedule_with_warmup

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata")
MODELS = ["tiny-gqa-tied", "tiny-mha-untied", "tiny-llama3-bf16"]


def make_seqs(gen, vocab):
    lens = [(9, 3), (14, 6), (5, 0), (11, 11), (7, 2), (16, 4), (6, 1), (12, 7)]
    seqs = []
    for n, p in lens:
        ids = torch.randint(0, vocab, (n,), generator=gen).tolist()
        seqs.append({"ids": ids, "n_prompt": p})
    return seqs


def batch_loss(model, seqs, denom):
    """Right-padded batch, labels -100 on prompt and padding, logits at t scored
    against labels[t+1]; returns (Σ NLL / denom, Σ NLL, count)."""
    L = max(len(s["ids"]) for s in seqs)
    L = (L + 7) // 8 * 8
    pad = 0
    ids = torch.full((len(seqs), L), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    labels = torch.full((len(seqs), L), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        n = len(s["ids"])
        ids[i, :n] = torch.tensor(s["ids"])
        mask[i, :n] = 1
        for t in range(s["n_prompt"], n):
            labels[i, t] = s["ids"][t]
    logits = model(input_ids=ids, attention_mask=mask).logits.float()
    lg = logits[:, :-1].reshape(-1, logits.shape[-1])
    lb = labels[:, 1:].reshape(-1)
    nll = F.cross_entropy(lg, lb, ignore_index=-100, reduction="sum")
    count = int((lb != -100).sum())
    return nll / denom, float(nll), count


def targets(seqs):
    return sum(max(0, len(s["ids"]) - max(s["n_prompt"], 1)) for s in seqs)


def grads_of(model):
    out = {}
    for name, p in model.named_parameters():
        out[name] = p.grad.detach().clone().contiguous()
    return out


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    for name in MODELS:
        path = os.path.join(root, "models", name)
        model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
        model.train()  # no dropout in LLaMA; train() for the real path
        gen = torch.Generator().manual_seed(1234)
        seqs = make_seqs(gen, model.config.vocab_size)
        out = os.path.join(root, "train", name)
        os.makedirs(out, exist_ok=True)

        # 1. loss and gradients of one padded batch (the first five sequences)
        gb = seqs[:5]
        n = targets(gb)
        model.zero_grad()
        loss, _, count = batch_loss(model, gb, n)
        assert count == n
        loss.backward()
        g = grads_of(model)
        save_file(g, os.path.join(out, "grads.safetensors"))
        grad_loss = float(loss)

        # 2. three AdamW steps: micro-batches of 2 (the last of each step may hold
        # 1), accumulation over 2, clipping at 0.05 (always active here), cosine
        # with T = 5 and warmup 1.
        plan = [[[0, 1], [2, 3]], [[4, 5], [6]], [[7, 0], [3, 5]]]
        lr0, T, warm, max_norm = 2e-3, 5, 1, 0.05
        opt = torch.optim.AdamW(model.parameters(), lr=lr0, betas=(0.9, 0.999), eps=1e-8,
                                weight_decay=0.0)
        sched = get_cosine_schedule_with_warmup(opt, warm, T)
        losses, norms, lrs = [], [], []
        for step in plan:
            opt.zero_grad()
            mbs = [[seqs[i] for i in mb] for mb in step]
            N = sum(targets(mb) for mb in mbs)
            total = 0.0
            for mb in mbs:
                l, s, _ = batch_loss(model, mb, N)
                l.backward()
                total += s
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            assert float(norm) > max_norm
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            losses.append(total / N)
            norms.append(float(norm))
        p3 = {k: v.detach().clone().contiguous() for k, v in model.named_parameters()}
        save_file(p3, os.path.join(out, "params3.safetensors"))
        with open(os.path.join(out, "batch.json"), "w") as f:
            json.dump({"seqs": seqs, "grad_batch": [0, 1, 2, 3, 4], "grad_loss": grad_loss,
                       "grad_targets": n, "plan": plan, "lr": lr0, "T": T, "warmup": warm,
                       "max_grad_norm": max_norm, "losses": losses, "grad_norms": norms,
                       "lrs": lrs, "tied": bool(model.config.tie_word_embeddings)}, f)
        print(name, "loss", grad_loss, "norms", norms)

    # 3. learning-rate sequences of the schedule (lr before each step k = 0..T)
    cases = []
    for lr0, T, warm in [(5e-5, 30, 0), (1e-3, 7, 2), (2e-5, 1, 0), (5e-5, 100, 10)]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([p], lr=lr0)
        sched = get_cosine_schedule_with_warmup(opt, warm, T)
        seq = []
        for k in range(T + 1):
            seq.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        cases.append({"lr": lr0, "T": T, "warmup": warm, "lrs": seq})
    with open(os.path.join(root, "train", "lr.json"), "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main()
