#!/usr/bin/env python3
"""Checks that HF transformers loads a directory written by `kava convert` and computes the same
logits as kava on any short text file TEXT.txt. Run:
  kava perplexity --model DIR --text TEXT.txt --save-logits /tmp/kava-logits.safetensors
  python3 scripts/check_hf_export.py DIR /tmp/kava-logits.safetensors TEXT.txt
Needs torch, transformers and safetensors (CPU is enough). Prints one summary line.
"""
import math
import sys

import torch
import transformers
from safetensors.torch import load_file


def main(model_dir, kava_file, text_file):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    kava = load_file(kava_file)
    kava_ids = kava["ids"].long().tolist()
    text = open(text_file).read().rstrip()
    hf_ids = tok(text, add_special_tokens=True)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([kava_ids])).logits[0]
    diff = (logits - kava["logits"]).abs().max().item()
    logp = torch.log_softmax(logits[:-1], -1)
    nll = -logp.gather(1, torch.tensor(kava_ids[1:])[:, None]).mean().item()
    print(
        f"hf-export check | {model_dir} | transformers {transformers.__version__} | tokens {len(kava_ids)} "
        f"| tokenizer ids equal: {hf_ids == kava_ids} | max |dlogit| {diff:.3e} | HF perplexity {math.exp(nll):.4f}"
    )
    return 0 if diff <= 1e-3 and hf_ids == kava_ids else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
