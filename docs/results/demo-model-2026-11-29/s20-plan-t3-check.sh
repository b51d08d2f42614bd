#!/usr/bin/env bash
# s20-plan-t3.sh checked on this CPU (session 19): the plan plus one line that shrinks only COMMON, through
# session.sh begin + finish with the CPU release kava-train. Usage (repository root):
#   BIN=<release dir> docs/results/demo-model-2026-11-29/s20-plan-t3-check.sh > docs/results/demo-model-2026-11-29/s20-plan-t3-check.txt
set -euo pipefail
BIN=${BIN:-target/release}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/kt" "$tmp/out"; cp "$BIN/kava-train" "$tmp/kt/"
{ cat docs/results/demo-model-2026-11-29/s20-plan-t3.sh; echo "COMMON='TRAIN_N=300 LR=1e-3 STEPS=2 EXTEND_STEPS=2 WARMUP_STEPS=2 WARMUP_MB=4 MB=4 EVAL_N=4 JOBS=1 METHODS=\"\"'"; } > "$tmp/plan.sh"
export ROOT=$tmp KT_BIN=$tmp/kt BACKEND=cpu OUT=$tmp/out
SLEEP=5 scripts/demo-model/session.sh begin "$tmp/plan.sh" > /dev/null
echo "## session.sh finish"
SLEEP=5 scripts/demo-model/session.sh finish 2>&1 | grep '^kava-train eval |\|^gpu.sh: phases\|^session.sh: salvaged' | sed "s|$tmp|ROOT|g" | cut -c1-200
echo "## what came back"; (cd "$tmp/out" && find . -type f | sort)
