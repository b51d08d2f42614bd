#!/usr/bin/env python3
"""Two runs on the same problems, compared problem by problem (a paired test).

Usage: scripts/demo-model/paired.py A.jsonl[:MODE] B.jsonl[:MODE]

Each file is what `kava-train eval --predictions` writes (one JSON line per problem and mode);
MODE picks one mode where a file holds several. Prints each accuracy, the problems only A / only
B got right, the paired difference with its standard error and 95 % interval, and McNemar's exact
two-sided p-value (a binomial test on the discordant problems). Two accuracies on the same 500
problems are not independent: this is the test for "A beats B" on one test set.
"""
import json
import math
import sys


def load(spec):
    path, _, mode = spec.partition(":")
    rows = {}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        sys.exit(f"paired.py: {path}: {e.strerror}")
    except UnicodeDecodeError as e:
        sys.exit(f"paired.py: {path}: not UTF-8 text (byte {e.start}); expected the JSON lines of `kava-train eval --predictions`")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            key, m, correct = int(r["index"]), r["mode"], bool(r["correct"])
            # What identifies the problem beyond its position: its gold answer and step count.
            problem = (r.get("gold"), r.get("steps"))
        except (ValueError, KeyError, TypeError) as e:
            sys.exit(f"paired.py: {path}: line {n}: not a prediction record ({e})")
        if mode and m != mode:
            continue
        if key in rows:
            sys.exit(f"paired.py: {path}: problem {key} twice (modes {rows[key][0]} and {m}): name one with {path}:MODE")
        rows[key] = (m, correct, problem)
    if not rows:
        sys.exit(f"paired.py: {path}: no records" + (f" of mode {mode}" if mode else ""))
    return rows


def binom_two_sided(k, n):
    """P(X <= min(k, n-k)) * 2 for X ~ Bin(n, 1/2), capped at 1."""
    if n == 0:
        return 1.0
    lo = min(k, n - k)
    p = sum(math.comb(n, i) for i in range(lo + 1)) / 2 ** n
    return min(1.0, 2 * p)


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    a, b = load(argv[1]), load(argv[2])
    common = sorted(set(a) & set(b))
    # Records are paired by position: two evaluations of different test sets (e.g. another
    # `synth --train` count, which replaces some test problems) would pair unrelated problems.
    differ = [k for k in common if None not in a[k][2] + b[k][2] and a[k][2] != b[k][2]]
    if differ:
        k = differ[0]
        sys.exit(f"paired.py: {argv[1]} and {argv[2]} are not the same problems: {len(differ)} of {len(common)} "
                 f"differ in their gold answer or steps (first: problem {k}, gold {a[k][2][0]} / {a[k][2][1]} steps "
                 f"against {b[k][2][0]} / {b[k][2][1]} steps); were they evaluated on the same test file?")
    if len(common) < len(a) or len(common) < len(b):
        print(f"note: {len(a)} and {len(b)} problems, {len(common)} in both: comparing those")
    n = len(common)
    if n == 0:
        sys.exit("paired.py: no problem in both files")
    ca = sum(a[k][1] for k in common)
    cb = sum(b[k][1] for k in common)
    only_a = sum(a[k][1] and not b[k][1] for k in common)
    only_b = sum(b[k][1] and not a[k][1] for k in common)
    d = (only_a - only_b) / n
    se = math.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0)) / n
    p = binom_two_sided(only_a, only_a + only_b)
    print(f"A {argv[1]}: {ca}/{n} = {100 * ca / n:.1f} %")
    print(f"B {argv[2]}: {cb}/{n} = {100 * cb / n:.1f} %")
    print(f"only A right: {only_a} · only B right: {only_b} · both: {sum(a[k][1] and b[k][1] for k in common)} · neither: {sum(not a[k][1] and not b[k][1] for k in common)}")
    print(f"A - B = {100 * d:+.1f} points, s.e. {100 * se:.1f} (paired), 95 % interval {100 * (d - 1.96 * se):+.1f} to {100 * (d + 1.96 * se):+.1f}")
    print(f"McNemar exact two-sided p = {p:.4g}")


if __name__ == "__main__":
    main(sys.argv)
