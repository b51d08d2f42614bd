#!/usr/bin/env python3
"""What a kava model's latent slots read as, problem by problem: the teacher's trace (all steps
but the last, as the teacher sees it), each slot's nearest vocabulary token after the last Jacobi
iteration (top-1 of `z · Eᵀ`, special tokens excluded — what `kava demo --show-latents` lists
first), the gold answer and the model's latent-mode answer. Through the NumPy model of npkava.py.

Usage: scripts/demo-model/latent-readout.py MODEL_DIR DATA.jsonl [N] (default N = 6)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npkava import Model, correct  # noqa: E402

m = Model(sys.argv[1])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 6
print(f"{sys.argv[1]}: {m.M} latents, T = {m.T}")
for line in list(open(sys.argv[2]))[:n]:
    pb = json.loads(line)
    steps = [s for s in pb["answer"].split("\n") if not s.startswith("####")][:-1]
    gold = pb["answer"].split("####")[-1].strip()
    b, cache, _ = m.latent_pass(pb["question"])
    slots = "|".join(m.slot_tokens())
    got = m.answer(b, cache)
    print(f"trace {' '.join(steps)!r} · gold {gold} · latent answer {got} {'✓' if correct(got, gold) else '✗'}")
    print(f"  slots {slots}")
