#!/usr/bin/env python3
"""Pointer-chasing problems in GSM8k JSONL: a task that needs depth, to check that kava's latent
reasoning adds sequential computation a model of few layers cannot do in one pass (No-CoT).

Each problem lists a random permutation of the digits 0-9 as links `a>b` in random order and asks
where `hops` links (2-5) lead from a start digit. The solution writes one link per line (the nl
trace; the teacher sees all but the last, method.md §1.2) and `#### answer`.

Usage: gen.py OUT_DIR [--train N] [--test N] [--seed S] [--verbose | --wrapped]
(--verbose writes each link as `4 to 5`: the same problems, a trace twice as long; --wrapped as
`so 4>5`: the compact link, the extra tokens before it)
Writes train.jsonl and the held-out problems split in two halves, test.jsonl and valid.jsonl;
no held-out question is in train.jsonl.
"""
import argparse
import json
import os
import random


def problem(rng, form="compact"):
    perm = list(range(10))
    rng.shuffle(perm)
    order = list(range(10))
    rng.shuffle(order)
    links = ", ".join(f"{a}>{perm[a]}" for a in order)
    start = rng.randrange(10)
    hops = rng.randint(2, 5)
    lines, x = [], start
    for _ in range(hops):
        # --verbose: the same link in words, twice the tokens, so that the teacher's trace is
        # ~3x the M = 6 latents (the demo's: ~2x its M = 24) and eviction shifts the kept entries
        # --wrapped: the compact link with a word before it instead, as long as --verbose (`so 4>5`)
        lines.append({"compact": f"{x}>{perm[x]}", "verbose": f"{x} to {perm[x]}", "wrapped": f"so {x}>{perm[x]}"}[form])
        x = perm[x]
    question = f"Links: {links}. Start at {start} and follow {hops} links. Where do you end?"
    return {"question": question, "answer": "\n".join(lines) + f"\n#### {x}"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    form = ap.add_mutually_exclusive_group()
    form.add_argument("--verbose", action="store_true", help="each link of the solution in words (`4 to 5`)")
    form.add_argument("--wrapped", action="store_true", help="each link compact, a word before it (`so 4>5`)")
    a = ap.parse_args()
    form = "verbose" if a.verbose else "wrapped" if a.wrapped else "compact"
    rng = random.Random(a.seed)
    held, seen = [], set()
    while len(held) < a.test:
        p = problem(rng, form)
        if p["question"] not in seen:
            seen.add(p["question"])
            held.append(p)
    train = []
    while len(train) < a.train:
        p = problem(rng, form)
        if p["question"] not in seen:
            train.append(p)
    os.makedirs(a.out, exist_ok=True)
    half = a.test // 2
    for name, rows in (("train", train), ("test", held[:half]), ("valid", held[half:])):
        with open(os.path.join(a.out, f"{name}.jsonl"), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    print(f"gen.py: {len(train)} train, {half} test, {a.test - half} valid problems (seed {a.seed}) in {a.out}")


if __name__ == "__main__":
    main()
