#!/usr/bin/env bash
# How the held-out test set (train.sh prepare: the first 500 of `synth --test 1000`) changes when the
# training split grows from 50 000 to 200 000 problems: the test stream skips every question the
# training split already holds, so a larger one replaces some test problems. Prints how many of the
# 500 differ. Usage (repository root): …/train-200k-test-overlap.sh  (KAVA_TRAIN: the binary)
set -euo pipefail
KT=${KAVA_TRAIN:-target/release/kava-train}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for n in 50000 200000; do
  "$KT" synth --out "$tmp/d$n" --train "$n" --test 1000 --seed 1 > /dev/null
  head -n 500 "$tmp/d$n/test.txt" | sort > "$tmp/t$n"
done
echo "test problems (of 500) that differ between --train 50000 and --train 200000: $(comm -23 "$tmp/t50000" "$tmp/t200000" | wc -l)"
cut -d'|' -f1 "$tmp/t50000" | sort -u > "$tmp/q"
cut -d'|' -f1 "$tmp/d200000/train.txt" | sort -u > "$tmp/q200"
echo "of the 50 000-split's 500 test questions, in the 200 000-problem training split: $(comm -12 "$tmp/q" "$tmp/q200" | wc -l)"
