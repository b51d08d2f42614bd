#!/usr/bin/env bash
# The CPU backend's speed on this machine, for the embedded demo model: `kava-train eval` in latent
# and CoT mode on the first N held-out synthetic problems (batch 64), then a few `kava` training
# steps at the demo recipe's micro-batch 64 from the same model (the median s/step of steps 2..);
# with KAVA (a `kava` binary) also `kava demo --backend cpu --count 16` (one question at a time).
#   KAVA_TRAIN=target/release/kava-train [KAVA=target/release/kava] scripts/bench-cpu.sh [N (default 200)] [STEPS (default 4)]
# Prints one line per measurement; the host's core count and the kava-train build are named.
set -euo pipefail
cd "$(dirname "$0")/.."
KT=${KAVA_TRAIN:-target/release/kava-train}
n=${1:-200} steps=${2:-4}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# The embedded model's data (train.sh prepare): its test problems are held out from that training split.
"$KT" synth --out "$tmp/data" --train 200000 --test 1000 --seed 1 > /dev/null
head -n "$n" "$tmp/data/test.txt" > "$tmp/test.txt"
echo "bench-cpu: $(nproc) cores, $(basename "$KT") $(stat -c %y "$KT" | cut -d. -f1)"
for mode in latent cot; do
  start=$(date +%s.%N)
  line=$("$KT" eval --model kava/models/demo --data "$tmp/test.txt" --mode "$mode" --limit "$n" --batch-size 64 --backend cpu 2>&1 | grep '^kava-train eval |')
  end=$(date +%s.%N)
  echo "eval $mode: $(echo "$line" | sed 's/.*| accuracy \([^|]*\) |.*/accuracy \1/') | $(python3 -c "print(round($end - $start, 2))") s for $n problems (wall, load included)"
done
"$KT" train --config scripts/demo-model/demo.toml --method kava --backend cpu --set model=\"kava/models/demo\" \
  --set data.train=\""$tmp/data/train.jsonl"\" --set optim.max_steps="$steps" --set optim.micro_batch=64 \
  --set optim.effective_batch=64 --set checkpoint.dir=\""$tmp/run"\" --set checkpoint.every=0 > "$tmp/train.log" 2>&1
python3 - "$tmp/run/metrics.jsonl" <<'PY'
import json, statistics, sys
s = [json.loads(l)["seconds"] for l in open(sys.argv[1])][1:]
print(f"train kava (micro-batch 64): median {statistics.median(s):.2f} s/step over steps 2-{len(s) + 1}")
PY
if [ -n "${KAVA:-}" ]; then
  echo "demo (16 problems, one at a time): $("$KAVA" demo --backend cpu --count 16 2>&1 | grep '^speed-up')"
fi
