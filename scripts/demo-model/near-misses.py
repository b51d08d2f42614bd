#!/usr/bin/env python3
"""How far the wrong answers are from the gold, by the solution's number of steps.

Usage: scripts/demo-model/near-misses.py [--within K] PREDICTIONS.jsonl...

Each file is what `kava-train eval --predictions` writes. For every file and step count: the
problems, the wrong answers, and how many of those are within K (default 3) of the gold — a
near miss, an answer of the right size with a wrong digit, against a wrong route (a far miss)
or no number at all.
"""
import argparse
import json
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--within", type=float, default=3)
ap.add_argument("files", nargs="+")
args = ap.parse_args()

print(f"file | steps | problems | wrong | within ±{args.within:g} of the gold | no number")
for path in args.files:
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    rows.append((int(r["steps"]), bool(r["correct"]), r["answer"], float(r["gold"])))
                except (ValueError, KeyError, TypeError) as e:
                    sys.exit(f"near-misses.py: {path}: line {n}: not a --predictions record ({e})")
    except OSError as e:
        sys.exit(f"near-misses.py: {path}: {e.strerror}")
    for steps in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == steps]
        wrong = [r for r in mine if not r[1]]
        none = sum(1 for r in wrong if r[2] is None)
        near = sum(1 for r in wrong if r[2] is not None and abs(float(r[2]) - r[3]) <= args.within)
        print(f"{path} | {steps} | {len(mine)} | {len(wrong)} | {near} | {none}")
