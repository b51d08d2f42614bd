#!/usr/bin/env bash
# Session 17's checks on this 2-core machine (CPU backend, f16), on the 200 000-problem data's test
# set (and its first 500 training problems):
#   * kava-t2's fourth stage (the f32 model `package` brought back, now kava/models/demo in f16)
#     scores what CUDA scored in f32, on test and training problems;
#   * the previous embedded model (session 13's kava-t2+, 2x on 50 000 problems; commit 5dcab13's
#     kava/models/demo) on the new test set, so the two embedded models compare on one test set;
#   * kava-t2's fifth stage (call 5's f32 model), the same;
#   * codi's third stage, rounded to f16 for the carry to session 18 (carry/codi-s3-f16.tar.xz),
#     in latent mode on the test set: the f32 model scored 290/500 on CUDA. Session 18 took carry/
#     out of the tree (commit f022bdc; the file travelled to the GPU machine in .gpu5/): where it is
#     missing, this script reads it from commit ea19c3b, which added it.
# Usage (repository root): docs/results/demo-model-2026-11-29/s17-4x/cpu-checks.sh S4_DIR OLD_DIR S5_DIR DATA_DIR
#   S4_DIR: the demo/ of the kava4 demo-model.tar.xz.part-*; OLD_DIR: `git archive 5dcab13 kava/models/demo | tar -x`;
#   S5_DIR: the final/ of kava-t2-s5.tar.xz.part-*; DATA_DIR: `kava-train synth --out DATA_DIR --train 200000 --test 1000 --seed 1`;
#   KAVA_TRAIN / KAVA: the release binaries (default target/release/*). Output: cpu-checks.txt.
set -euo pipefail
here=$(dirname "$0")
for m in "$1" "$2" "$3"; do "$here/../s16-m44/cpu-checks.sh" "$m" "$4"; done
KT=${KAVA_TRAIN:-target/release/kava-train}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
seed=$here/carry/codi-s3-f16.tar.xz
if [ ! -e "$seed" ]; then
  git show "ea19c3b:docs/results/demo-model-2026-11-29/s17-4x/carry/codi-s3-f16.tar.xz" > "$tmp/codi-s3-f16.tar.xz"
  seed=$tmp/codi-s3-f16.tar.xz
fi
xz -dc "$seed" | tar -C "$tmp" -xf -
head -n 500 "$4/test.txt" > "$tmp/test.txt"
echo "## carry/codi-s3-f16.tar.xz: test, latent (f16, CPU)"
"$KT" eval --model "$tmp/final" --data "$tmp/test.txt" --mode latent --limit 500 --batch-size 64 --backend cpu 2>&1 | grep '^kava-train eval'
