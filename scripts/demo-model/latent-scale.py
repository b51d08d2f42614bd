#!/usr/bin/env python3
"""How large are the latents next to the tokens, and how much do the layers change each?

For a kava model directory (through the NumPy re-implementation in npkava.py): the norm of the
token embeddings, of the continuous thoughts z and the projection's LayerNorm gain, and per layer the mean norm of the residual
stream and of each sublayer's update at the question positions (init pass) and at the latent
positions (last Jacobi iteration); then its latent-mode accuracy on the first N problems, as a
check that this forward is the model's.

Usage: scripts/demo-model/latent-scale.py [MODEL_DIR] [DATA.jsonl] [N]
(defaults: kava/models/demo, demo-work/data/test.jsonl, 20). Needs `pip install numpy tokenizers`.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npkava import Model, correct  # noqa: E402

m = Model(sys.argv[1] if len(sys.argv) > 1 else "kava/models/demo")
data = sys.argv[2] if len(sys.argv) > 2 else "demo-work/data/test.jsonl"
n = int(sys.argv[3]) if len(sys.argv) > 3 else 20
problems = [json.loads(l) for l in open(data)][:n]
right = 0
for i, pb in enumerate(problems):
    t0, tt = ([], []) if i == 0 else (None, None)
    b, cache, z_norm = m.latent_pass(pb["question"], t0, tt)
    if i == 0:
        ids = m.bos + m.encode(pb["question"])
        gain = m.P["projection.norm.weight"] if "projection.norm.weight" in m.P else np.ones(1)
        print(f"token embedding norm {np.linalg.norm(m.E[ids], axis=1).mean():.2f} | latent z norm {z_norm:.2f} | "
              f"projection LayerNorm gain: mean {gain.mean():.3f}, range {gain.min():.3f}..{gain.max():.3f}")
        print("| sublayer | question: residual | question: update | update/residual | latents (iteration T): residual | update | update/residual |")
        print("|---|---|---|---|---|---|---|")
        for (name, xq, oq), (_, xl, ol) in zip(t0, tt):
            rq, uq, rl, ul = xq[: b + 1].mean(), oq[: b + 1].mean(), xl.mean(), ol.mean()
            print(f"| {name} | {rq:.2f} | {uq:.2f} | {uq / rq:.0%} | {rl:.2f} | {ul:.2f} | {ul / rl:.0%} |")
    right += correct(m.answer(b, cache), pb["answer"].split("####")[-1].strip().replace(",", ""))
print(f"latent-mode accuracy on the first {len(problems)} problems: {right}/{len(problems)}")
