#!/usr/bin/env python3
"""Writes random GGUF blocks of every type kava dequantises, and Python `gguf`'s dequantisation of
them, for the bit-exactness test `gguf_crosscheck::dequantisers_match_python_gguf`. Run:
  pip install gguf numpy
  python3 scripts/gguf_crosscheck.py /tmp/kava-dq
  KAVA_DQ_DIR=/tmp/kava-dq cargo test --test integration gguf_crosscheck -- --nocapture
For each TYPE it writes TYPE.bin (raw blocks) and TYPE.f32 (little-endian f32 values).
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# Byte offsets of the f16 scale fields in each block (random bytes there could be NaN/inf).
F16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261123)
    for name in ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]:
        qtype = T[name]
        block, size = GGML_QUANT_SIZES[qtype]
        n_blocks = max(16384 // block, 64)
        if name == "F32":
            raw = rng.standard_normal(n_blocks * block).astype("<f4").tobytes()
        elif name == "F16":
            raw = rng.standard_normal(n_blocks * block).astype("<f2").tobytes()
        elif name == "BF16":
            raw = (rng.standard_normal(n_blocks * block).astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            b = bytearray(rng.integers(0, 256, n_blocks * size, dtype=np.uint8).tobytes())
            for i in range(n_blocks):
                for off in F16_FIELDS[name]:
                    scale = np.float16(rng.uniform(-0.1, 0.1)).tobytes()
                    b[i * size + off:i * size + off + 2] = scale
            raw = bytes(b)
        n = n_blocks * block
        values = dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(1, -1), qtype).reshape(-1)
        assert values.size == n, (name, values.size, n)
        open(os.path.join(out, f"{name}.bin"), "wb").write(raw)
        open(os.path.join(out, f"{name}.f32"), "wb").write(values.astype("<f4").tobytes())
        print(f"{name}: {n} values")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/kava-dq"))
