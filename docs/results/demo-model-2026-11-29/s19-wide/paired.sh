#!/usr/bin/env bash
# Paired comparisons (McNemar exact) on the same 500 held-out problems of the 200 000-problem data:
# session 19's 7 x 320 model (wide4, kava-t2 at 1-3x) against its own CoT mode, against the embedded
# recipe's 6 x 256 model at the same stage (session 17's kava-t2, both modes) and against No-CoT at
# the same stage (session 18's nocot).
# Run from anywhere: docs/results/demo-model-2026-11-29/s19-wide/paired.sh > .../s19-wide/paired.txt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
paired=$here/../../../../scripts/demo-model/paired.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/s17" "$tmp/s18" "$tmp/s19"
tar -xJf "$here/../s17-4x/preds.tar.xz" -C "$tmp/s17"
tar -xJf "$here/../s18-4x/preds.tar.xz" -C "$tmp/s18"
tar -xJf "$here/preds.tar.xz" -C "$tmp/s19"
cd "$tmp"
echo "# Paired comparisons on the same 500 held-out problems (McNemar exact); written by s19-wide/paired.sh."
echo "# s19/ = ./preds.tar.xz (7 x 320, kava-t2 1-3x), s17/ = ../s17-4x/preds.tar.xz (6 x 256, kava-t2), s18/ = ../s18-4x/preds.tar.xz (nocot)."
pair() { echo; echo "\$ paired.py $1 $2"; python3 "$paired" "$1" "$2"; }
for s in "" + ++; do
  W=s19/preds/eval-kava-t2$s
  echo; echo "## $((${#s} + 1))x: 7 x 320 kava-t2$s (latent) against its CoT mode, the 6 x 256 model in each mode, and nocot$s"
  pair $W-latent.jsonl $W-cot.jsonl
  pair $W-latent.jsonl s17/preds/eval-kava-t2$s-latent.jsonl
  pair $W-cot.jsonl s17/preds/eval-kava-t2$s-cot.jsonl
  pair $W-latent.jsonl s18/preds/eval-nocot$s-nocot.jsonl
done
