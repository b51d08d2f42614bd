#!/usr/bin/env bash
# Runs ON the GPU server (scripts/gpu/README.md): one KaVa training step on SmolLM2-135M (GSM8k aug
# traces, micro-batch 16, effective batch 32, LoRA r 128) in kava-train against PyTorch +
# transformers + PEFT (scripts/kava_torch_train.py) on exactly the same batches (same file, same
# seed, no validation exclusion: the "twin" of train.sh torch), STEPS steps each, timed as the
# median of the steps after the third. kava-train runs in each build and dtype asked for:
#   CASES="plain:f32 plain:bf16 fusion:f32 fusion:bf16"  (plain = .gpu1 bundle, fusion = .gpu3)
# Stages:
#   stash    copy the carried chunk(s) .gpu*/chunk-* and bundles to $KT
#   run      reassemble (model.gguf, data/, the peft wheel), convert the GGUF to an HF directory
#            for PyTorch, time every case -> $OUT/speed.txt, metrics, logs, peak memory
# The chunks: scripts/gpu/pack-speed.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
KT=${KT:-/root/kt}
OUT=${OUT:-/tmp/kava-out}
STEPS=${STEPS:-15}
MB=${MB:-16}
EB=${EB:-32}
mkdir -p "$KT" "$OUT"
stash() {
  for f in .gpu*/chunk-*; do [ -e "$f" ] && cp "$f" "$KT/"; done
  [ -f .gpu1/bundle.tar.xz ] && [ ! -x "$KT/bin-plain/kava-train" ] && mkdir -p "$KT/bin-plain" && xz -dc .gpu1/bundle.tar.xz | tar -C "$KT/bin-plain" -xf -
  [ -f .gpu3/bundle.tar.xz ] && [ ! -x "$KT/bin-fusion/kava-train" ] && mkdir -p "$KT/bin-fusion" && xz -dc .gpu3/bundle.tar.xz | tar -C "$KT/bin-fusion" -xf -
  ls -l "$KT" "$KT"/bin-* 2>/dev/null | grep -v "^total"
}
source scripts/gpu/lib.sh # peak_mem
summary() { # METRICS TAG
  python3 - "$1" "$2" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and "eval" not in l]
rest = rows[3:] or rows
print(f"{sys.argv[2]:<24} {len(rows):>3} steps | median {st.median(r['seconds'] for r in rest):.3f} s/step | "
      f"{sum(r['tokens'] for r in rest) / sum(r['seconds'] for r in rest):,.0f} tokens/s (steps 4+) | loss step 1 {rows[0]['loss']:.4f}, last {rows[-1]['loss']:.4f}")
PY
}
run() {
  stash > /dev/null
  if [ ! -f "$KT/model.gguf" ]; then cat "$KT"/chunk-* | tar -C "$KT" -xf - || { echo "chunks incomplete"; ls -l "$KT"; exit 1; }; fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
  local c build dtype bin dir pid peak
  for c in ${CASES:-plain:f32 plain:bf16 fusion:f32 fusion:bf16}; do
    IFS=: read -r build dtype <<< "$c"
    bin="$KT/bin-$build"; dir="$KT/twin-$build-$dtype"
    [ -x "$bin/kava-train" ] || { echo "$c: no $bin"; continue; }
    rm -rf "$dir"
    HOME="$KT/home-$build-$dtype" "$bin/kava-train" train --preset smollm2-135m-aug --method kava --backend cuda \
      --set model=\""$KT/model.gguf"\" --set data.train=\""$KT/data/train.jsonl"\" \
      --set optim.micro_batch="$MB" --set optim.effective_batch="$EB" --set optim.max_steps="$STEPS" \
      --set optim.dtype=\""$dtype"\" --set checkpoint.dir=\""$dir"\" --set checkpoint.every=0 > "$OUT/kava-$build-$dtype.log" 2>&1 &
    pid=$!; peak=$(peak_mem $pid); wait $pid || echo "$c: kava-train failed (kava-$build-$dtype.log)"
    cp "$dir/metrics.jsonl" "$OUT/kava-$build-$dtype.jsonl" 2>/dev/null && summary "$dir/metrics.jsonl" "kava-train $build $dtype" | sed "s/$/ | peak GPU memory $peak MiB (nvidia-smi)/" | tee -a "$OUT/speed.txt"
  done
  if [ "${TORCH:-1}" = 1 ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$KT"/*.whl
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
    [ -f "$KT/hf/config.json" ] || "$KT/bin-plain/kava" convert "$KT/model.gguf" "$KT/hf" --dtype f32 > "$OUT/convert.log" 2>&1
    for dtype in ${TORCH_DTYPES:-f32 bf16}; do
      python3 scripts/kava_torch_train.py --model "$KT/hf" --data "$KT/data/train.jsonl" --steps "$STEPS" \
        --micro-batch "$MB" --effective-batch "$EB" --dtype "$dtype" --device cuda --json "$OUT/torch_$dtype.json" \
        > "$OUT/torch_$dtype.log" 2>&1 || { echo "torch $dtype failed"; tail -5 "$OUT/torch_$dtype.log"; continue; }
      python3 - "$OUT/torch_$dtype.json" "pytorch+peft $dtype" <<'PY' | tee -a "$OUT/speed.txt"
import json, sys
d = json.load(open(sys.argv[1])); s = d["summary"]
print(f"{sys.argv[2]:<24} {len(d['steps']):>3} steps | median {s['median_step_s']:.3f} s/step | {s['tokens_per_s']:,.0f} tokens/s (steps 4+) | "
      f"loss step 1 {d['steps'][0]['loss']:.4f}, last {d['steps'][-1]['loss']:.4f} | peak {s['peak_mem_bytes'] / 2**20:,.0f} MiB allocated (torch)")
PY
    done
  fi
}
case ${1:?stage: stash or run} in
  stash) stash ;;
  run) run ;;
  *) echo "unknown stage $1" >&2; exit 2 ;;
esac
