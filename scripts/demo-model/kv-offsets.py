#!/usr/bin/env python3
"""How well does a kava model's latent KV match its own teacher's compressed KV, slot by slot, and
does the mismatch of the keys grow with the distance between a kept entry and its slot?

Through the NumPy model of npkava.py, for the first N problems: the teacher sequence
`[BOS] Q "\\n" C "\\n" P A EOS` (C: the nl or aug steps without the last, joined by one space),
R-KV eviction of its CoT cache to M entries per layer and KV head (method.md §4: λ-mix of the
max-pooled answer-query importance and the key redundancy, kept entries in position order),
the student's K and V at the M latent slots after T Jacobi iterations, and L_KV's terms
(smooth-L1 of the differences over the layer's teacher std, method.md §3) — for V, for the keys
after RoPE (L_KV's default) and for the same keys with RoPE undone on both sides
(`loss.kv_pre_rope`'s comparison, of this model's keys), by the entry-to-slot offset, and by
what the kept entry's token is: a digit of a number the question states, a digit of a number
the steps compute, or another token.

Usage: scripts/demo-model/kv-offsets.py [MODEL_DIR] [DATA.jsonl] [N] [TRACE: nl|aug] [LAMBDA] [probe]
(defaults: kava/models/demo, demo-work/data/test.jsonl, 50, nl, 0.1; `probe`: the kinds of token
of scripts/latent-depth/gen.py traces — the digit a link leads to, the digit it starts from).
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npkava import Model, smooth_l1, trace_steps  # noqa: E402

m = Model(sys.argv[1] if len(sys.argv) > 1 else "kava/models/demo")
data = sys.argv[2] if len(sys.argv) > 2 else "demo-work/data/test.jsonl"
n = int(sys.argv[3]) if len(sys.argv) > 3 else 50
trace = sys.argv[4] if len(sys.argv) > 4 else "nl"
lam = float(sys.argv[5]) if len(sys.argv) > 5 else 0.1
probe = len(sys.argv) > 6 and sys.argv[6] == "probe"  # scripts/latent-depth/gen.py traces
M, KV, H, hd, L = m.M, m.KV, m.H, m.hd, m.L
g = H // KV


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def fmt(v):
    return f"{float(v):g}" if float(v) != int(float(v)) else str(int(float(v)))


# Labels of npkava's token kinds (COPIED, COMPUTED, OTHER).
CLASSES = ("digit of a number in the question", "digit of a computed number", "other token")
if probe:  # every digit is in the question's link list; the link targets are what is computed
    CLASSES = ("digit before a link (start or copy)", "digit a link leads to", "other token")


in_trace = {}  # class -> trace tokens of that class
# By the solution's number of steps (the dropped last one included): trace entries and computed
# digits, in all and kept, summed over layers and KV heads.
by_steps = {}
rows = []  # (layer, offset, student K post, teacher K post, student K pre, teacher K pre, student V, teacher V)
for line in list(open(data))[:n]:
    pb = json.loads(line)
    steps = trace_steps(pb["answer"], trace)[:-1]
    if not steps:
        continue
    gold = pb["answer"].split("####")[-1].strip().replace(",", "")
    q, c = m.encode(pb["question"]), m.encode(" ".join(steps))
    nl = m.encode("\n")
    pa = m.encode(m.kv["answer_prompt"]) + m.encode(fmt(gold)) + sorted(m.stops)[:1]
    ids = m.bos + q + nl + c + nl + pa
    cs = len(m.bos + q + nl)
    ce = cs + len(c)
    ans = np.arange(len(ids) - len(pa), len(ids))
    queries = []
    _, cache = m.forward(m.E[ids], np.arange(len(ids)), queries=queries)
    b, scache, _ = m.latent_pass(pb["question"])
    assert b + 1 == cs, "the student's first slot and the teacher's first CoT token share a position"
    N = ce - cs
    keep_n = min(M, N)
    classes = [CLASSES[k] for k in m.token_kinds(c, pb["question"], probe)]
    for k in classes:
        in_trace[k] = in_trace.get(k, 0) + 1
    group = (len(steps) + 1, N > M)  # the solution's steps, and whether eviction runs
    tally = by_steps.setdefault(group, {"problems": 0, "entries": 0, "kept": 0, "computed": 0, "computed kept": 0})
    tally["problems"] += 1
    computed = {i for i, k in enumerate(classes) if k == CLASSES[1]}
    for l in range(L):
        K, V = cache[l]
        Kc, Vc = K[cs:ce], V[cs:ce]
        Ks, Vs = scache[l][0][b + 1:b + 1 + M], scache[l][1][b + 1:b + 1 + M]
        for h in range(KV):
            qa = queries[l][ans][:, h * g:(h + 1) * g]  # [n_ans, g, hd]
            logits = np.einsum("agd,nd->agn", qa, Kc[:, h]) / np.sqrt(hd)
            imp = np.mean([softmax(row) for row in logits.max(1)], 0)
            unit = Kc[:, h] / (np.linalg.norm(Kc[:, h], axis=1, keepdims=True) + 1e-8)
            S = unit @ unit.T
            np.fill_diagonal(S, 0.0)
            red = softmax(-S.sum(1) / N)
            score = lam * imp + (1 - lam) * red
            kept = np.sort(np.argsort(-score, kind="stable")[:keep_n])
            tally["entries"] += N
            tally["kept"] += keep_n
            tally["computed"] += len(computed)
            tally["computed kept"] += len(computed & set(kept.tolist()))
            for j, i in enumerate(kept):
                pos_t, pos_s = cs + i, b + 1 + j
                kt_pre = m.rope(Kc[i:i + 1, h:h + 1], [pos_t], -1.0)[0, 0]
                ks_pre = m.rope(Ks[j:j + 1, h:h + 1], [pos_s], -1.0)[0, 0]
                rows.append((l, i - j, Ks[j, h], Kc[i, h], ks_pre, kt_pre, Vs[j, h], Vc[i, h], classes[i], group))


layers = np.array([r[0] for r in rows])
offsets = np.array([r[1] for r in rows])
parts = {name: (np.array([r[k] for r in rows]), np.array([r[k + 1] for r in rows])) for name, k in (("K after RoPE", 2), ("K before RoPE", 4), ("V", 6))}
terms, const = {}, {}
for name, (s, t) in parts.items():
    sigma = np.array([t[layers == l].std() for l in range(L)])[layers][:, None]
    terms[name] = smooth_l1((s - t) / sigma).mean(1)
    # The floor any student beats without reading the trace: each layer's mean kept teacher entry.
    mean = np.stack([t[layers == l].mean(0) for l in range(L)])[layers]
    const[name] = smooth_l1((mean - t) / sigma).mean(1)
print(f"{m.kv['num_latents']} latents, T = {m.T}; {n} problems, {trace} traces; {len(rows)} kept entries (slot, layer, KV head)")
print(f"entry-to-slot offset: mean {offsets.mean():.1f}, median {np.median(offsets):.0f}, max {offsets.max()}")
print(f"L_KV (½ of the key term after RoPE + the value term): "
      f"{0.5 * (terms['K after RoPE'].mean() + terms['V'].mean()):.3f}")
print(f"L_KV of a constant guess (each layer's mean kept teacher K and V): "
      f"{0.5 * (const['K after RoPE'].mean() + const['V'].mean()):.3f}")
print("| offset | share of slots | " + " | ".join(parts) + " |")
print("|---|---|" + "---|" * len(parts))
for lo, hi in ((0, 0), (1, 4), (5, 12), (13, 999), (0, 999)):
    sel = (offsets >= lo) & (offsets <= hi)
    if not sel.any():
        continue
    label = "all" if (lo, hi) == (0, 999) else (f"{lo}" if lo == hi else f"{lo}–{hi}" if hi < 999 else f"≥ {lo}")
    print(f"| {label} | {sel.mean():.0%} | " + " | ".join(f"{terms[k][sel].mean():.3f}" for k in parts) + " |")
print("by layer (all offsets): " + " · ".join(f"layer {l}: K {terms['K after RoPE'][layers == l].mean():.3f} / V {terms['V'][layers == l].mean():.3f}" for l in range(L)))
kinds = np.array([r[8] for r in rows])
total = sum(in_trace.values())
print("by the kept entry's token (digits are one per token):")
print("| kept token | share of the trace | share of the kept entries | " + " | ".join(parts) + " |")
print("|---|---|---|" + "---|" * len(parts))
for k in CLASSES:
    sel = kinds == k
    if not sel.any():
        continue
    print(f"| {k} | {in_trace.get(k, 0) / total:.0%} | {sel.mean():.0%} | " + " | ".join(f"{terms[x][sel].mean():.3f} ({const[x][sel].mean():.3f})" for x in parts) + " |")
print("(in brackets: the constant guess's)")
print("the same, at offset 0 and beyond (is a slot far from its entry worse, or just its token harder?):")
print("| kept token | offset | share of the kept entries | " + " | ".join(parts) + " |")
print("|---|---|---|" + "---|" * len(parts))
for k in CLASSES:
    for label, sel in (("0", (kinds == k) & (offsets == 0)), ("≥ 1", (kinds == k) & (offsets > 0))):
        if sel.any():
            print(f"| {k} | {label} | {sel.mean():.0%} | " + " | ".join(f"{terms[x][sel].mean():.3f} ({const[x][sel].mean():.3f})" for x in parts) + " |")
print(f"by the solution's number of steps and whether its trace is longer than M = {M} (evicted; kept: of the trace's entries, over layers and KV heads):")
print(f"| steps | evicted | problems | trace entries kept | {CLASSES[1]}s kept | L_KV of the kept entries (constant guess) |")
print("|---|---|---|---|---|---|")
groups = [r[9] for r in rows]
for k, t in sorted(by_steps.items()):
    sel = np.array([x == k for x in groups])
    lkv = 0.5 * (terms["K after RoPE"][sel].mean() + terms["V"][sel].mean())
    lc = 0.5 * (const["K after RoPE"][sel].mean() + const["V"][sel].mean())
    print(f"| {k[0]} | {'yes' if k[1] else 'no'} | {t['problems']} | {t['kept'] / t['entries']:.0%} | "
          f"{t['computed kept'] / max(t['computed'], 1):.0%} | {lkv:.3f} ({lc:.3f}) |")
