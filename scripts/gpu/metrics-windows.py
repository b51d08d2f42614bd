#!/usr/bin/env python3
"""Step-window summary of a kava-train metrics.jsonl: per window of steps, the median s/step,
tokens/s (tokens over seconds) and the mean of each loss term.

    scripts/gpu/metrics-windows.py RUN/metrics.jsonl 1-10 11-50 251-300
"""
import json
import statistics as st
import sys


def main() -> None:
    path, windows = sys.argv[1], sys.argv[2:] or ["1-1000000"]
    rows = [json.loads(l) for l in open(path) if l.strip()]
    rows = [r for r in rows if "seconds" in r and "eval" not in r]
    print("| steps | median s/step | tokens/s | loss | CE_student | CE_teacher | L_CODI | L_KV |")
    print("|---|---|---|---|---|---|---|---|")
    for w in windows:
        lo, hi = (int(x) for x in w.split("-"))
        sel = [r for r in rows if lo <= r["step"] <= hi]
        if not sel:
            print(f"| {w} | (no steps) |")
            continue
        mean = lambda k: st.mean(r[k] for r in sel)
        print(f"| {lo}–{sel[-1]['step']} | {st.median(r['seconds'] for r in sel):.2f} | "
              f"{sum(r['tokens'] for r in sel) / sum(r['seconds'] for r in sel):,.0f} | {mean('loss'):.3f} | "
              f"{mean('ce_student'):.3f} | {mean('ce_teacher'):.3f} | {mean('codi'):.3f} | {mean('kv'):.3f} |")


if __name__ == "__main__":
    main()
