#!/usr/bin/env bash
# Paired comparisons (McNemar exact) on the same 500 held-out problems: the embedded demo model
# (kava-t2+++, both its modes) against the ablations trained with the same recipe and budget
# (nocot+++, pccot-t2+++, codi+++), and the same comparisons after 1, 2 and 3 of the four stages
# (kava-t2, kava-t2+, kava-t2++ against nocot, pccot-t2 with the same number of pluses).
# predictions.tar.xz holds what `kava-train eval --predictions` wrote for each run; the near misses
# come from the same files (scripts/demo-model/near-misses.py).
# Run from anywhere: docs/results/demo-ablation-4x/paired.sh > docs/results/demo-ablation-4x/paired.txt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scripts=$here/../../../scripts/demo-model
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$here/predictions.tar.xz" -C "$tmp"
cd "$tmp/predictions"
echo "# Paired comparisons on the same 500 held-out problems (McNemar exact); written by paired.sh."
pair() { echo; echo "\$ paired.py $1 $2"; python3 "$scripts/paired.py" "$1" "$2"; }
K=eval-kava-t2+++-latent.jsonl
C=eval-kava-t2+++-cot.jsonl
echo; echo "## 4 stages: the embedded model (latent) against each ablation and its own CoT mode"
pair $K eval-nocot+++-nocot.jsonl
pair $K eval-pccot-t2+++-latent.jsonl
pair $K eval-codi+++-latent.jsonl
pair $K $C
echo; echo "## 4 stages: the embedded model's CoT mode against No-CoT; the ablations against each other"
pair $C eval-nocot+++-nocot.jsonl
pair eval-codi+++-latent.jsonl eval-pccot-t2+++-latent.jsonl
pair eval-pccot-t2+++-latent.jsonl eval-nocot+++-nocot.jsonl
for s in "" + ++; do
  echo; echo "## $((${#s} + 1)) stage(s): kava-t2$s (latent) against nocot$s and pccot-t2$s"
  pair eval-kava-t2$s-latent.jsonl eval-nocot$s-nocot.jsonl
  pair eval-kava-t2$s-latent.jsonl eval-pccot-t2$s-latent.jsonl
done
echo; echo "## Wrong answers by how far they are from the gold (4 stages)"
echo "\$ near-misses.py $K $C eval-nocot+++-nocot.jsonl eval-pccot-t2+++-latent.jsonl eval-codi+++-latent.jsonl"
python3 "$scripts/near-misses.py" $K $C eval-nocot+++-nocot.jsonl eval-pccot-t2+++-latent.jsonl eval-codi+++-latent.jsonl
