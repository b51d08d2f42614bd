#!/usr/bin/env bash
# A small probe on any machine (CPU is enough): does training with more Jacobi
# iterations let the latents reach deeper problems? Continues the embedded model
# (kava/models/demo) with `kava` for STEPS steps at T = 3 (the control: more training alone) and
# at T = 6, then evaluates both in latent mode on the held-out problems with the accuracy by
# step count.
#   KAVA_TRAIN=target/release/kava-train WORK=<dir of train.sh prepare> BACKEND=cpu \
#     scripts/demo-model/depth-probe.sh            (STEPS=200, MB=16, LR=3e-4, EVAL_N=500)
set -euo pipefail
cd "$(dirname "$0")/../.."
KT=${KAVA_TRAIN:-target/release/kava-train}
WORK=${WORK:-demo-work}
STEPS=${STEPS:-200}
MB=${MB:-16}
LR=${LR:-3e-4}
EVAL_N=${EVAL_N:-500}
mkdir -p "$WORK/logs"
for t in 3 6; do
  "$KT" train --config scripts/demo-model/demo.toml --method kava --backend "${BACKEND:-cpu}" \
    --set model=\"kava/models/demo\" --set data.train=\""$WORK/data/train.jsonl"\" \
    --set latent.num_iterations="$t" --set optim.max_steps="$STEPS" --set optim.lr="$LR" \
    --set optim.micro_batch="$MB" --set optim.effective_batch="$MB" \
    --set checkpoint.dir=\""$WORK/runs/depth-t$t"\" --set checkpoint.every=0 > "$WORK/logs/depth-t$t.log" 2>&1 &
done
wait
for t in 3 6; do
  tail -1 "$WORK/logs/depth-t$t.log"
  "$KT" eval --model "$WORK/runs/depth-t$t/final" --data "$WORK/data/test.txt" --mode latent --limit "$EVAL_N" \
    --batch-size 32 --backend "${BACKEND:-cpu}" 2>&1 | grep '^kava-train eval' | sed "s/^/T = $t: /"
done
