#!/usr/bin/env python3
"""The peer of the GPU benchmark: transformers' batched greedy generate on the same
model folder, the same prompts (token ids from gr-tokenize --text) and the same
fixed output length (min_new_tokens = max_new_tokens), bf16, on one GPU.

Usage: peer_transformers.py MODEL_DIR IDS.jsonl N_RECORDS BATCH NEW_TOKENS
Prints one line "transformers: X ms/record ..."; exit 77 when torch, transformers
or a GPU is missing."""
import json, sys, time

try:
    import torch
    from transformers import AutoModelForCausalLM
except Exception as e:  # noqa: BLE001 - any import failure means no peer
    print(f"# skip transformers peer: {e}")
    sys.exit(77)


def main():
    model_dir, ids_path, n, batch, new = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    if not torch.cuda.is_available():
        print("# skip transformers peer: no CUDA device for torch")
        sys.exit(77)
    prompts = []
    with open(ids_path) as f:
        for line in f:
            prompts.append(json.loads(line)["ids"])
            if len(prompts) == n:
                break
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16).cuda().eval()

    def run(chunk):
        L = max(len(p) for p in chunk)
        ids = torch.zeros((len(chunk), L), dtype=torch.long)
        mask = torch.zeros((len(chunk), L), dtype=torch.long)
        for i, p in enumerate(chunk):  # left padding, as batched generation needs
            ids[i, L - len(p):] = torch.tensor(p)
            mask[i, L - len(p):] = 1
        with torch.no_grad():
            out = model.generate(input_ids=ids.cuda(), attention_mask=mask.cuda(), max_new_tokens=new,
                                 min_new_tokens=new, do_sample=False, pad_token_id=0)
        return out.shape[1] - L

    run(prompts[:2])  # warm-up
    torch.cuda.synchronize()
    t0 = time.time()
    made = 0
    for i in range(0, len(prompts), batch):
        made += run(prompts[i:i + batch]) * len(prompts[i:i + batch])
    torch.cuda.synchronize()
    dt = time.time() - t0
    print(f"transformers: {1e3 * dt / len(prompts):.2f} ms/record ({len(prompts)} records, batch {batch}, "
          f"{made / len(prompts):.0f} new tokens each, {made / dt:.0f} tokens/s, torch {torch.__version__})")


if __name__ == "__main__":
    main()
