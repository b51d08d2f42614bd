#!/usr/bin/env python3
"""Summarises a CubeCL kernel profile written by scripts/gpu/profile-step.sh (profile-*.log.gz):
device time per training step by kernel kind, after skipping the first SKIP steps.

A kernel whose duration is over 5x its own median is counted at 5x the median in the "steady"
figure and the excess reported apart as "one-off", and so is every launch of a kernel variant
seen in fewer than half of the steps: these are first launches of a new shape (JIT compilation,
autotuning), which a long run pays once per distinct shape.

Usage: scripts/gpu/profile-summary.py --steps 12 [--skip 4] [--top 12] FILE...
"""
import argparse, collections, gzip, re, signal

signal.signal(signal.SIGPIPE, signal.SIG_DFL)

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, required=True, help="optimizer steps in the profiled run")
ap.add_argument("--skip", type=int, default=4)
ap.add_argument("--top", type=int, default=12)
ap.add_argument("files", nargs="+")
args = ap.parse_args()
UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def seconds(text):
    m = re.match(r"([\d.]+)(ns|µs|us|ms|s)$", text.strip())
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


for f in args.files:
    lines = [l for l in gzip.open(f, "rt") if l.startswith("| ")]
    per = len(lines) / args.steps  # kernels per step (the same every step)
    tail = lines[int(per * args.skip):]
    n = len(tail) / per
    by_name = collections.defaultdict(list)
    for l in tail:
        parts = l.split("|")
        t = seconds(parts[1])
        if t is not None:
            by_name["|".join(parts[2:]).strip()].append(t)
    kinds = collections.defaultdict(lambda: [0.0, 0])
    one_off = 0.0
    for name, ts in by_name.items():
        if len(ts) < n / 2:
            one_off += sum(ts)
            continue
        med = sorted(ts)[len(ts) // 2]
        capped = sum(min(t, 5 * med) for t in ts)
        one_off += sum(ts) - capped
        kind = "Matmul" if "Matmul" in name else re.sub(r"_[0-9a-f]{8}$", "", name.split("|")[0].strip() + (" " + name.split("|")[1].strip() if "|" in name else ""))
        kinds[kind][0] += capped
        kinds[kind][1] += len(ts)
    steady = sum(k[0] for k in kinds.values())
    print(f"{f}: {per:.0f} kernels/step; steps {args.skip + 1}-{args.steps}: steady device time {steady / n * 1e3:.1f} ms/step, "
          f"one-off (first launches of new shapes) {one_off / n * 1e3:.1f} ms/step")
    for kind, (t, c) in sorted(kinds.items(), key=lambda x: -x[1][0])[: args.top]:
        print(f"  {t / n * 1e3:8.2f} ms/step  {c / n:7.0f} launches/step  {kind[:60]}")
