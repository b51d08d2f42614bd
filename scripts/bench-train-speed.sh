#!/usr/bin/env bash
# The training step's speed, kava-train against its PyTorch twin (scripts/kava_torch_train.py:
# transformers + PEFT, the same method, the same batches, tokens counted the same way), on random
# weights of each model's real shape, one case after another on one GPU.
#
#   KAVA_TRAIN=path/to/kava-train  DATA=gsm8k/train.jsonl  OUT=results-dir \
#   MODELS="smollm2-135m=DIR qwen2.5-0.5b=DIR"  scripts/bench-train-speed.sh CASE...
#
# MODELS maps a name to a directory holding the model's config.json and tokenizer files (e.g.
# `kava convert model.gguf DIR`; its weights are not read): random f32 weights of that shape are
# made once under WORK (default /tmp/kava-bench) by scripts/random_hf_model.py.
# CASE is impl:model:method:dtype:micro_batch — impl `kava`, `kava-unfused` (kava-train with
# --no-fused: the tensor-op form of its fused kernels) or `torch`; method kava, codi or cot;
# dtype f32 or bf16, and for torch also tf32 (f32 with TF32 matmuls). Effective batch = micro-batch.
# STEPS timed steps after WARMUP (defaults 5 and 3); CASE_TIMEOUT seconds per case (default 300).
# KERNELS=1 adds, for kava cases, a second short run under CubeCL's kernel logger that counts
# the kernels launched per step (the logger slows launches, so it is not timed) and writes the
# device time per step by kernel kind to OUT/<case>.kernels.txt (scripts/gpu/profile-summary.py).
# Output: OUT/train-speed.jsonl, one object per case (impl, model, method, micro_batch, dtype,
# tokens_per_s, s_per_step, peak_mem_gib, device; `error` when the case failed, e.g. out of
# memory) and OUT/<case>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${KAVA_TRAIN:?set KAVA_TRAIN}" "${DATA:?set DATA}" "${OUT:?set OUT}" "${MODELS:?set MODELS}"
WORK=${WORK:-/tmp/kava-bench}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-3}
CASE_TIMEOUT=${CASE_TIMEOUT:-300}
mkdir -p "$OUT" "$WORK"
KAVA_TRAIN=$(realpath "$KAVA_TRAIN"); DATA=$(realpath "$DATA"); OUT=$(realpath "$OUT")
export PYTHONUNBUFFERED=1
DEVICE=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
DEVICE=${DEVICE:-unknown}
# Peak dense tensor-core TFLOP/s of an H100 SXM for the MFU (bf16; f32 GEMMs as TF32).
case $DEVICE in *H100*|*H200*) PEAK_BF16=989; PEAK_TF32=495 ;; *) PEAK_BF16=; PEAK_TF32= ;; esac

model_dir() { # NAME -> random-weight HF directory (made once)
  local name=$1 src="" pair
  for pair in $MODELS; do [ "${pair%%=*}" = "$name" ] && src=${pair#*=}; done
  [ -n "$src" ] || { echo "no model $name in MODELS" >&2; return 1; }
  if [ ! -f "$WORK/$name/model.safetensors" ]; then
    python3 scripts/random_hf_model.py "$src" "$WORK/$name" >&2 || return 1
  fi
  echo "$WORK/$name"
}

preset() { # model name -> kava-train preset
  case $1 in qwen*) echo qwen2.5-coder-0.5b-aug ;; *) echo smollm2-135m-aug ;; esac
}

row_error() { # CASE-FIELDS... ERROR
  python3 - "$@" <<'PY' >> "$OUT/train-speed.jsonl"
import json, sys
impl, model, method, dtype, mb, device, err = sys.argv[1:]
print(json.dumps(dict(impl=impl, model=model, method=method, dtype=dtype, micro_batch=int(mb),
                      tokens_per_s=None, s_per_step=None, peak_mem_gib=None, device=device, error=err)))
PY
}

run_kava-unfused() { NO_FUSED=--no-fused run_kava "$@"; }

