#!/usr/bin/env python3
"""Teacher-trace lengths of the demo problems in the demo tokenizer's tokens, and how far the
evicted entries can sit from the student slots they are matched with (method.md §4: the kept M'
entries, in position order, go to slots 0..M'-1, so entry j sits up to N - M positions after
slot j), with the RoPE turn that offset gives each frequency pair of a head.

With prediction files (`kava-train eval --predictions`, on the same DATA in the same order): each
one's accuracy by the solution's number of steps and whether its trace is longer than M.

Usage: scripts/demo-model/trace-lengths.py [DATA.jsonl] [N] [TRACE: nl|aug] [MODEL_DIR] [PREDS.jsonl...]
(defaults: demo-work/data/test.jsonl, 500, nl, kava/models/demo). Needs `pip install tokenizers`.
"""
import json
import re
import statistics as st
import sys

from tokenizers import Tokenizer

data = sys.argv[1] if len(sys.argv) > 1 else "demo-work/data/test.jsonl"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
trace = sys.argv[3] if len(sys.argv) > 3 else "nl"
model = (sys.argv[4] if len(sys.argv) > 4 else "kava/models/demo").rstrip("/")
tok = Tokenizer.from_file(model + "/tokenizer.json")
cfg = json.load(open(model + "/config.json"))
m = json.load(open(model + "/kava.json"))["num_latents"]
hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
theta = cfg.get("rope_theta", 10000.0)

preds = sys.argv[5:]
lengths, n_steps, sol_steps = [], 0, []  # sol_steps: each solution's steps, the dropped one included
for i, line in enumerate(open(data)):
    if i >= n:
        break
    answer = json.loads(line)["answer"]
    if trace == "aug":
        steps = re.findall(r"<<[^>]*>>", answer)[:-1]  # the last step is dropped (method.md §1.2)
        text = " ".join(steps)
    else:
        steps = [re.sub(r"<<[^>]*>>", "", s) for s in answer.split("\n") if not s.startswith("####")][:-1]
        text = " ".join(s.strip() for s in steps)  # steps joined by one space, as kava-train does
    lengths.append(len(tok.encode(text, add_special_tokens=False).ids) if steps else 0)
    n_steps += len(steps)
    sol_steps.append(len(steps) + 1)

longer = [x - m for x in lengths if x > m]
print(f"{len(lengths)} problems, {trace} traces without their last step: mean {st.mean(lengths):.1f} tokens, "
      f"median {st.median(lengths):.0f}, max {max(lengths)}; longer than M = {m}: {100 * len(longer) / len(lengths):.0f} %")
print(f"tokens per kept step: {sum(lengths) / max(n_steps, 1):.1f}")
for k in sorted(set(sol_steps)):
    ls = [x for x, s in zip(lengths, sol_steps) if s == k]
    print(f"{k}-step solutions: {len(ls)}, trace mean {st.mean(ls):.1f} tokens, max {max(ls)}, "
          f"longer than M = {m}: {100 * sum(x > m for x in ls) / len(ls):.0f} %")
if longer:
    print(f"largest entry-to-slot offset (N - M) over those: mean {st.mean(longer):.1f}, max {max(longer)}")
freqs = [theta ** (-2 * k / hd) for k in range(hd // 2)]
for off in (4, 8, 16, 28):
    turned = sum(f * off > 0.5 for f in freqs)
    print(f"offset {off:2d}: {turned} of {hd // 2} RoPE frequency pairs turn by more than 0.5 rad")
for path in preds:
    rows = [json.loads(line) for line in open(path)][:len(lengths)]
    groups = {}
    for r, k, length in zip(rows, sol_steps, lengths):
        groups.setdefault((k, length > m), []).append(bool(r["correct"]))
    print(f"{path}: " + " · ".join(f"{k} steps, trace {'> ' if evicted else '<= '}{m}: {100 * sum(v) / len(v):.1f} % (n {len(v)})"
                                   for (k, evicted), v in sorted(groups.items())))
