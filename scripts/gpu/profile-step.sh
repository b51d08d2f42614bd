#!/usr/bin/env bash
# Runs ON the GPU server (scripts/gpu/README.md): where does a kava-train step spend its time?
# Trains the demo recipe's scratch model (scripts/demo-model/train.sh prepare) for a few steps
# per case, one process at a time, and writes under $OUT:
#   steps.txt          s/step and tokens/s of each case (median of its steps after the first 3)
#   profile-*.log.gz   CubeCL's kernel profile (cubecl.toml, level "basic": every kernel's device
#                      time, summed per kernel name at each sync, i.e. once per step)
# Cases: CASES="kava:64 kava:256:bf16 cot:64:pad1 …" (method:micro-batch[:option…], options
# bf16 = optim.dtype "bf16", pad1 = data.pad_multiple 1, i.e. no bucketing, sep = the student's
# last iteration and answer as two passes, mergeinit = latent.merge_init_pass); PROFILE="kava:64"
# profiles those. Each timed case runs in a fresh directory with its own HOME (no kernel or
# autotune cache carried over from an earlier case). Binaries: .gpu1/bundle.tar.xz (scripts/gpu/pack.sh),
# or BUNDLE=path unpacked into BIN; TAG prefixes the case names (e.g. TAG=fusion-).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/kava-out}
BIN=${BIN:-/root/kt/bin}
WORK=${WORK:-/root/demo-work}
STEPS=${STEPS:-12}
mkdir -p "$BIN" "$OUT"
[ -x "$BIN/kava-train" ] || xz -dc "${BUNDLE:-.gpu1/bundle.tar.xz}" | tar -C "$BIN" -xf - || exit 1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU (BACKEND=${BACKEND:-cuda})"; } | tee "$OUT/gpu.txt"
[ -d "$WORK/init" ] || KAVA_TRAIN="$BIN/kava-train" KAVA="$BIN/kava" WORK="$WORK" BACKEND="${BACKEND:-cuda}" \
  scripts/demo-model/train.sh prepare > "$OUT/prepare.log" 2>&1 || { cat "$OUT/prepare.log"; exit 1; }
one() { # CASE [profile]
  local spec=$1 method mb tag dir opts=() o
  IFS=: read -r method mb rest <<< "$spec"
  tag="${TAG:-}${spec//:/-}"
  [ "${2:-}" = profile ] && tag="$tag-profiled"
  for o in ${rest//:/ }; do
    case $o in
      bf16) opts+=(--set 'optim.dtype="bf16"') ;;
      pad1) opts+=(--set data.pad_multiple=1) ;;
      sep) opts+=(--set latent.separate_answer_pass=true) ;;
      mergeinit) opts+=(--set latent.merge_init_pass=true) ;;
      *) echo "profile-step: unknown option $o" >&2; return 1 ;;
    esac
  done
  dir=$(mktemp -d)
  if [ "${2:-}" = profile ]; then
    printf '[profiling.logger]\nlevel = "basic"\nfile = "%s/profile.log"\nappend = true\n' "$dir" > "$dir/cubecl.toml"
  fi
  # A fresh HOME keeps CubeCL's caches from an earlier case out (not for the profiled case: its
  # cubecl.toml was not picked up under a changed HOME).
  local home=$dir
  [ "${2:-}" = profile ] && home=$HOME
  ( cd "$dir" && HOME=$home XDG_CACHE_HOME=$home/.cache "$BIN/kava-train" train --config "$OLDPWD/scripts/demo-model/demo.toml" --method "$method" --backend "${BACKEND:-cuda}" \
      --set model=\""$WORK/init"\" --set data.train=\""$WORK/data/train.jsonl"\" \
      --set optim.max_steps="$STEPS" --set optim.micro_batch="$mb" --set optim.effective_batch="$mb" \
      --set checkpoint.dir=\""$dir/run"\" --set checkpoint.every=0 "${opts[@]}" > "$dir/train.log" 2>&1 )
  python3 - "$dir/run/metrics.jsonl" "$tag" <<'PY' | tee -a "$OUT/steps.txt"
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and "eval" not in l]
rest = rows[3:] or rows
print(f"{sys.argv[2]:<30} steps {len(rows):>3} | steps 4+: median {st.median(r['seconds'] for r in rest):.3f} s/step, "
      f"mean {st.mean(r['seconds'] for r in rest):.3f} s/step, median {st.median(r['tokens_per_s'] for r in rest):,.0f} tokens/s | "
      f"first step {rows[0]['seconds']:.2f} s | final loss {rows[-1]['loss']:.4f}")
PY
  [ -f "$dir/profile.log" ] && gzip -c "$dir/profile.log" > "$OUT/profile-$tag.log.gz"
  [ -s "$dir/run/metrics.jsonl" ] || tail -5 "$dir/train.log"
  rm -rf "$dir"
}
for c in ${CASES:-kava:64 kava:256 cot:64 nocot:64}; do one "$c"; done
for c in ${PROFILE-kava:64}; do one "$c" profile; done