run_kava() { # model method dtype mb log
  local model=$1 method=$2 dtype=$3 mb=$4 log=$5 dir peak
  dir=$(model_dir "$model") || return 1
  peak=$PEAK_TF32; [ "$dtype" = bf16 ] && peak=$PEAK_BF16
  timeout "$CASE_TIMEOUT" "$KAVA_TRAIN" bench-step --preset "$(preset "$model")" --method "$method" --backend cuda \
    --set model=\""$dir"\" --set data.train=\""$DATA"\" --micro-batch "$mb" --dtype "$dtype" \
    --steps "$STEPS" --warmup "$WARMUP" ${peak:+--peak-tflops $peak} ${NO_FUSED:-} \
    --json "$OUT/train-speed.jsonl" --tag model="$model" --tag device="$DEVICE" > "$log" 2>&1 || return 1
  if [ "${KERNELS:-0}" = 1 ]; then
    local k; k=$(mktemp -d)
    printf '[profiling.logger]\nlevel = "basic"\nfile = "%s/kernels.log"\nappend = true\n' "$k" > "$k/cubecl.toml"
    ( cd "$k" && timeout "$CASE_TIMEOUT" "$KAVA_TRAIN" bench-step --preset "$(preset "$model")" --method "$method" --backend cuda \
      --set model=\""$dir"\" --set data.train=\""$DATA"\" --micro-batch "$mb" --dtype "$dtype" \
      --steps 2 --warmup 1 ${NO_FUSED:-} --kernel-log "$k/kernels.log" --json "$k/k.jsonl" ) >> "$log" 2>&1
    python3 - "$k/k.jsonl" "$OUT/train-speed.jsonl" <<'PY' || true
import json, sys
k = json.loads(open(sys.argv[1]).read().splitlines()[-1])["kernels_per_step"]
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
rows[-1]["kernels_per_step"] = k
open(sys.argv[2], "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
    # Device time by kernel kind over the profiled steps (the first one left out).
    gzip -c "$k/kernels.log" > "$k/kernels.log.gz"
    python3 scripts/gpu/profile-summary.py --steps 3 --skip 1 --top 15 "$k/kernels.log.gz" > "${log%.log}.kernels.txt" 2>&1 || true
    rm -rf "$k"
  fi
}

run_torch() { # model method dtype mb log
  local model=$1 method=$2 dtype=$3 mb=$4 log=$5 dir extra=() tdtype=$3
  dir=$(model_dir "$model") || return 1
  [ "$dtype" = tf32 ] && { tdtype=f32; extra+=(--tf32); }
  case $method in codi) extra+=(--m 6 --t 6 --alpha-kv 0) ;; esac
  case $model in qwen*) extra+=(--lr 5e-4 --weight-decay 0.01) ;; esac
  timeout "$CASE_TIMEOUT" python3 scripts/kava_torch_train.py --model "$dir" --data "$DATA" --method "$method" \
    --steps $((STEPS + WARMUP)) --warmup-steps "$WARMUP" --micro-batch "$mb" --effective-batch "$mb" \
    --dtype "$tdtype" "${extra[@]}" --device cuda --json "$log.json" > "$log" 2>&1 || return 1
  python3 - "$log.json" "$model" "$dtype" "$DEVICE" "$PEAK_BF16" "$PEAK_TF32" <<'PY' >> "$OUT/train-speed.jsonl"
import json, sys
d = json.load(open(sys.argv[1])); s = d["summary"]; c = d["config"]
print(json.dumps(dict(impl="torch", model=sys.argv[2], method=d["method"], micro_batch=c["micro_batch"],
    dtype=sys.argv[3], tokens_per_s=s["tokens_per_s"], s_per_step=s["median_step_s"],
    peak_mem_gib=(s["peak_mem_bytes"] or 0) / 2**30, device=sys.argv[4], lora_impl=d["lora_impl"],
    torch=d["torch"], transformers=d["transformers"], first_loss=d["steps"][int(c["warmup_steps"])]["loss"],
    last_loss=d["steps"][-1]["loss"])))
PY
}

for c in "$@"; do
  IFS=: read -r impl model method dtype mb <<< "$c"
  log="$OUT/${impl}-${model}-${method}-${dtype}-mb${mb}.log"
  echo "== $c ($(date +%T))"
  if "run_$impl" "$model" "$method" "$dtype" "$mb" "$log"; then
    tail -1 "$OUT/train-speed.jsonl" | python3 -c 'import json, sys
r = json.load(sys.stdin)
print("   %.0f tokens/s, %.3f s/step, peak %.1f GiB" % (r["tokens_per_s"], r["s_per_step"], r["peak_mem_gib"] or 0))'
  else
    err=$(grep -m1 -iE "out of memory|OutOfMemory|error" "$log" | cut -c1-300)
    echo "   failed: ${err:-see $log}"
    row_error "$impl" "$model" "$method" "$dtype" "$mb" "$DEVICE" "${err:-failed (exit), see log}"
  fi
done
