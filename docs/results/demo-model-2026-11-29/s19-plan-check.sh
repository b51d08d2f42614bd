#!/usr/bin/env bash
# s19-plan.sh checked on this CPU before the device session (session 18): the plan file plus one
# line that shrinks only COMMON (TRAIN_N=300, 2 steps per stage and warm-up, MB=4, EVAL_N=4), run
# through session.sh begin + finish with the CPU release binaries; then the packaged 7 x 320 model's
# size and one latent-mode solve on the CPU and on wgpu, compared.
# Usage (repository root): docs/results/demo-model-2026-11-29/s19-plan-check.sh > docs/results/demo-model-2026-11-29/s19-plan-check.txt
#   BIN: the release binaries (kava-train, kava; default target/release), built with --features kava/wgpu.
#   PLAN_FILE: the plan in this folder (default s19-plan.sh; s19-plan-h200.sh -> s19-plan-h200-check.txt,
#   the one-GPU plan session 19 ran: the same wide4 lines, GPU 0's pipeline alone; s20-plan-t3.sh ->
#   s20-plan-t3-check.txt, the T = 3 diagnostic alone, which packages nothing, so no model checks).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-target/release}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/kt" "$tmp/out"
cp "$BIN/kava-train" "$BIN/kava" "$tmp/kt/"
{ cat "$here/${PLAN_FILE:-s19-plan.sh}"; echo "COMMON='TRAIN_N=300 LR=1e-3 STEPS=2 EXTEND_STEPS=2 WARMUP_STEPS=2 WARMUP_MB=4 MB=4 EVAL_N=4 JOBS=1 METHODS=\"\"'"; } > "$tmp/plan.sh"
export ROOT=$tmp KT_BIN=$tmp/kt BACKEND=cpu OUT=$tmp/out
SLEEP=5 scripts/demo-model/session.sh begin "$tmp/plan.sh" > /dev/null
echo "## session.sh finish"
SLEEP=5 scripts/demo-model/session.sh finish 2>&1 | grep '^kava-train eval |\|^gpu.sh: phases\|^session.sh: salvaged' | sed "s|$tmp|ROOT|g" | cut -c1-200
echo "## what came back"
(cd "$tmp/out" && find . -type f | sort)
# The model checks, for the pipeline that packaged (wide4; a plan without a package stops here).
packaged=$(cd "$tmp/out" && ls -d -- */demo-model.tar.xz.part-aa 2>/dev/null | head -1) || true
[ -n "$packaged" ] || exit 0
model=$tmp/${packaged%%/*}-snap/kava/models/demo
echo "## the packaged model (f16): $(jq -r '"\(.num_hidden_layers) layers x \(.hidden_size), \(.num_attention_heads) / \(.num_key_value_heads) heads, MLP \(.intermediate_size)"' "$model/config.json")"
echo "files: $(find "$model" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }') bytes"
q="Tom has 3 apples and buys 4 more. How many apples does he have?"
for b in cpu wgpu; do
  "$tmp/kt/kava" solve --model "$model" --backend "$b" --mode latent --question "$q" --show-latents 3 2>&1 | head -12 > "$tmp/solve-$b.txt"
done
if cmp -s "$tmp/solve-cpu.txt" "$tmp/solve-wgpu.txt"; then
  echo "## kava solve --mode latent --show-latents 3: the same answer and latents on cpu and wgpu"
else
  echo "## kava solve --mode latent --show-latents 3: cpu and wgpu DIFFER"; diff "$tmp/solve-cpu.txt" "$tmp/solve-wgpu.txt" || true
fi
head -4 "$tmp/solve-cpu.txt"
