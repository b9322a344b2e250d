#!/usr/bin/env python3
"""bf16 mixed-precision training fixtures from PyTorch + transformers, for
tests/unit/test_train_bf16_ref.c (gr-sft/gr-dpo --precision bf16).

For the tiny models below, on the gradient batch of the fp32 fixtures
(testdata/train/NAME/batch.json, written by make-train-fixtures.py: the same
sequences, right padding, masked prompts, loss = Σ NLL / targets), two
references, fp32 master weights in both:

  grads_bf16_autocast.safetensors   PyTorch bf16 autocast, what LLaMA-Factory's
      bf16 does on a CPU: torch.autocast("cpu", dtype=torch.bfloat16) around the
      forward pass and the loss, eager attention, backward outside it.
  grads_bf16_emul.safetensors       gr's rounding points, emulated: every
      nn.Linear (q/k/v/o, gate/up/down, the LM head, tied or not) computes
      y = bf16(x)·bf16(w)ᵀ, dx = bf16(dy)·bf16(w), dw = bf16(dy)ᵀ·bf16(x) with
      the sums in float64 and fp32 results; everything else in fp32
      (kernels/cpu/gemm_bf16.h, the training matmuls of backend_train.h).
  bf16.json   both losses (and the fp32 one, for the distances) and the batch.

Where PyTorch's autocast rounds differently from gr (the reason the autocast
tolerance is wider than the emulated one):
  - autocast rounds the *outputs* of every linear layer to bf16 as well (q, k, v,
    the attention output projection, gate, up, down and the logits); gr keeps
    the fp32 accumulator. The loss is taken on bf16 logits cast back to fp32.
  - autocast also runs the attention matmuls (QKᵀ and P·V, torch.matmul in
    eager attention) on bf16 operands with bf16 results; gr's attention is fp32.
  - in autocast's backward the activation gradients that flow through those
    ops are bf16 tensors (each rounded), so dy of every linear is already bf16
    and the elementwise backward ops (SiLU·up, RoPE, residual adds into bf16
    branches) are computed in bf16; gr's gradients stay fp32 between the
    matmuls and are rounded only as GEMM operands.
  - the same in both: the weights as GEMM operands are bf16(fp32 master) with
    round to nearest even; embedding lookup, RMSNorm (autocast keeps it fp32:
    HF casts to fp32 and only the final product follows the input dtype, fp32
    on the residual stream), softmax (HF eager: dtype=float32), the residual
    stream, the loss (log-softmax, cross entropy are fp32 ops in autocast), and
    the parameter gradients (fp32, as .grad of fp32 parameters).

Run: python3 scripts/make-train-bf16-fixtures.py  (needs torch, transformers,
safetensors); rewrites the files above, a few hundred KiB per model."""
import json, os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import LlamaForCausalLM

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata")
MODELS = ["tiny-gqa-tied", "tiny-mha-untied"]


def bf16(t):
    return t.to(torch.bfloat16).to(t.dtype)


class LinearBf16(torch.autograd.Function):
    """gr's bf16 GEMM: operands rounded to bf16 (RNE), exact products, the sum
    in float64 here (gr: fp32, in its own order), fp32 result."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        xr, wr = bf16(x).double(), bf16(w).double()
        return (xr @ wr.t()).float()

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        dyr, xr, wr = bf16(dy).double(), bf16(x).double(), bf16(w).double()
        dx = (dyr @ wr).float()
        dw = (dyr.reshape(-1, dyr.shape[-1]).t() @ xr.reshape(-1, xr.shape[-1])).float()
        return dx, dw


def emulate_gr(model):
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            assert mod.bias is None
            mod.forward = (lambda m: lambda x: LinearBf16.apply(x, m.weight))(mod)


def batch_loss(model, seqs, autocast):
    """As make-train-fixtures.py: right padding to a multiple of 8, labels -100
    on prompt and padding, logits at t against labels[t+1], Σ NLL / count."""
    L = (max(len(s["ids"]) for s in seqs) + 7) // 8 * 8
    ids = torch.zeros((len(seqs), L), dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    labels = torch.full((len(seqs), L), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        n = len(s["ids"])
        ids[i, :n] = torch.tensor(s["ids"])
        mask[i, :n] = 1
        for t in range(s["n_prompt"], n):
            labels[i, t] = s["ids"][t]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=ids, attention_mask=mask).logits
        if autocast:
            assert logits.dtype == torch.bfloat16, logits.dtype
        lg = logits[:, :-1].float().reshape(-1, logits.shape[-1])
        lb = labels[:, 1:].reshape(-1)
        count = int((lb != -100).sum())
        loss = F.cross_entropy(lg, lb, ignore_index=-100, reduction="sum") / count
    return loss, count


def grads(model, seqs, mode):
    model.zero_grad()
    loss, count = batch_loss(model, seqs, mode == "autocast")
    loss.backward()
    g = {}
    for name, p in model.named_parameters():
        assert p.grad.dtype == torch.float32
        g[name] = p.grad.detach().clone().contiguous()
    return float(loss), count, g


def rel_l2(a, b):
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    for name in MODELS:
        path = os.path.join(root, "models", name)
        out = os.path.join(root, "train", name)
        J = json.load(open(os.path.join(out, "batch.json")))
        seqs = [J["seqs"][i] for i in J["grad_batch"]]
        res = {}
        for mode in ["fp32", "autocast", "emul"]:
            model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
            model.train()
            if mode == "emul":
                emulate_gr(model)
            res[mode] = grads(model, seqs, mode)
            assert res[mode][1] == J["grad_targets"]
        assert abs(res["fp32"][0] - J["grad_loss"]) < 1e-5 * J["grad_loss"]
        save_file(res["autocast"][2], os.path.join(out, "grads_bf16_autocast.safetensors"))
        save_file(res["emul"][2], os.path.join(out, "grads_bf16_emul.safetensors"))
        worst = {m: max(rel_l2(res[m][2][k], res["fp32"][2][k]) for k in res[m][2])
                 for m in ["autocast", "emul"]}
        worst["autocast_vs_emul"] = max(rel_l2(res["autocast"][2][k], res["emul"][2][k])
                                        for k in res["emul"][2])
        with open(os.path.join(out, "bf16.json"), "w") as f:
            json.dump({"grad_batch": J["grad_batch"], "grad_targets": J["grad_targets"],
                       "loss_fp32": res["fp32"][0], "loss_autocast": res["autocast"][0],
                       "loss_emul": res["emul"][0],
                       "worst_rel_l2_vs_fp32": worst}, f, indent=1)
        print(name, "loss fp32 %.6f autocast %.6f emul %.6f" % (res["fp32"][0], res["autocast"][0],
              res["emul"][0]), "worst tensor rel. L2:", worst)


if __name__ == "__main__":
    main()
