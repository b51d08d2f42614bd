#!/usr/bin/env bash
# Paired comparisons (McNemar exact) on the same 500 held-out problems of the 200 000-problem data:
# session 18's ablation runs against the embedded model (session 17's kava-t2+++, both its modes), and
# call 4's exploratory fifth stages (alpha_kv = 3, 10) against session 17's fifth stage (alpha_kv = 1).
# Run from anywhere: docs/results/demo-model-2026-11-29/s18-4x/paired.sh > .../s18-4x/paired.txt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
paired=$here/../../../../scripts/demo-model/paired.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/s17" "$tmp/s18"
tar -xJf "$here/../s17-4x/preds.tar.xz" -C "$tmp/s17"
tar -xJf "$here/preds.tar.xz" -C "$tmp/s18"
cd "$tmp"
echo "# Paired comparisons on the same 500 held-out problems (McNemar exact); written by s18-4x/paired.sh."
echo "# s17/ = ../s17-4x/preds.tar.xz (kava-t2, codi 1-3x), s18/ = ./preds.tar.xz (nocot, pccot-t2, codi 4x; s5-akv*: call 4)."
pair() { echo; echo "\$ paired.py $1 $2"; python3 "$paired" "$1" "$2"; }
K=s17/preds/eval-kava-t2+++-latent.jsonl
C=s17/preds/eval-kava-t2+++-cot.jsonl
echo; echo "## 4x: the embedded model (latent) against each ablation and its own CoT mode"
pair $K s18/preds/eval-nocot+++-nocot.jsonl
pair $K s18/preds/eval-pccot-t2+++-latent.jsonl
pair $K s18/preds/eval-codi+++-latent.jsonl
pair $K $C
echo; echo "## 4x: the embedded model's CoT mode against No-CoT; the ablations against each other"
pair $C s18/preds/eval-nocot+++-nocot.jsonl
pair s18/preds/eval-codi+++-latent.jsonl s18/preds/eval-pccot-t2+++-latent.jsonl
pair s18/preds/eval-pccot-t2+++-latent.jsonl s18/preds/eval-nocot+++-nocot.jsonl
for s in "" + ++; do
  echo; echo "## $((${#s} + 1))x: kava-t2$s (latent) against nocot$s and pccot-t2$s"
  pair s17/preds/eval-kava-t2$s-latent.jsonl s18/preds/eval-nocot$s-nocot.jsonl
  pair s17/preds/eval-kava-t2$s-latent.jsonl s18/preds/eval-pccot-t2$s-latent.jsonl
done
echo; echo "## 5x (exploratory, call 4): a fifth stage from the embedded model with alpha_kv = 3 and 10 (s18/preds/s5-akv*) against session 17's fifth stage at alpha_kv = 1"
for a in 3 10; do
  pair s18/preds/s5-akv$a-latent.jsonl s18/preds/s5-akv$a-cot.jsonl
  pair s18/preds/s5-akv$a-latent.jsonl s17/preds/eval-kava-t2++++-latent.jsonl
done
pair s18/preds/s5-akv3-cot.jsonl s17/preds/eval-kava-t2++++-cot.jsonl
