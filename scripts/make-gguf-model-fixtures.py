#!/usr/bin/env python3
"""GGUF copies of two tiny Hugging Face fixtures, written the way llama.cpp's
convert_hf_to_gguf.py writes LLaMA models: llama.cpp tensor names, q/k rows
permuted for interleaved RoPE, llama3 rope scaling as a rope_freqs.weight
tensor of per-frequency divisors. The C test loads each GGUF and must give the
logits transformers gave for the original folder (testdata/models/*/ref.json).

  tiny-gqa-tied    -> testdata/gguf/tiny-gqa-tied.gguf    (F32 weights)
  tiny-llama3-bf16 -> testdata/gguf/tiny-llama3-bf16.gguf (BF16 weights, rope_freqs)

Run: python3 scripts/make-gguf-model-fixtures.py (needs gguf, numpy)."""
import json, math, os
import numpy as np
import gguf
import struct


def load_file(path):
    """safetensors -> {name: float32 array}; BF16 widened by hand (numpy has no bfloat16)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        if v["dtype"] == "BF16":
            x = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            x = np.frombuffer(raw, {"F32": np.float32, "F16": np.float16}[v["dtype"]]).astype(np.float32)
        out[k] = x.reshape(v["shape"])
    return out

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

def permute(w, n_head):
    # llama.cpp convert_hf_to_gguf.py LlamaModel.permute
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))

def rope_freqs(cfg, head_dim):
    rs = cfg["rope_scaling"]
    base = cfg["rope_theta"]
    factor, lf, hf = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wl, high_wl = old / lf, old / hf
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / (base ** (i / head_dim))
        wl = 2 * math.pi / freq
        if wl < high_wl:
            out.append(1.0)
        elif wl > low_wl:
            out.append(factor)
        else:
            smooth = (old / wl - lf) / (hf - lf)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)

def convert(name, dtype):
    src = os.path.join(root, "testdata", "models", name)
    cfg = json.load(open(os.path.join(src, "config.json")))
    st = load_file(os.path.join(src, "model.safetensors"))
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // H
    path = os.path.join(root, "testdata", "gguf", name + ".gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_bos_token_id(cfg["bos_token_id"])
    eos = cfg["eos_token_id"]
    w.add_eos_token_id(eos[0] if isinstance(eos, list) else eos)

    def put(n, x, force_f32=False):
        x = np.ascontiguousarray(x.astype(np.float32))
        if force_f32 or dtype == "F32":
            w.add_tensor(n, x)
        else:  # BF16: the top 16 bits (the stored values are already bf16-exact)
            b = (x.view(np.uint32) >> 16).astype(np.uint16)
            w.add_tensor(n, b, raw_shape=b.shape, raw_dtype=gguf.GGMLQuantizationType.BF16)

    put("token_embd.weight", st["model.embed_tokens.weight"])
    put("output_norm.weight", st["model.norm.weight"], True)
    if "lm_head.weight" in st:
        put("output.weight", st["lm_head.weight"])
    if cfg.get("rope_scaling"):
        put("rope_freqs.weight", rope_freqs(cfg, hd), True)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        put(f"blk.{i}.attn_norm.weight", st[p + "input_layernorm.weight"], True)
        put(f"blk.{i}.ffn_norm.weight", st[p + "post_attention_layernorm.weight"], True)
        put(f"blk.{i}.attn_q.weight", permute(st[p + "self_attn.q_proj.weight"], H))
        put(f"blk.{i}.attn_k.weight", permute(st[p + "self_attn.k_proj.weight"], KV))
        put(f"blk.{i}.attn_v.weight", st[p + "self_attn.v_proj.weight"])
        put(f"blk.{i}.attn_output.weight", st[p + "self_attn.o_proj.weight"])
        put(f"blk.{i}.ffn_gate.weight", st[p + "mlp.gate_proj.weight"])
        put(f"blk.{i}.ffn_up.weight", st[p + "mlp.up_proj.weight"])
        put(f"blk.{i}.ffn_down.weight", st[p + "mlp.down_proj.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", path, os.path.getsize(path))

convert("tiny-gqa-tied", "F32")
convert("tiny-llama3-bf16", "BF16")
