#!/usr/bin/env python3
"""Mean loss terms over the last N steps of kava-train runs (metrics.jsonl, plain or .gz).

Usage: scripts/demo-model/losses.py [--last 50] [--curve K] FILE...
e.g.   scripts/demo-model/losses.py demo-work/runs/*/metrics.jsonl
--curve K also prints, per run, the mean ce_student (and L_KV, where the run has it) of each
window of K steps (when it fell);
--below X the first step where the mean ce_student of the --last steps from there is below X.
"""
import argparse
import gzip
import json

ap = argparse.ArgumentParser()
ap.add_argument("--last", type=int, default=50)
ap.add_argument("--curve", type=int, default=0)
ap.add_argument("--below", type=float, default=None)
ap.add_argument("files", nargs="+")
args = ap.parse_args()
print(f"{'run':<40} {'step':>5}  mean of the last {args.last} steps: ce_student ce_teacher codi kv")
for f in args.files:
    opener = gzip.open if f.endswith(".gz") else open
    with opener(f, "rt") as fh:
        steps = [d for d in map(json.loads, filter(str.strip, fh)) if "eval" not in d]
    tail = steps[-args.last:]
    mean = lambda k: sum(d.get(k, 0.0) for d in tail) / max(len(tail), 1)
    print(f"{f:<40} {steps[-1]['step']:>5}  {mean('ce_student'):.3f} {mean('ce_teacher'):.4f} {mean('codi'):.4f} {mean('kv'):.4f}")
    if args.curve > 0:
        windows = [steps[i:i + args.curve] for i in range(0, len(steps), args.curve)]
        print("  ce_student by window: " + " ".join(
            f"{w[0]['step']}-{w[-1]['step']}:{sum(d['ce_student'] for d in w) / len(w):.3f}" for w in windows))
        if any(d.get("kv", 0.0) for d in steps):
            print("  kv by window:         " + " ".join(
                f"{w[0]['step']}-{w[-1]['step']}:{sum(d.get('kv', 0.0) for d in w) / len(w):.3f}" for w in windows))
    if args.below is not None:
        n = args.last
        first = next((steps[i] for i in range(len(steps) - n + 1)
                      if sum(d["ce_student"] for d in steps[i:i + n]) / n < args.below), None)
        print(f"  ce_student below {args.below}: " + (
            f"from step {first['step']} (lr {first['lr']:.2e})" if first else "never"))
