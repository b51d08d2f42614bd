#!/usr/bin/env python3
"""Which numbers of the reasoning do a kava model's latents hold? Each latent slot's nearest
vocabulary token (top-1 of `z · Eᵀ`, special tokens excluded — what `kava demo --show-latents`
lists first) for the first N problems, joined into one string per problem; then, for the gold
solution's steps that the teacher trace keeps (all but the last), whether each number of two or
more digits occurs in that string: the operands copied from the question, and the results the
trace computes (step 1, step 2, step 3 and later). Baseline: the same search for the numbers of
another problem (the next one), which a latent string holds only by chance.

With a fourth argument `iterations`, the same table for every Jacobi iterate z⁰ … zᵀ instead of
only the latents the last iteration reads (zᵀ⁻¹): z⁰ comes from the init pass, zᵀ is never fed
(what an iteration T + 1 would read) — at which iteration does each step's result appear?

Through the NumPy model of npkava.py (the answers it gives match `kava eval`).
Usage: scripts/demo-model/latent-numbers.py [MODEL_DIR] [DATA.jsonl] [N] [iterations]
(defaults: kava/models/demo, demo-work/data/test.jsonl, 200).
"""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npkava import Model, correct  # noqa: E402

m = Model(sys.argv[1] if len(sys.argv) > 1 else "kava/models/demo")
data = sys.argv[2] if len(sys.argv) > 2 else "demo-work/data/test.jsonl"
n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
by_iteration = len(sys.argv) > 4 and sys.argv[4] == "iterations"


def numbers(text):
    return [x for x in re.findall(r"\d+", text) if len(x) >= 2]


problems = []
for line in list(open(data))[:n]:
    pb = json.loads(line)
    eqs = re.findall(r"<<([^=>]*)=([^>]*)>>", pb["answer"])[:-1]  # the teacher trace drops the last step
    b, cache, _ = m.latent_pass(pb["question"])
    latents = "".join(m.slot_tokens()).replace(" ", "")
    if by_iteration:
        latents = ["".join(m.slot_tokens(z)).replace(" ", "") for z in m.iterates]
    gold = pb["answer"].split("####")[-1].strip().replace(",", "")
    ok = correct(m.answer(b, cache), gold)
    groups = {"operands from the question": [], "result of step 1": [], "result of step 2": [], "result of step 3 or later": []}
    for k, (expr, res) in enumerate(eqs):
        groups["operands from the question"] += [x for x in numbers(expr) if x in numbers(pb["question"])]
        groups[f"result of step {k + 1}" if k < 2 else "result of step 3 or later"] += numbers(res)
    problems.append((latents, groups, ok))

print(f"{m.M} latents, T = {m.T}; {len(problems)} problems; latent-mode accuracy of these: "
      f"{np.mean([p[2] for p in problems]):.1%}")


def table(problems):
    for i in range(min(3, len(problems))):
        print(f"problem {i + 1}'s latents (top-1 per slot, spaces dropped): {problems[i][0]}")
    print("| numbers (≥ 2 digits) | count | found in the latents | by chance (another problem's) | found, answer right | found, answer wrong |")
    print("|---|---|---|---|---|---|")
    for name in problems[0][1]:
        hits, chance, right, wrong = [], [], [], []
        for i, (lat, groups, ok) in enumerate(problems):
            other = problems[(i + 1) % len(problems)][0]
            for x in groups[name]:
                hits.append(x in lat)
                chance.append(x in other)
                (right if ok else wrong).append(x in lat)
        if hits:
            print(f"| {name} | {len(hits)} | {np.mean(hits):.0%} | {np.mean(chance):.0%} | "
                  f"{np.mean(right) if right else float('nan'):.0%} | {np.mean(wrong) if wrong else float('nan'):.0%} |")


if by_iteration:
    for k in range(m.T + 1):
        fed = f"fed in iteration {k + 1}" if k < m.T else "never fed: what iteration T + 1 would read"
        print(f"\n### z{k} ({'from the init pass, ' if k == 0 else ''}{fed})")
        table([(lat[k], groups, ok) for lat, groups, ok in problems])
else:
    table(problems)
