#!/usr/bin/env bash
# Kernels launched per training step, counted by CubeCL's profiler on the wgpu backend (here:
# Mesa's lavapipe; the count does not depend on the GPU, the time per kernel does — see
# scripts/gpu/profile-step.sh for that). A KaVa step is launch-bound on the GPU
# (its profile: scripts/gpu/profile-step.sh), so fewer launches is the proxy a machine without a
# GPU can measure.
#   KAVA_TRAIN=target/debug/kava-train (built with --features kava-train/wgpu) \
#   MODEL=<HF dir, e.g. scripts/demo-model/train.sh prepare's init> DATA=<train.jsonl> \
#   scripts/kernel-count.sh [METHOD...]      (default: cot kava; STEPS=4, MB=4)
# BY_NAME=1 also lists the launches per step by kernel kind (the most frequent 15); ARGS adds
# kava-train arguments (e.g. ARGS='--set lora.full_finetune=false' for LoRA adapters).
set -euo pipefail
cd "$(dirname "$0")/.."
KT=$(realpath "${KAVA_TRAIN:-target/debug/kava-train}")
: "${MODEL:?set MODEL}" "${DATA:?set DATA}"
STEPS=${STEPS:-4}
MB=${MB:-4}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
for method in "${@:-cot kava}"; do
  for m in $method; do
    dir=$(mktemp -d)
    printf '[profiling.logger]\nlevel = "basic"\nfile = "%s/profile.log"\nappend = true\n' "$dir" > "$dir/cubecl.toml"
    # One run of STEPS steps and one of 2·STEPS: the difference is STEPS steps of launches
    # (start-up and the final export cancel out).
    for n in "$STEPS" $((2 * STEPS)); do
      rm -f "$dir/profile.log"
      ( cd "$dir" && "$KT" train --config "$OLDPWD/scripts/demo-model/demo.toml" --method "$m" --backend wgpu \
          --set model=\""$MODEL"\" --set data.train=\""$DATA"\" --set optim.max_steps="$n" \
          --set optim.micro_batch="$MB" --set optim.effective_batch="$MB" \
          --set checkpoint.dir=\""$dir/run$n"\" --set checkpoint.every=0 ${ARGS:-} > "$dir/train$n.log" 2>&1 )
      grep -c '^| ' "$dir/profile.log" > "$dir/count$n"
      cp "$dir/profile.log" "$dir/profile$n.log"
    done
    echo "$m: $(( ($(cat "$dir/count$((2 * STEPS))") - $(cat "$dir/count$STEPS")) / STEPS )) kernels per step (micro-batch $MB, wgpu)"
    if [ "${BY_NAME:-0}" = 1 ]; then
      python3 - "$dir/profile$STEPS.log" "$dir/profile$((2 * STEPS)).log" "$STEPS" <<'PY'
import collections, re, sys
def kinds(path):  # "| time | Name_hash | args" -> "Name args" (hashes dropped)
    c = collections.Counter()
    for line in open(path):
        if line.startswith("| "):
            parts = [p.strip() for p in line.strip().strip("|").split("|")]
            c[re.sub(r"_[0-9a-f]{8}\b", "", " ".join(parts[1:]))[:60]] += 1
    return c
a, b, n = kinds(sys.argv[1]), kinds(sys.argv[2]), int(sys.argv[3])
for k, v in sorted(((k, (b[k] - a.get(k, 0)) / n) for k in b), key=lambda kv: -kv[1])[:15]:
    print(f"  {v:7.0f}  {k}")
PY
    fi
    rm -rf "$dir"
  done
done
