#!/usr/bin/env python3
"""Benchmark variants of the test model: SmolLM2-135M-Instruct re-encoded from its
Q4_1 GGUF as F16, BF16 and Q8_0 GGUFs (the weights llama.cpp and gr are compared on).
The Q4_1 values are dequantized exactly and stored again, so every variant is
the same model up to the target format's rounding. Norms stay F32.

Usage: make-bench-models.py SRC.gguf OUT_DIR   (needs: pip install gguf numpy)
Prints the paths written; an existing output is kept."""
import os, sys
import numpy as np
import gguf

src, out_dir = sys.argv[1], sys.argv[2]
r = gguf.GGUFReader(src)
base = os.path.basename(src).replace(".Q4_1.gguf", "")
T = gguf.GGMLQuantizationType
for name, qt, ftype in (("F16", T.F16, 1), ("BF16", T.BF16, 32), ("Q8_0", T.Q8_0, 7)):
    path = os.path.join(out_dir, f"{base}.{name}.gguf")
    if os.path.exists(path):
        print(path)
        continue
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(path + ".tmp", arch)
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vt = f.types[0]
        if key == "general.file_type":
            w.add_key_value(key, ftype, vt)
            continue
        sub = f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, f.contents(), vt, sub)
    for t in r.tensors:
        x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = [int(d) for d in reversed(t.shape)]  # numpy order
        x = x.reshape(shape)
        if x.ndim == 1:
            w.add_tensor(t.name, x)
        elif qt == T.F16:
            w.add_tensor(t.name, x.astype(np.float16))
        else:
            q = gguf.quants.quantize(x, qt)
            w.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.rename(path + ".tmp", path)
    print(path)
