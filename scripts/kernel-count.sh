#!/usr/bin/env bash
# Kernels launched per training step, with kava's fused kernels and with their tensor-op form
# (`kava-train bench-step --no-fused`), counted by CubeCL's kernel logger. On the wgpu backend
# (Mesa's lavapipe here) the count is what a GPU launches: it depends on the model's structure,
# not on the device; the logger slows every launch, so the seconds it prints are not timings.
#   KAVA_TRAIN=path/to/kava-train (built with --features wgpu or cuda)  MODEL=<HF dir>
#   DATA=<GSM8k train.jsonl>  scripts/kernel-count.sh [METHOD...]     (default: kava)
# BACKEND (wgpu), MB (4), LIMIT (64 examples), ARGS (extra bench-step arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
KT=$(realpath "${KAVA_TRAIN:?set KAVA_TRAIN}")
MODEL=$(realpath "${MODEL:?set MODEL}"); DATA=$(realpath "${DATA:?set DATA}")
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
for method in "${@:-kava}"; do
  for fused in "" "--no-fused"; do
    dir=$(mktemp -d)
    printf '[profiling.logger]\nlevel = "basic"\nfile = "%s/kernels.log"\nappend = true\n' "$dir" > "$dir/cubecl.toml"
    ( cd "$dir" && "$KT" bench-step --preset smollm2-135m-aug --method "$method" --backend "${BACKEND:-wgpu}" \
        --set model=\""$MODEL"\" --set data.train=\""$DATA"\" --set data.limit="${LIMIT:-64}" \
        --micro-batch "${MB:-4}" --steps 2 --warmup 1 --kernel-log "$dir/kernels.log" $fused ${ARGS:-} 2>/dev/null ) |
      sed "s/^/${fused:-fused}: /"
    rm -rf "$dir"
  done
done
