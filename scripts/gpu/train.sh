#!/usr/bin/env bash
# Runs ON the GPU machine (issue #6's "done means"), in stages, one device call each:
#   stash         copy the carried chunk (.gpuN/chunk-*) to $KT (kept while the machine is warm)
#   train [ARGS]  reassemble, then `kava-train train --backend cuda` (KaVa on SmolLM2-135M, GSM8k
#                 aug traces) with GPU memory sampled by nvidia-smi; extra ARGS go to kava-train
#                 (e.g. --resume). Logs, metrics, plot and peak memory land in $OUT.
#   torch         the same step in PyTorch + PEFT (scripts/kava_torch_train.py) on the same model
#                 (converted by `kava convert`), plus `kava solve` / `kava-train eval` of the export.
set -euo pipefail
KT=${KT:-/root/kt}
OUT=${OUT:-/tmp/kava-out}
STEPS=${STEPS:-300}
MB=${MB:-16}
EB=${EB:-32}
mkdir -p "$KT" "$OUT"
stage=${1:?stage}; shift || true
unpack() {
  if [ ! -x "$KT/bin/kava-train" ]; then
    cat "$KT"/chunk-* | tar -C "$KT" -xf -
    mkdir -p "$KT/bin" && xz -dc "$KT/bundle.tar.xz" | tar -C "$KT/bin" -xf -
  fi
}
source "$(dirname "$0")/lib.sh" # peak_mem
case $stage in
  stash)
    cp .gpu*/chunk-* "$KT/"
    ls -l "$KT"
    ;;
  train)
    unpack
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
    base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    timeout "${TRAIN_TIMEOUT:-500}" "$KT/bin/kava-train" train --preset smollm2-135m-aug --method kava --backend cuda \
      --set model=\""$KT/model.gguf"\" --set data.train=\""$KT/data/train.jsonl"\" \
      --set data.valid=\""$KT/data/valid.txt"\" --set optim.micro_batch="$MB" \
      --set optim.effective_batch="$EB" --set optim.max_steps="$STEPS" --set checkpoint.dir=\""$KT/run"\" \
      --set checkpoint.every=25 --set checkpoint.eval_limit=200 "$@" > "$OUT/train.log" 2>&1 &
    pid=$!
    peak=$(peak_mem $pid)
    wait $pid && rc=0 || rc=$?
    echo "peak GPU memory used: $peak MiB (before the run: $base MiB)" | tee "$OUT/peak_mem.txt"
    cp "$KT/run/metrics.jsonl" "$OUT/" 2>/dev/null || true
    "$KT/bin/kava-train" plot --metrics "$KT/run/metrics.jsonl" --out "$OUT/curves.svg" || true
    tail -25 "$OUT/train.log"
    exit $rc
    ;;
  torch)
    unpack
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$KT"/*.whl
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
    [ -f "$KT/hf/config.json" ] || "$KT/bin/kava" convert "$KT/model.gguf" "$KT/hf" --dtype f32 > "$OUT/convert.log" 2>&1
    # The timing twin: kava-train on exactly the examples the PyTorch run sees (same file, no
    # validation exclusion, same seed, so the same batches), same step count.
    "$KT/bin/kava-train" train --preset smollm2-135m-aug --method kava --backend cuda \
      --set model=\""$KT/model.gguf"\" --set data.train=\""$KT/data/train.jsonl"\" \
      --set optim.micro_batch="$MB" --set optim.effective_batch="$EB" --set optim.max_steps="${TORCH_STEPS:-20}" \
      --set checkpoint.dir=\""$KT/twin"\" --set checkpoint.every=0 > "$OUT/twin.log" 2>&1 || echo "twin failed"
    cp "$KT/twin/metrics.jsonl" "$OUT/twin_metrics.jsonl" 2>/dev/null || true
    tail -2 "$OUT/twin.log"
    for dtype in f32 bf16; do
      python3 scripts/kava_torch_train.py --model "$KT/hf" --data "$KT/data/train.jsonl" --steps "${TORCH_STEPS:-20}" \
        --micro-batch "$MB" --effective-batch "$EB" --dtype $dtype --device cuda --json "$OUT/torch_$dtype.json" \
        > "$OUT/torch_$dtype.log" 2>&1 || echo "torch $dtype failed (see torch_$dtype.log)"
      tail -4 "$OUT/torch_$dtype.log"
    done
    # A run stopped before its last step has no final/ yet: export its latest checkpoint.
    [ -d "$KT/run/final" ] || "$KT/bin/kava-train" export --checkpoint "$KT/run" --out "$KT/run/final" 2>&1 | tee "$OUT/export.txt"
    if [ -d "$KT/run/final" ]; then
      "$KT/bin/kava" solve --model "$KT/run/final" --backend cuda --mode latent \
        --question "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?" \
        2>&1 | tee "$OUT/solve_exported.txt"
      "$KT/bin/kava-train" eval --model "$KT/run/final" --data "$KT/data/test.jsonl" --mode latent,cot --limit ${EVAL_LIMIT:-100} \
        --max-cot-tokens 128 --backend cuda 2>&1 | tee "$OUT/eval_exported.txt"
    fi
    ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
