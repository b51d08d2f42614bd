#!/usr/bin/env bash
# Runs ON the GPU server (scripts/gpu/README.md), in stages:
#   stash         copy the transferred chunk (.gpuN/chunk-*) to $KT
#   train [ARGS]  reassemble, then `kava-train train --backend cuda` (KaVa on SmolLM2-135M, GSM8k
#                 aug traces) with GPU memory sampled by nvidia-smi; extra ARGS go to kava-train
#                 (e.g. --resume). Logs, metrics, plot and peak memory land in $OUT.
#   start [ARGS]  train, then check, in a detached process (setsid) that keeps running after this
#                 command returns, writing to $KT/out; a GPU that other work
#                 shares is fine: the peak memory is also taken for the run's own process
#   wait [S]      waits up to S seconds (default 540) for that job, then prints its progress
#   collect       copies what `start` wrote to $OUT (one archive + the peak memory and the eval)
#   check         exports the run (its latest checkpoint if it stopped early) and checks the
#                 export: `kava solve --mode latent` and `kava-train eval` (latent and CoT)
#   torch         the same step in PyTorch + PEFT (scripts/kava_torch_train.py) on the same model
#                 (converted by `kava convert`), then check.
# The transferred pieces: scripts/gpu/pack-train.sh (bundle inside the chunks) or
# FUSION=0 scripts/gpu/pack-speed.sh (bundle as .gpu1/bundle.tar.xz beside chunk-01).
# Environment: STEPS (scheduled steps), MB, EB (micro and effective batch), TRAIN_TIMEOUT or
# DEADLINE (epoch seconds) to stop training in time, EVAL_LIMIT.
set -euo pipefail
KT=${KT:-/root/kt}
OUT=${OUT:-/tmp/kava-out}
STEPS=${STEPS:-300}
MB=${MB:-16}
EB=${EB:-32}
mkdir -p "$KT" "$OUT"
stage=${1:?stage}; shift || true
unpack() {
  [ -f "$KT/model.gguf" ] || cat "$KT"/chunk-* | tar -C "$KT" -xf -
  if [ ! -x "$KT/bin/kava-train" ]; then
    local b=$KT/bundle.tar.xz
    [ -f "$b" ] || b=.gpu1/bundle.tar.xz
    mkdir -p "$KT/bin" && xz -dc "$b" | tar -C "$KT/bin" -xf -
  fi
}
# Seconds training may run: TRAIN_TIMEOUT (default 500), cut to what is left before DEADLINE.
train_time() {
  local t=${TRAIN_TIMEOUT:-500}
  if [ -n "${DEADLINE:-}" ]; then
    local left=$(( DEADLINE - $(date +%s) ))
    [ "$left" -gt 1 ] || left=1
    [ "$t" -gt "$left" ] && t=$left
  fi
  echo "$t"
}
check() {
  # A run stopped before its last step has no final/ yet: export its latest checkpoint.
  [ -d "$KT/run/final" ] || "$KT/bin/kava-train" export --checkpoint "$KT/run" --out "$KT/run/final" 2>&1 | tee "$OUT/export.txt"
  if [ -d "$KT/run/final" ]; then
    "$KT/bin/kava" solve --model "$KT/run/final" --backend cuda --mode latent \
      --question "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?" \
      2>&1 | tee "$OUT/solve_exported.txt"
    "$KT/bin/kava-train" eval --model "$KT/run/final" --data "$KT/data/test.jsonl" --mode latent,cot --limit "${EVAL_LIMIT:-100}" \
      --max-cot-tokens 128 --backend cuda 2>&1 | tee "$OUT/eval_exported.txt"
  fi
}
source "$(dirname "$0")/lib.sh" # peak_mem_app
case $stage in
  stash)
    cp .gpu*/chunk-* "$KT/"
    [ -f .gpu1/bundle.tar.xz ] && [ ! -x "$KT/bin/kava-train" ] && mkdir -p "$KT/bin" && xz -dc .gpu1/bundle.tar.xz | tar -C "$KT/bin" -xf -
    ls -l "$KT"
    ;;
  start)
    mkdir -p "$KT/out"
    # The background job runs from a copy of the scripts: the next call re-sends the working tree.
    rm -rf "$KT/snap" && mkdir -p "$KT/snap" && cp -r scripts "$KT/snap/"
    OUT=$KT/out setsid nohup bash -c '"$0" train "$@"; "$0" check' "$KT/snap/scripts/gpu/train.sh" "$@" \
      > "$KT/out/stage.log" 2>&1 < /dev/null &
    echo $! > "$KT/out/pid"
    echo "train.sh: training started in the background (pid $!), log $KT/out/stage.log"
    ;;
  wait)
    # Waits up to $1 seconds (default 540) for the job `start` began; prints its progress.
    # (Not `pgrep -f` on its command line: that would also match the shell that runs this command.)
    end=$(( $(date +%s) + ${1:-540} ))
    while kill -0 "$(cat "$KT/out/pid")" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 3; done
    kill -0 "$(cat "$KT/out/pid")" 2>/dev/null && echo "train.sh: still running" || echo "train.sh: done"
    tail -3 "$KT/out/train.log"
    ;;
  collect)
    tar -C "$KT/out" -czf "$OUT/smollm2-run.tgz" . && cp "$KT/out/peak_mem.txt" "$KT/out/eval_exported.txt" "$OUT"/ 2>/dev/null; ls -l "$OUT"
    ;;
  check)
    unpack
    check
    ;;
  train)
    unpack
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
    base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    timeout "$(train_time)" "$KT/bin/kava-train" train --preset smollm2-135m-aug --method kava --backend cuda \
      --set model=\""$KT/model.gguf"\" --set data.train=\""$KT/data/train.jsonl"\" \
      --set data.valid=\""$KT/data/valid.txt"\" --set optim.micro_batch="$MB" \
      --set optim.effective_batch="$EB" --set optim.max_steps="$STEPS" --set checkpoint.dir=\""$KT/run"\" \
      --set checkpoint.every=25 --set checkpoint.eval_limit=200 "$@" > "$OUT/train.log" 2>&1 &
    pid=$!
    read -r peak app <<< "$(peak_mem_app $pid)"
    wait $pid && rc=0 || rc=$?
    echo "peak GPU memory used: $peak MiB on the whole GPU (before the run: $base MiB); by the run's process: $app MiB" | tee "$OUT/peak_mem.txt"
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
    check
    ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
