#!/usr/bin/env bash
# Runs ON the lent machine of one or two GPUs (the device tool; no Rust there): one device session of
# demo-model training as three calls, each inside the tool's 600 s, with nothing to write between
# them — the machine is given back 30 s after a call returns (session 14 lost a call and its
# background jobs that way), so each call is one short, prepared command:
#   session.sh begin PLAN   unpacks the CUDA bundle, starts one gpu.sh pipeline per GPU as the PLAN
#                           file says, waits SLEEP (default 570) seconds and prints the progress
#   session.sh progress     waits SLEEP (default 575) seconds and prints the progress
#   session.sh finish       waits for both pipelines until UNTIL (default 1450) seconds after the
#                           start; a pipeline still running then is stopped, and one that was
#                           stopped or failed (its deadline cut a stage short: it evaluated
#                           nothing) is salvaged: every stage it finished is evaluated (train.sh
#                           evalall) and, if its phases package, the last finished stage of
#                           PACKAGE_RUN packaged (KEEP_RUNS: their last finished stages kept); then
#                           brings each back under $OUT/<tag>/ (gpu.log, logs.tgz, model parts)
# PLAN is a bash file that sets TAG0 and TAG1 (the names of the pipelines on GPU 0 and GPU 1; an
# empty TAG1 runs GPU 0's alone, for a machine of one GPU),
# ENV0 and ENV1 (each one's settings as train.sh reads them, "NAME=value NAME=\"a b\" ..."), COMMON
# (the settings of both), PHASES0 and PHASES1 (their gpu.sh phases) and DEADLINE_S (training stops
# that many seconds after the start; default 1380; DEADLINE_S0 / DEADLINE_S1 for one GPU) and may
# set UNTIL (finish's limit; UNTIL in finish's environment wins). The plan of a session is committed with its
# results (e.g. docs/results/demo-model-2026-11-29/s16-plan.sh). BUNDLE (.gpu3/bundle.tar.xz): the
# CUDA binaries (`BINS=kava-train scripts/gpu/pack.sh`). ROOT, KT_BIN and BACKEND as in gpu.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=${ROOT:-/root}
KT_BIN=${KT_BIN:-$ROOT/kt/bin}
export ROOT KT_BIN
STATE=$ROOT/session.plan

# The GPUs that run a pipeline: 0, and 1 where the plan names one for it.
gpus() { echo 0; [ -z "${TAG1:-}" ] || echo 1; }

