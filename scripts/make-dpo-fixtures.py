#!/usr/bin/env python3
"""DPO fixtures from PyTorch + transformers for lib/dpo.c (tests/unit/test_dpo.c).

For each tiny model in testdata/models (float32, eager attention), six preference
pairs of random ids (a prompt, a chosen and a rejected response, each response
ending in its own end-of-turn id as the pair encoding makes them) are scored the
LLaMA-Factory v0.9.1 way: chosen and rejected in one right-padded batch
[c_1..c_n, r_1..r_n], labels -100 on the prompt and the padding, fp32 logits,
log-prob = Σ log_softmax(z_{t-1})[y_t] over the response (get_batch_logps).

The reference log-probs are those of the same model with its weights perturbed
(so h != 0 and every term of the loss matters), given to the C side as numbers,
as gr-dpo's stored reference pass gives them.

Per pair: h, L_dpo = -logσ(βh), L_sft = -πc/|c|, ℓ = w·L_dpo + ftx·L_sft, the
rewards; the step loss = mean ℓ and d(mean ℓ)/dθ of every parameter, with the
sample weights (testdata/dpo/NAME/grads-weighted.safetensors) and without
(grads-plain.safetensors). For the unweighted case the loss is also computed by
TRL's DPOTrainer.dpo_loss (trl 0.9.6, sigmoid, label smoothing 0) plus LF's ftx
term; the script uses trl when it is installed, else the same formula written
out here, and asserts the two agree.

Run: python3 scripts/make-dpo-fixtures.py  (needs torch, transformers, safetensors)"""
import json, os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata")
MODELS = ["tiny-gqa-tied", "tiny-mha-untied"]
BETA, FTX = 0.5, 2.0  # a large β so the sigmoid is far from 0.5 on tiny models


def make_pairs(gen, vocab, eot):
    shapes = [(5, 4, 6), (3, 7, 2), (8, 1, 1), (1, 3, 5), (6, 6, 6), (4, 9, 3)]
    pairs = []
    for i, (p, c, r) in enumerate(shapes):
        rnd = lambda n: torch.randint(0, vocab, (n,), generator=gen).tolist()
        pairs.append({"prompt_ids": rnd(p), "chosen_ids": rnd(c - 1) + [eot],
                      "rejected_ids": rnd(r - 1) + [eot],
                      "weight": round(0.8 + 0.4 * i / (len(shapes) - 1), 6)})
    return pairs


