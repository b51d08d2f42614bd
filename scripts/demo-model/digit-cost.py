#!/usr/bin/env python3
"""How much does L_KV charge for a wrong digit? For the first N problems: the teacher's cache of
its own trace, and the same cache with one computed digit of the trace replaced by another digit
(d → d+1 … d+9 mod 10, all nine); L_KV's terms (smooth-L1 over the layer's teacher std, method.md
§3, σ from the kept-entry pool as in training: here all trace entries) at that entry alone — the
loss a student pays for holding the wrong number there — against the constant guess's at the
same entry (the layer's mean trace K and V: what a student pays for holding nothing). A ratio
near 1 means L_KV tells a wrong number from no number hardly at all.

Computed digits: digits of numbers the question does not state (the demo's step results), or with
--probe the link targets of scripts/latent-depth/gen.py traces (`4>5` / `4 to 5`: the digit after).
Usage: scripts/demo-model/digit-cost.py MODEL_DIR DATA.jsonl [N] [nl|aug] [--probe]
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npkava import COMPUTED, Model, smooth_l1, trace_steps  # noqa: E402

args = [a for a in sys.argv[1:] if a != "--probe"]
probe = "--probe" in sys.argv
m = Model(args[0])
n = int(args[2]) if len(args) > 2 else 30
trace = args[3] if len(args) > 3 else "nl"
digit_ids = {str(d): m.encode(str(d))[0] for d in range(10)}

wrong, const = [], []
for line in list(open(args[1]))[:n]:
    pb = json.loads(line)
    steps = trace_steps(pb["answer"], trace)[:-1]
    if not steps:
        continue
    q, c = m.encode(pb["question"]), m.encode(" ".join(steps))
    ids = m.bos + q + m.encode("\n") + c
    cs = len(m.bos + q + m.encode("\n"))
    _, cache = m.forward(m.E[ids], np.arange(len(ids)))
    tc = [(K[cs:], V[cs:]) for K, V in cache]
    sig = [(K.std(), V.std()) for K, V in tc]
    for i in (i for i, k in enumerate(m.token_kinds(c, pb["question"], probe)) if k == COMPUTED):
        d = m.tok.decode([c[i]]).strip()
        for s in range(1, 10):
            alt = list(ids)
            alt[cs + i] = digit_ids[str((int(d) + s) % 10)]
            _, ac = m.forward(m.E[alt], np.arange(len(alt)))
            w = 0.0
            for l, (K, V) in enumerate(tc):
                sk, sv = sig[l]
                w += 0.5 * (smooth_l1((ac[l][0][cs + i] - K[i]) / sk).mean() + smooth_l1((ac[l][1][cs + i] - V[i]) / sv).mean())
            wrong.append(w / len(tc))
        const.append(np.mean([0.5 * (smooth_l1((K.mean(0) - K[i]) / sig[l][0]).mean() + smooth_l1((V.mean(0) - V[i]) / sig[l][1]).mean())
                              for l, (K, V) in enumerate(tc)]))
print(f"{args[0]}: {len(const)} computed digits of {n} problems ({trace}{', probe' if probe else ''} traces)")
print(f"L_KV at a computed digit's entry: a wrong digit {np.mean(wrong):.3f}, the constant guess {np.mean(const):.3f} "
      f"(ratio {np.mean(wrong) / np.mean(const):.2f})")
