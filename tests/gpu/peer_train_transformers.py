#!/usr/bin/env python3
"""The peer of the R-SFT benchmark (tests/gpu/train.sh): PyTorch + transformers
training the same LLaMA folder on the same batch (B sequences of S random token
ids, every token a target), fp32 master weights, bf16 autocast, sdpa attention,
AdamW (fused), one process on one GPU. Times STEPS optimizer steps after one
warm-up step.

Usage: peer_train_transformers.py MODEL_DIR B S STEPS
Prints one line "transformers train: X tokens/s, MFU Y% (...)"; exit 77 when
torch, transformers or a GPU is missing. MFU counts 6·N + 6·L·(H·hd)·S FLOPs a
token (the causal attention's half of 12·L·d·S) over 989 TFLOP/s (H100/H200
dense bf16), N = the parameters (the tied head counted once, as gr-sft does)."""
import sys, time

try:
    import torch
    from transformers import AutoModelForCausalLM
except Exception as e:  # noqa: BLE001 - any import failure means no peer
    print(f"# skip transformers train peer: {e}")
    sys.exit(77)


def main():
    model_dir, B, S, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if not torch.cuda.is_available():
        print("# skip transformers train peer: no CUDA device for torch")
        sys.exit(77)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                 attn_implementation="sdpa").cuda().train()
    cfg = model.config
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (B, S), generator=g).cuda()
    torch.cuda.reset_peak_memory_stats()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    step()
    torch.cuda.synchronize()
    t = time.time()
    for _ in range(steps):
        loss = step()
    torch.cuda.synchronize()
    dt = time.time() - t
    n = sum(p.numel() for p in model.parameters())
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    flops = 6 * n + 6 * cfg.num_hidden_layers * cfg.num_attention_heads * hd * S
    tps = B * S * steps / dt
    print(f"transformers train: {tps:.0f} tokens/s, MFU {100 * tps * flops / 989e12:.1f}% "
          f"({B}x{S} tokens a step, {steps} steps in {dt:.2f} s, loss {loss.item():.4f}, "
          f"peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, torch {torch.__version__})")


if __name__ == "__main__":
    main()