def batch_logps(model, pairs):
    """LF: [chosen..., rejected...] padded together; Σ log p and count per row."""
    rows = [(p["prompt_ids"], p["chosen_ids"]) for p in pairs] + \
           [(p["prompt_ids"], p["rejected_ids"]) for p in pairs]
    L = max(len(a) + len(b) for a, b in rows)
    L = (L + 7) // 8 * 8
    ids = torch.zeros((len(rows), L), dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    labels = torch.full((len(rows), L), -100, dtype=torch.long)
    for i, (a, b) in enumerate(rows):
        seq = a + b
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
        labels[i, len(a):len(seq)] = torch.tensor(b)
    logits = model(input_ids=ids, attention_mask=mask).logits.float()
    lb = labels[:, 1:].clone()
    lg = logits[:, :-1]
    m = lb != -100
    lb[~m] = 0
    tok = torch.gather(lg.log_softmax(-1), 2, lb.unsqueeze(2)).squeeze(2)
    lp = (tok * m).sum(-1)
    n = m.sum(-1)
    k = len(pairs)
    return lp[:k], lp[k:], n[:k], n[k:]


def trl_sigmoid_loss(pc, pr, rc, rr, beta, label_smoothing=0.0):
    """TRL 0.9.6 DPOTrainer.dpo_loss, loss_type "sigmoid" (reference_free False)."""
    try:
        from trl import DPOTrainer  # noqa: F401  (only the formula is used; see below)
    except Exception:
        pass
    logits = (pc - pr) - (rc - rr)
    losses = (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
              - F.logsigmoid(-beta * logits) * label_smoothing)
    return losses, beta * (pc - rc).detach(), beta * (pr - rr).detach()


def trl_loss_installed(pc, pr, rc, rr, beta):
    """The installed trl's own dpo_loss, when trl is importable (None otherwise)."""
    try:
        from trl import DPOConfig, DPOTrainer
    except Exception:
        return None
    obj = DPOTrainer.__new__(DPOTrainer)
    obj.beta, obj.label_smoothing, obj.loss_type = beta, 0.0, "sigmoid"
    obj.reference_free, obj.f_divergence_type = False, "reverse_kl"
    obj.args = DPOConfig(output_dir="/tmp/trl-unused", beta=beta)
    obj.device = pc.device
    return obj.dpo_loss(pc, pr, rc, rr)[0]


def run(name):
    path = os.path.join(root, "models", name)
    model = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32,
                                             attn_implementation="eager")
    model.eval()  # no dropout (the reference disables it)
    cfg = model.config
    gen = torch.Generator().manual_seed(7)
    eot = cfg.eos_token_id if isinstance(cfg.eos_token_id, int) else 2
    pairs = make_pairs(gen, cfg.vocab_size, eot)
    # reference: the same model with perturbed weights
    ref = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32,
                                           attn_implementation="eager")
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        rc, rr, _, _ = batch_logps(ref, pairs)
    out = {"beta": BETA, "ftx": FTX, "pairs": pairs,
           "ref_chosen": rc.double().tolist(), "ref_rejected": rr.double().tolist()}
    for weighted in (True, False):
        model.zero_grad()
        pc, pr, nc, nr = batch_logps(model, pairs)
        w = torch.tensor([p["weight"] for p in pairs]) if weighted else torch.ones(len(pairs))
        h = (pc - pr) - (rc - rr)
        l_dpo = -F.logsigmoid(BETA * h)
        l_sft = -pc / nc
        per = w * l_dpo + FTX * l_sft
        loss = per.mean()
        loss.backward()
        grads = {n: p.grad.detach().clone().contiguous() for n, p in model.named_parameters()}
        if cfg.tie_word_embeddings:
            grads.pop("lm_head.weight", None)
        key = "weighted" if weighted else "plain"
        os.makedirs(os.path.join(root, "dpo", name), exist_ok=True)
        save_file(grads, os.path.join(root, "dpo", name, f"grads-{key}.safetensors"))
        rw_c, rw_r = BETA * (pc - rc).detach(), BETA * (pr - rr).detach()
        gnorm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values())).item()
        out[key] = {
            "policy_chosen": pc.detach().double().tolist(),
            "policy_rejected": pr.detach().double().tolist(),
            "len_chosen": nc.tolist(), "len_rejected": nr.tolist(),
            "h": h.detach().double().tolist(),
            "dpo": (w * l_dpo).detach().double().tolist(),
            "sft": l_sft.detach().double().tolist(),
            "loss": per.detach().double().tolist(),
            "mean": {"loss": loss.item(), "dpo_loss": (w * l_dpo).mean().item(),
                     "sft_loss": l_sft.mean().item(),
                     "rewards/chosen": rw_c.mean().item(), "rewards/rejected": rw_r.mean().item(),
                     "rewards/accuracies": (rw_c > rw_r).float().mean().item(),
                     "rewards/margins": (rw_c - rw_r).mean().item()},
            "grad_norm": gnorm,
        }
        if not weighted:
            with torch.no_grad():
                t_losses, t_rc, t_rr = trl_sigmoid_loss(pc, pr, rc, rr, BETA)
                t_full = t_losses + FTX * (-pc / nc)  # LF: losses += ftx * sft_loss
                inst = trl_loss_installed(pc, pr, rc, rr, BETA)
                if inst is not None:
                    assert torch.allclose(inst, t_losses, atol=1e-6), (inst, t_losses)
                assert torch.allclose(t_full, per, atol=1e-6)
                assert torch.allclose(t_rc, rw_c) and torch.allclose(t_rr, rw_r)
            out[key]["trl_loss"] = t_full.double().tolist()
            out[key]["trl_installed"] = inst is not None
    with open(os.path.join(root, "dpo", name, "pairs.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(name, "loss weighted", out["weighted"]["mean"]["loss"], "plain", out["plain"]["mean"]["loss"])


if __name__ == "__main__":
    for n in MODELS:
        run(n)
