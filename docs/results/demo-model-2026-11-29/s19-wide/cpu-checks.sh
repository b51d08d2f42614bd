#!/usr/bin/env bash
# Session 19's checks on this 2-core machine (CPU backend, f16) of the 7 x 320 model's third stage
# (wide4's kava-t2++, the f32 model `package` brought back in three parts):
#   * its size in f16 (kava convert), against the issue's 20 MB;
#   * the f16 conversion scores what CUDA scored in f32 (test, both modes), and the same model on
#     the first 500 training problems (s16-m44/cpu-checks.sh).
# Usage (repository root): docs/results/demo-model-2026-11-29/s19-wide/cpu-checks.sh MODEL_DIR DATA_DIR > .../s19-wide/cpu-checks.txt
#   MODEL_DIR: the demo/ of `cat wide4/demo-model.tar.xz.part-* | xz -dc | tar -x`;
#   DATA_DIR: `kava-train synth --out DATA_DIR --train 200000 --test 1000 --seed 1`;
#   KAVA_TRAIN / KAVA: the release binaries (default target/release/*).
set -euo pipefail
here=$(dirname "$0")
KAVA=${KAVA:-target/release/kava}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$KAVA" convert "$1" "$tmp/f16" --dtype f16
echo "## the model directory in f16: $(find "$tmp/f16" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }') bytes (f32 as trained: $(find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }'))"
"$here/../s16-m44/cpu-checks.sh" "$1" "$2"
