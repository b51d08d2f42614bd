#!/usr/bin/env bash
# Runs ON the lent GPU machine (the device tool; no Rust there): unpacks the CUDA binaries carried
# in BUNDLE (default .gpu1/bundle.tar.xz; scripts/gpu/pack.sh) once, then runs scripts/demo-model/train.sh PHASE...
# A bundle of `kava-train` alone (`BINS=kava-train scripts/gpu/pack.sh`, ~23 MB: what fits the
# device tool's 64 MiB beside a ~29 MB working tree) runs every phase but `iterations`; `package`
# then brings back the f32 model, to convert here with `kava convert DIR DIR --dtype f16`.
# with its work directory in /root (kept while the machine stays warm, so phases can span calls)
# and brings back, under $OUT, one archive of the logs, metrics and results (+ the packaged model
# after `package`, in parts of 12 MiB). Device calls used for the committed model: docs/results/demo-model-2026-11-29/README.md.
#   gpu.sh PHASE...          in this call; training stops CALL_S (default 540) seconds after the
#                            start, or at DEADLINE (epoch seconds) if that is set
#   gpu.sh start PHASE...    the same in a new process session that outlives the call (it runs
#                            until it ends or the machine goes back; set DEADLINE), writing to
#                            /root/$TAG-out
#   gpu.sh wait [S]          waits up to S seconds (default 540) for that job
#   gpu.sh collect           copies what `start` wrote (its log, the archives) to $OUT
#   gpu.sh archive [package] writes the logs archive (and the packaged model's parts) of $TAG's
#                            work directory to $OUT: what a pipeline does when it ends, for one that
#                            was stopped (scripts/demo-model/session.sh finish)
# TAG (default demo) names one pipeline: its work directory /root/$TAG-work, its background output
# /root/$TAG-out and its script copy, so that two can run side by side on a machine of two GPUs,
# each given one by CUDA_VISIBLE_DEVICES (e.g. `TAG=aug TRACE=aug CUDA_VISIBLE_DEVICES=1 gpu.sh
# start …`); `collect` then brings each back under $OUT/$TAG/.
# PIPELINE (default scripts/demo-model/train.sh) is the script that runs the phases, e.g.
# scripts/latent-depth/run.sh (a warm-up trained elsewhere goes to /root/$TAG-work before `start`).
# ROOT (default /root) holds the work directories, KT_BIN (default $ROOT/kt/bin) the binaries,
# BACKEND (default cuda) is the one every phase trains on: other values are for tests elsewhere.
# A run carried from one device session to the next (a stage too long for one session):
#   KEEP_RUNS="codi ..."  the archive also brings back each named run's last finished stage, as
#                         <run>-s<K>.tar.xz.part-* (its final/, f32, in parts of 12 MiB)
#   SEED_RUNS="codi++=PREFIX ..."  before the phases, PREFIX* (those parts, carried in) is
#                         unpacked to $WORK/runs/codi++/; train.sh STAGES=N then trains only the
#                         stages after it. A call's tree and carry must stay within the device
#                         tool's 64 MiB, so a session's first call can copy the parts to /root
#                         (PREFIX absolute) and the next carry the bundle.
set -uo pipefail
cd "$(dirname "$0")/../.."
TAG=${TAG:-demo}
ROOT=${ROOT:-/root}
KT_BIN=${KT_BIN:-$ROOT/kt/bin}
BG_OUT=$ROOT/$TAG-out
WORK=$ROOT/$TAG-work

