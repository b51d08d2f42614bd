#!/usr/bin/env bash
# Session 16's checks on this 2-core machine (CPU backend) of one model, in f16: kava-t2++ (the
# third stage of the M = 24 recipe, call 4; from the f32 model call 5 brought back, kept
# git-ignored in .gpu4/s16/) and the embedded model (kava/models/demo: the second stage):
#   * the f16 conversion scores what CUDA scored in f32 (test, latent and CoT mode);
#   * the same model on the first 500 training problems: how much of its accuracy is memorised.
# Usage (repository root): docs/results/demo-model-2026-11-29/s16-m44/cpu-checks.sh MODEL_DIR DATA_DIR
#   (cpu-checks.txt: .gpu4/s16/kava-t2pp, then kava/models/demo)
#   DATA_DIR: `kava-train synth --out DATA_DIR --train 50000 --test 1000 --seed 1` (train.sh prepare's data);
#   KAVA_TRAIN / KAVA: the release binaries (default target/release/*).
set -euo pipefail
model=$1 data=$2
KT=${KAVA_TRAIN:-target/release/kava-train} KAVA=${KAVA:-target/release/kava}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$KAVA" convert "$model" "$tmp/f16" --dtype f16
head -n 500 "$data/test.txt" > "$tmp/test.txt"    # train.sh prepare: the first 500 are the test set
head -n 500 "$data/train.txt" > "$tmp/train.txt"
for split in test train; do
  for mode in latent cot; do
    echo "## $model: $split, $mode (f16, CPU)"
    "$KT" eval --model "$tmp/f16" --data "$tmp/$split.txt" --mode "$mode" --limit 500 --batch-size 64 \
      --backend cpu 2>&1 | grep '^kava-train eval'
  done
done
