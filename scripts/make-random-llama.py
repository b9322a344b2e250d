#!/usr/bin/env python3
"""A Hugging Face LlamaForCausalLM folder with random bf16 weights in the shapes of
LLaMA-3.2-1B or LLaMA-3.1-8B (config.json + model.safetensors), for benchmarks
where only the shapes matter (tests/gpu/run.sh). Pure Python, no numpy or torch:
the weights are random bytes made into bf16 numbers of magnitude 2^-9 .. 2^-6 with
a random sign (the high byte, sign and exponent, mapped through a table; the low
byte, the mantissa, left random), the norm weights 1.0. Writes ~2.5 GB (1b) or
~16 GB (8b) in a few seconds to a minute.

Usage: make-random-llama.py 1b|8b OUT_DIR      (an existing complete folder is kept)"""
import json, os, struct, sys

SHAPES = {
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, head_dim=64, tie_word_embeddings=True, rope_factor=32.0),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, head_dim=128, tie_word_embeddings=False, rope_factor=8.0),
}
VOCAB = 128256


def config(s):
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16",
        "hidden_size": s["hidden_size"], "intermediate_size": s["intermediate_size"],
        "num_hidden_layers": s["num_hidden_layers"], "num_attention_heads": s["num_attention_heads"],
        "num_key_value_heads": s["num_key_value_heads"], "head_dim": s["head_dim"], "vocab_size": VOCAB,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": s["rope_factor"], "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "tie_word_embeddings": s["tie_word_embeddings"], "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "attention_bias": False,
        "mlp_bias": False,
    }


def tensors(s):
    D, H, L = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"]
    q, kv = s["num_attention_heads"] * s["head_dim"], s["num_key_value_heads"] * s["head_dim"]
    yield "model.embed_tokens.weight", [VOCAB, D], False
    for l in range(L):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", [D], True
        yield p + "self_attn.q_proj.weight", [q, D], False
        yield p + "self_attn.k_proj.weight", [kv, D], False
        yield p + "self_attn.v_proj.weight", [kv, D], False
        yield p + "self_attn.o_proj.weight", [D, q], False
        yield p + "post_attention_layernorm.weight", [D], True
        yield p + "mlp.gate_proj.weight", [H, D], False
        yield p + "mlp.up_proj.weight", [H, D], False
        yield p + "mlp.down_proj.weight", [D, H], False
    yield "model.norm.weight", [D], True
    if not s["tie_word_embeddings"]:
        yield "lm_head.weight", [VOCAB, D], False


# high byte of a bf16 (sign + 7 exponent bits): exponents 118..121 (2^-9 .. 2^-6), either sign
HIGH = bytes([(0x80 if b & 1 else 0) | (0x3B + ((b >> 1) & 1)) for b in range(256)])
ONE = struct.pack("<H", 0x3F80)


def random_bf16(n):
    raw = bytearray(os.urandom(2 * n))
    raw[1::2] = bytes(raw[1::2]).translate(HIGH)
    return raw


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        sys.exit(__doc__)
    s, out = SHAPES[sys.argv[1]], sys.argv[2]
    st = os.path.join(out, "model.safetensors")
    if os.path.exists(st) and os.path.exists(os.path.join(out, "config.json")):
        print(out)
        return
    os.makedirs(out, exist_ok=True)
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in tensors(s):
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + 2 * n]}
        off += 2 * n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(st + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name, shape, is_norm in tensors(s):
            n = 1
            for d in shape:
                n *= d
            if is_norm:
                f.write(ONE * n)
                continue
            chunk = 1 << 25
            for i in range(0, n, chunk):
                f.write(random_bf16(min(chunk, n - i)))
    os.rename(st + ".tmp", st)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config(s), f, indent=1)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "do_sample": False}, f)
    print(out)


if __name__ == "__main__":
    main()
