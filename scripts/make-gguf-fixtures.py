#!/usr/bin/env python3
"""Writes small GGUF fixtures with the `gguf` package (llama.cpp's own writer), an
implementation independent of lib/gguf.c:

  testdata/gguf/meta.gguf     every metadata value type, a string array (with a
                              multi-byte token), three tensors (F32, F16, Q8_0)
  testdata/gguf/meta.json     what the C test must read back from it

Run: python3 scripts/make-gguf-fixtures.py   (needs: pip install gguf numpy)"""
import json, os, sys
import numpy as np
import gguf

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
out = os.path.join(root, "testdata", "gguf")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1234)

path = os.path.join(out, "meta.gguf")
w = gguf.GGUFWriter(path, "llama")
w.add_uint8("t.u8", 200)
w.add_int8("t.i8", -100)
w.add_uint16("t.u16", 60000)
w.add_int16("t.i16", -30000)
w.add_uint32("t.u32", 4000000000)
w.add_int32("t.i32", -2000000000)
w.add_float32("t.f32", 0.15625)
w.add_bool("t.bool", True)
w.add_string("t.str", "héllo")
w.add_uint64("t.u64", 1 << 40)
w.add_int64("t.i64", -(1 << 40))
w.add_float64("t.f64", 1e-300)
toks = ["<s>", "</s>", "a", "Ġthe", "日本", ""]
w.add_array("tokenizer.ggml.tokens", toks)
w.add_array("t.arr_i32", [1, -2, 3])
w.add_array("t.arr_f32", [0.5, -1.25])
a = rng.standard_normal((3, 8)).astype(np.float32)
b = rng.standard_normal((2, 4)).astype(np.float16)
c = rng.standard_normal((2, 64)).astype(np.float32)
cq = gguf.quants.quantize(c, gguf.GGMLQuantizationType.Q8_0)
w.add_tensor("a", a)
w.add_tensor("b", b)
w.add_tensor("c", cq, raw_shape=cq.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

exp = {
    "a": a.flatten().tolist(),
    "b": b.astype(np.float32).flatten().tolist(),
    "c": gguf.quants.dequantize(cq, gguf.GGMLQuantizationType.Q8_0).flatten().tolist(),
}
with open(os.path.join(out, "meta.json"), "w") as f:
    json.dump(exp, f)
print("wrote", path, os.path.getsize(path), "bytes")
