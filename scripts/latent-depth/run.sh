#!/usr/bin/env bash
# Does kava's latent reasoning add sequential depth? A probe on a task built to need it
# (scripts/latent-depth/gen.py: follow 2-5 links of a random permutation of the digits), with a
# model too shallow to follow more than about one link per forward pass (2 layers, hidden 64):
# No-CoT must answer in one pass, CoT writes one link per step, and kava/pccot have T = 3 Jacobi
# passes over M = 6 latents. If the latents add depth, kava beats No-CoT on 3-5 links.
# Everything runs through `kava-train` (synthetic data by gen.py, `init-model`, `train`, `eval`).
# Status (docs/results/latent-depth-2026-11-29/): the 2-layer CoT teacher learns the lookup only
# at ~8 000 steps (LR=1e-3 WARMUP_STEPS=10000: CoT 100 %; with 1 500-5 000 steps it stays at
# chance); the methods need thousands of steps too. Check the warm-up's CoT accuracy
# (`kava-train eval --mode cot`) before `methods`.
# Usage: scripts/latent-depth/run.sh [PHASE...] (default: all of prepare warmup methods eval).
# Environment: KAVA_TRAIN (default target/release/kava-train), BACKEND (default cpu), WORK
# (default latent-depth-work), WARMUP_STEPS (10000), STEPS (5000), MB (64), LR (1e-3),
# METHODS ("nocot pccot kava"), JOBS (parallel training runs, default 3), LAYERS (2), HIDDEN (64).
set -euo pipefail
cd "$(dirname "$0")/../.."
KT=${KAVA_TRAIN:-target/release/kava-train}
WORK=${WORK:-latent-depth-work}
BACKEND=${BACKEND:-cpu}
WARMUP_STEPS=${WARMUP_STEPS:-10000}
STEPS=${STEPS:-5000}
MB=${MB:-64}
LR=${LR:-1e-3}
JOBS=${JOBS:-3}
CONFIG=scripts/latent-depth/probe.toml
read -r -a METHODS <<< "${METHODS:-nocot pccot kava}"
mkdir -p "$WORK/logs"

train() { # NAME METHOD FROM STEPS [extra args]
  local name=$1 method=$2 from=$3 steps=$4; shift 4
  "$KT" train --config "$CONFIG" --method "$method" --backend "$BACKEND" \
    --set model=\""$from"\" --set data.train=\""$WORK/data/train.jsonl"\" \
    --set optim.max_steps="$steps" --set optim.lr="$LR" \
    --set optim.micro_batch="$MB" --set optim.effective_batch="$MB" \
    --set checkpoint.dir=\""$WORK/runs/$name"\" "$@" > "$WORK/logs/$name.log" 2>&1
  grep '^kava-train:' "$WORK/logs/$name.log" | tail -1
}

phase_prepare() {
  python3 scripts/latent-depth/gen.py "$WORK/data" --train 20000 --test 1000 --seed 1
  "$KT" init-model --data "$WORK/data/train.jsonl" --out "$WORK/init" --vocab-size 300 \
    --hidden "${HIDDEN:-64}" --layers "${LAYERS:-2}" --heads 4 --kv-heads 2 \
    --intermediate $(( 3 * ${HIDDEN:-64} )) --max-positions 256 --seed 0
}

phase_warmup() { [ -d "$WORK/runs/warmup/final" ] || train warmup cot "$WORK/init" "$WARMUP_STEPS"; }

phase_methods() {
  local m pids=()
  for m in "${METHODS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
    [ -d "$WORK/runs/$m/final" ] || train "$m" "$m" "$WORK/runs/warmup/final" "$STEPS" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}

phase_eval() {
  local r rows=("warmup cot") m
  for m in "${METHODS[@]}"; do
    case $m in nocot) rows+=("nocot nocot") ;; cot) rows+=("cot cot") ;; *) rows+=("$m latent" "$m cot") ;; esac
  done
  for r in "${rows[@]}"; do
    set -- $r
    "$KT" eval --model "$WORK/runs/$1/final" --data "$WORK/data/test.jsonl" --mode "$2" \
      --batch-size 64 --backend "$BACKEND" 2>&1 | grep '^kava-train eval' | sed "s/^/$1: /"
  done | tee "$WORK/results.txt"
}

phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(prepare warmup methods eval)
for p in "${phases[@]}"; do echo "### $p"; "phase_$p"; done