# SEED_RUNS' runs into WORK (each once: a run already there is kept).
seed_runs() {
  local spec name prefix parts
  for spec in ${SEED_RUNS:-}; do
    name=${spec%%=*} prefix=${spec#*=}
    [ -d "$WORK/runs/$name/final" ] && continue
    parts=("$prefix"*)
    [ -e "${parts[0]}" ] || { echo "gpu.sh: SEED_RUNS: no file $prefix* for run $name" >&2; return 1; }
    mkdir -p "$WORK/runs/$name.tmp" && cat "${parts[@]}" | xz -dc | tar -C "$WORK/runs/$name.tmp" -xf - \
      && [ -d "$WORK/runs/$name.tmp/final" ] || { echo "gpu.sh: SEED_RUNS: $prefix* is not a run's final/ as KEEP_RUNS writes it" >&2; rm -rf "$WORK/runs/$name.tmp"; return 1; }
    rm -rf "$WORK/runs/$name" && mv "$WORK/runs/$name.tmp" "$WORK/runs/$name"
    echo "gpu.sh: seeded $WORK/runs/$name from $prefix*"
  done
}
case ${1:-} in
  start)
    shift
    # Here, where relative SEED_RUNS paths resolve (the background runs from a copy).
    seed_runs || exit 1
    rm -rf "$BG_OUT" && mkdir -p "$BG_OUT"
    # The background job runs from a copy of the scripts (the next call re-sends the working tree);
    # the CUDA binaries must already be in $KT_BIN (a foreground phase or scripts/gpu/train.sh stash).
    # Each tag runs from its own copy: `package` writes kava/models/demo under it.
    snap=$ROOT/$TAG-snap
    rm -rf "$snap" && mkdir -p "$snap/kava/models" && cp -r scripts "$snap/" && cp -r kava/models/demo "$snap/kava/models/"
    OUT=$BG_OUT setsid nohup "$snap/scripts/demo-model/gpu.sh" "$@" > "$BG_OUT/gpu.log" 2>&1 < /dev/null &
    echo $! > "$ROOT/$TAG-pid"
    echo "gpu.sh: started $* in the background (pid $!), log $BG_OUT/gpu.log"
    exit 0 ;;
  wait)
    end=$(( $(date +%s) + ${2:-540} ))
    while kill -0 "$(cat "$ROOT/$TAG-pid")" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 1; done
    kill -0 "$(cat "$ROOT/$TAG-pid")" 2>/dev/null && echo "gpu.sh: $TAG still running" || echo "gpu.sh: $TAG done"
    tail -5 "$BG_OUT/gpu.log"
    exit 0 ;;
  collect)
    dest=${OUT:?}
    [ "$TAG" = demo ] || dest=$OUT/$TAG
    mkdir -p "$dest" && cp -r "$BG_OUT"/. "$dest"/ && ls -l "$dest"
    exit 0 ;;
esac
OUT=${OUT:-/tmp/kava-out}

# The logs, metrics, predictions and tables of WORK -> $OUT/logs.tgz; with `package`, the packaged
# model in parts of 12 MiB: the device tool brings back files of at most 16 MiB, and the f32 model
# of a kava-train-only bundle (~20 MB) does not compress below that. Here:
# cat demo-model.tar.xz.part-* | xz -dc | tar -xf -
archive() { # [package]
  ( cd "$WORK" && tar -czf "$OUT/logs.tgz" logs $(ls -d runs/*/metrics.jsonl preds results*.md results*.txt select*.md selected* 2>/dev/null) )
  if [ "${1:-}" = package ]; then
    tar -cf - -C kava/models demo | xz -T0 -6 | split -b 12M - "$OUT/demo-model.tar.xz.part-"
  fi
  local name k s
  for name in ${KEEP_RUNS:-}; do
    s=$(WORK=$WORK scripts/demo-model/train.sh last-stage "$name") || { echo "gpu.sh: KEEP_RUNS: $name finished no stage" >&2; continue; }
    k=$(( ${#s} + 1 ))
    tar -cf - -C "$WORK/runs/$name$s" final | xz -T0 -6 | split -b 12M - "$OUT/$name-s$k.tar.xz.part-"
    echo "gpu.sh: kept $name$s as $name-s$k.tar.xz.part-*"
  done
}
if [ "${1:-}" = archive ]; then shift; archive "$@"; exit; fi

mkdir -p "$KT_BIN" "$OUT"
seed_runs || exit 1
[ -x "$KT_BIN/kava-train" ] || xz -dc "${BUNDLE:-.gpu1/bundle.tar.xz}" | tar -C "$KT_BIN" -xf - || exit 1
export KAVA_TRAIN=$KT_BIN/kava-train KAVA=$KT_BIN/kava WORK BACKEND=${BACKEND:-cuda}
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "gpu.sh: no nvidia-smi"
echo "gpu.sh: $TAG on CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-all}"
start=$(date +%s)
# Training stops CALL_S seconds after the start (default 540), so the call ends inside the device
# tool's 600 s limit with its logs; the next call resumes from the checkpoints.
export DEADLINE=${DEADLINE:-$(( start + ${CALL_S:-540} ))}
"${PIPELINE:-scripts/demo-model/train.sh}" "$@"
rc=$?
echo "gpu.sh: phases $* took $(( $(date +%s) - start )) s (exit $rc)"
if [[ " $* " == *" package "* ]]; then archive package; else archive; fi
exit $rc