progress() {
  echo "session.sh: t = $(( $(date +%s) - T0 )) s since the start"
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
  local g t f
  for g in $(gpus); do
    t=TAG$g t=${!t}
    echo "== $t"
    grep -v '^step' "$ROOT/$t-out/gpu.log" | tail -4 | cut -c1-250
    for f in "$ROOT/$t-work"/logs/*.log; do
      [ ! -e "$f" ] || echo "$(basename "$f"): $(grep '^step' "$f" | tail -1 | cut -c1-170)"
    done
  done
}

running() { kill -0 "$(cat "$ROOT/$1-pid")" 2>/dev/null; }

# The plan and start time `begin` recorded; none means this machine is not the one `begin` ran on
# (a machine given back takes its background jobs with it). An UNTIL given to the call wins over the
# plan's (session 19's `UNTIL=1440 session.sh finish` was overridden by its plan's 1540).
load_state() {
  [ -r "$STATE" ] || { echo "session.sh: no session on this machine ($STATE): was the machine given back since \`begin\`?" >&2; exit 2; }
  local until=${UNTIL:-}
  # shellcheck disable=SC1090
  source "$STATE"
  [ -z "$until" ] || UNTIL=$until
}

# GPU G's pipeline was stopped: evaluate every stage it finished, package the last one if its
# phases package, archive its work directory to $ROOT/<tag>-out (then collected as if it had ended).
salvage() { # G
  local tag=TAG$1 env=ENV$1 phases=PHASES$1 t suffix pr
  t=${!tag}
  # One command line for train.sh with the pipeline's settings; a setting written after them wins.
  local pre="env ${COMMON:-} ${!env} WORK=$(printf %q "$ROOT/$t-work") KAVA_TRAIN=$(printf %q "$KT_BIN/kava-train")"
  pre+=" KAVA=$(printf %q "$KT_BIN/kava") BACKEND=${BACKEND:-cuda} CUDA_VISIBLE_DEVICES=$1"
  local script gpu
  script=$(printf %q "$ROOT/$t-snap/scripts/demo-model/train.sh")
  gpu="OUT=$(printf %q "$ROOT/$t-out") TAG=$t $(printf %q "$ROOT/$t-snap/scripts/demo-model/gpu.sh") archive"
  {
    echo "session.sh: $t stopped at t = $(( $(date +%s) - T0 )) s or failed; evaluating the stages it finished"
    # Every stage some run finished (train.sh's eval leaves out the rows of runs that did not).
    eval "$pre SUFFIX= $script evalall"
    if [[ " ${!phases} " == *" package "* ]]; then
      pr=$(eval "$pre bash -c 'echo \${PACKAGE_RUN:-kava}'")
      suffix=$(eval "$pre $script last-stage $(printf %q "$pr")") || suffix=""
      echo "session.sh: packaging $pr$suffix"
      eval "$pre SUFFIX=$suffix $script package"
      eval "$pre $gpu package"
    else
      eval "$pre $gpu"
    fi
  } >> "$ROOT/$t-out/gpu.log" 2>&1
}

case ${1:-} in
  begin)
    plan=${2:-}
    [ -n "$plan" ] && [ -r "$plan" ] || { echo "session.sh begin: no plan file '${plan}'" >&2; exit 2; }
    T0=$(date +%s)
    mkdir -p "$ROOT" && { cat "$plan"; echo "T0=$T0"; } > "$STATE"
    # shellcheck disable=SC1090
    source "$STATE"
    mkdir -p "$KT_BIN"
    [ -x "$KT_BIN/kava-train" ] || xz -dc "${BUNDLE:-.gpu3/bundle.tar.xz}" | tar -C "$KT_BIN" -xf - || exit 1
    nvidia-smi -L 2>/dev/null
    for g in $(gpus); do
      tag=TAG$g env=ENV$g phases=PHASES$g deadline=DEADLINE_S$g
      deadline=${!deadline:-${DEADLINE_S:-1380}}
      eval "env ${COMMON:-} ${!env} DEADLINE=$((T0 + deadline)) TAG=${!tag} CUDA_VISIBLE_DEVICES=$g scripts/demo-model/gpu.sh start ${!phases}"
    done
    sleep "${SLEEP:-570}"
    progress ;;
  progress)
    load_state
    sleep "${SLEEP:-575}"
    progress ;;
  finish)
    load_state
    stopped=()
    for g in $(gpus); do
      tag=TAG$g
      left=$(( T0 + ${UNTIL:-1450} - $(date +%s) ))
      [ "$left" -gt 0 ] || left=0
      TAG=${!tag} scripts/demo-model/gpu.sh wait "$left" | head -1
    done
    for g in $(gpus); do
      tag=TAG$g
      if running "${!tag}"; then
        # The pipeline's process group, then its training commands (`timeout` gives each a group of its own).
        kill -- -"$(cat "$ROOT/${!tag}-pid")" 2>/dev/null
        pkill -f -- "$ROOT/${!tag}-work/runs/"
        while running "${!tag}" || pgrep -f -- "$ROOT/${!tag}-work/runs/" > /dev/null; do sleep 1; done
      elif grep -q '^gpu.sh: phases .*(exit 0)$' "$ROOT/${!tag}-out/gpu.log"; then
        continue
      fi
      salvage "$g" &
      stopped+=("${!tag}")
    done
    wait
    for g in $(gpus); do
      tag=TAG$g
      TAG=${!tag} scripts/demo-model/gpu.sh collect
      grep -h '^kava-train eval |\|^session.sh\|^gpu.sh: phases' "$ROOT/${!tag}-out/gpu.log" | cut -c1-250
    done
    echo "session.sh: salvaged (stopped at the limit or by the deadline): ${stopped[*]:-none}"
    progress ;;
  *)
    awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 2 ;;
esac
