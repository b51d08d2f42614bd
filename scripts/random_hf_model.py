#!/usr/bin/env python3
"""An HF model directory with random weights of a real model's shape, for timing only.

    python3 scripts/random_hf_model.py SRC OUT

SRC needs `config.json` and the tokenizer files (`tokenizer.json`, `tokenizer_config.json`), e.g.
the output of `kava convert model.gguf SRC` without its weights. OUT gets `model.safetensors`
(f32, seeded) and copies of those files, so kava-train and transformers load the same model
without moving real weights.
"""
import os
import shutil
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM

if len(sys.argv) != 3:
    sys.exit(__doc__)
src, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(src), dtype=torch.float32)
model.save_pretrained(out, safe_serialization=True)
for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
    if os.path.exists(os.path.join(src, name)):
        shutil.copy(os.path.join(src, name), out)
print(f"random_hf_model: {out}: {sum(p.numel() for p in model.parameters()):,} parameters")
