#!/usr/bin/env bash
# Device memory and time of a training step as burn's allocator reports them (kava-train's
# `mem_in_use` / `mem_reserved` metrics), per method, on the demo recipe: STEPS steps of MB
# examples on BACKEND (default wgpu: here Mesa's lavapipe, whose allocator is burn's own pools,
# so the figures compare builds and methods, not GPUs). PRESET=name trains that preset (e.g.
# smollm2-135m-aug with MODEL=…gguf and DATA=gsm8k train.jsonl) instead of the demo recipe.
#   KAVA_TRAIN=…/kava-train (with the backend's feature) MODEL=<HF dir or GGUF> DATA=<train.jsonl> \
#   scripts/step-memory.sh [METHOD...]      (default: cot kava; STEPS=3, MB=16; ARGS adds
#   kava-train arguments, e.g. ARGS='--set latent.separate_answer_pass=true')
set -euo pipefail
cd "$(dirname "$0")/.."
KT=$(realpath "${KAVA_TRAIN:-target/debug/kava-train}")
: "${MODEL:?set MODEL}" "${DATA:?set DATA}"
STEPS=${STEPS:-3}
MB=${MB:-16}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
for m in ${@:-cot kava}; do
  dir=$(mktemp -d)
  recipe=(--config scripts/demo-model/demo.toml)
  [ -n "${PRESET:-}" ] && recipe=(--preset "$PRESET")
  "$KT" train "${recipe[@]}" --method "$m" --backend "${BACKEND:-wgpu}" \
    --set model=\""$MODEL"\" --set data.train=\""$DATA"\" --set optim.max_steps="$STEPS" \
    --set optim.micro_batch="$MB" --set optim.effective_batch="$MB" \
    --set checkpoint.dir=\""$dir/run"\" --set checkpoint.every=0 ${ARGS:-} > "$dir/train.log" 2>&1 || { tail -5 "$dir/train.log"; exit 1; }
  python3 - "$dir/run/metrics.jsonl" "$m" "$MB" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and "eval" not in l]
gib = lambda b: b / 2**30
use = max((r.get("mem_in_use") or 0) for r in rows)
res = max((r.get("mem_reserved") or 0) for r in rows)
print(f"{sys.argv[2]:<6} micro-batch {sys.argv[3]}: peak in use {gib(use):.3f} GiB, reserved {gib(res):.3f} GiB | "
      f"median {st.median(r['seconds'] for r in rows[1:] or rows):.2f} s/step (steps 2+) | loss step 1 {rows[0]['loss']:.4f}")
PY
  rm -rf "$dir"
done
