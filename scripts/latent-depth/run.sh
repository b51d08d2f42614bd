#!/usr/bin/env bash
# Does kava's latent reasoning add sequential depth? A probe on a task built to need it
# (scripts/latent-depth/gen.py: follow 2-5 links of a random permutation of the digits), with a
# model too shallow to follow more than about one link per forward pass (2 layers, hidden 64):
# No-CoT must answer in one pass, CoT writes one link per step, and kava/pccot have T = 3 Jacobi
# passes over M = 6 latents. If the latents add depth, kava beats No-CoT from 2 links on.
# Everything runs through `kava-train` (synthetic data by gen.py, `init-model`, `train`, `eval`).
# Results (docs/RESULTS.md, "Latent depth probe"; docs/results/latent-depth-probe/): the 2-layer CoT teacher learns the lookup only
# at ~8 000 steps (LR=1e-3 WARMUP_STEPS=10000: CoT 100 %; with 1 500-5 000 steps it stays at
# chance; check `kava-train eval --mode cot` before `methods`). From it, kava follows 2 links on
# every problem with T = 3 and 3 with T = 6 (kava-t6), where No-CoT fails at 2; pccot and codi
# (no KV loss) stay near No-CoT.
# Usage: scripts/latent-depth/run.sh [PHASE...] (default: all of prepare warmup methods eval;
# `iterations` also evaluates the latent runs with other numbers of Jacobi iterations).
# Environment: KAVA_TRAIN (default target/release/kava-train), BACKEND (default cpu), WORK
# (default latent-depth-work), WARMUP_STEPS (10000), STEPS (5000), MB (64), LR (1e-3),
# METHODS ("nocot pccot kava"; also `codi` and the variants of variant_args: kava-t6, pccot-t6,
# kava-a0, kava-a10, kava-m24, kava-a0m32, kava-kvall, kava-a0kvall, kava-a0kvall-s43, kava-a0t2,
# kava-a0kvall-t2, kava-kvall-t2),
# WARMUP_FROM (the model the warm-up starts from, default the fresh init; e.g. the warm-up of the
# compact traces, to teach it the `gen.py --verbose` or `--wrapped` ones written into $WORK/data),
# JOBS (parallel training runs, default 3), LAYERS (2), HIDDEN (64), DEADLINE (epoch seconds: a
# training run still going then is stopped; run `methods` again to resume it from its checkpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
KT=${KAVA_TRAIN:-target/release/kava-train}
WORK=${WORK:-latent-depth-work}
BACKEND=${BACKEND:-cpu}
WARMUP_STEPS=${WARMUP_STEPS:-10000}
STEPS=${STEPS:-5000}
MB=${MB:-64}
LR=${LR:-1e-3}
JOBS=${JOBS:-3}
CONFIG=scripts/latent-depth/probe.toml
# METHODS="" (set and empty) trains none of them: the variants only.
read -r -a METHODS <<< "${METHODS-nocot pccot kava}"
mkdir -p "$WORK/logs"

# A method, or a kava variant: NAME -> the method and the overrides it trains with.
variant_args() {
  case $1 in
    nocot | cot | codi | kava) echo "$1" ;; # codi's preset: M = T = 6
    pccot) echo "pccot --set latent.num_latents=6" ;; # kava without L_KV (pccot's preset has M = 24)
    kava-t6) echo "kava --set latent.num_iterations=6" ;; # T = M = 6: the exact latent chain, 6 passes deep
    pccot-t6) echo "pccot --set latent.num_latents=6 --set latent.num_iterations=6" ;; # kava-t6 without L_KV
    kava-a0) echo "kava --set loss.alpha_codi=0.0" ;; # L_KV alone (no L_CODI)
    kava-a10) echo "kava --set loss.alpha_codi=10.0" ;; # the paper's α₁
    kava-m24) echo "kava --set latent.num_latents=24" ;; # the paper's and the demo's M (more slots than the traces have)
    kava-kvall) echo "kava --set loss.kv_every_iteration=true" ;; # L_KV on every Jacobi iteration's K/V (beyond the paper)
    kava-a0kvall) echo "kava --set loss.alpha_codi=0.0 --set loss.kv_every_iteration=true" ;; # the same with L_KV alone
    kava-a0kvall-s43) echo "kava --set loss.alpha_codi=0.0 --set loss.kv_every_iteration=true --set optim.seed=43" ;; # kava-a0kvall, another seed
    kava-a0t2) echo "kava --set loss.alpha_codi=0.0 --set latent.num_iterations=2" ;; # L_KV alone at the demo's T = 2
    kava-a0kvall-t2) echo "kava --set loss.alpha_codi=0.0 --set loss.kv_every_iteration=true --set latent.num_iterations=2" ;; # the same on every iteration
    kava-kvall-t2) echo "kava --set loss.kv_every_iteration=true --set latent.num_iterations=2" ;; # α₁ = 1 (probe.toml's), every iteration, T = 2
    kava-a0m32) echo "kava --set loss.alpha_codi=0.0 --set latent.num_latents=32" ;; # M ≥ the longest --verbose trace (28): nothing evicted, no shifted slot
    *) echo "run.sh: unknown method or variant $1" >&2; return 1 ;;
  esac
}

# Seconds a training command may run: what is left before DEADLINE (none: no limit).
time_left() {
  if [ -z "${DEADLINE:-}" ]; then echo 0; return; fi
  local left=$(( DEADLINE - $(date +%s) ))
  [ "$left" -gt 1 ] && echo "$left" || echo 1
}

train() { # NAME METHOD FROM STEPS [extra args]
  local name=$1 method=$2 from=$3 steps=$4; shift 4
  local resume=()
  [ -e "$WORK/runs/$name/latest" ] && resume=(--resume)
  timeout "$(time_left)" "$KT" train --config "$CONFIG" --method "$method" --backend "$BACKEND" \
    --set model=\""$from"\" --set data.train=\""$WORK/data/train.jsonl"\" \
    --set optim.max_steps="$steps" --set optim.lr="$LR" \
    --set optim.micro_batch="$MB" --set optim.effective_batch="$MB" \
    --set checkpoint.dir=\""$WORK/runs/$name"\" "$@" "${resume[@]}" >> "$WORK/logs/$name.log" 2>&1
  grep '^kava-train:' "$WORK/logs/$name.log" | tail -1
}

phase_prepare() {
  python3 scripts/latent-depth/gen.py "$WORK/data" --train 20000 --test 1000 --seed 1
  "$KT" init-model --overwrite --data "$WORK/data/train.jsonl" --out "$WORK/init" --vocab-size 300 \
    --hidden "${HIDDEN:-64}" --layers "${LAYERS:-2}" --heads 4 --kv-heads 2 \
    --intermediate $(( 3 * ${HIDDEN:-64} )) --max-positions 256 --seed 0
}

phase_warmup() { [ -d "$WORK/runs/warmup/final" ] || train warmup cot "${WARMUP_FROM:-$WORK/init}" "$WARMUP_STEPS"; }

phase_methods() {
  local m spec pids=()
  for m in "${METHODS[@]}"; do
    spec=$(variant_args "$m") || return 1
    read -r -a spec <<< "$spec" # METHOD [--set k=v]...
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
    [ -d "$WORK/runs/$m/final" ] || train "$m" "${spec[0]}" "$WORK/runs/warmup/final" "$STEPS" "${spec[@]:1}" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}

phase_eval() {
  local r rows=("warmup cot") m
  for m in "${METHODS[@]}"; do
    case $m in nocot) rows+=("nocot nocot") ;; cot) rows+=("cot cot") ;; *) rows+=("$m latent" "$m cot") ;; esac
  done
  for r in "${rows[@]}"; do
    set -- $r
    "$KT" eval --model "$WORK/runs/$1/final" --data "$WORK/data/test.jsonl" --mode "$2" \
      --batch-size 64 --backend "$BACKEND" 2>&1 | grep '^kava-train eval' | sed "s/^/$1: /"
  done | tee "$WORK/results.txt"
}

# Which Jacobi iteration adds the link? Every latent run of METHODS evaluated with T = 0..6
# (`kava eval --iterations`; KAVA, default target/release/kava) -> $WORK/iterations.txt.
phase_iterations() {
  local m t
  for m in "${METHODS[@]}"; do
    case $m in nocot | cot) continue ;; esac
    for t in 0 1 2 3 4 5 6; do
      "${KAVA:-target/release/kava}" eval --model "$WORK/runs/$m/final" --data "$WORK/data/test.jsonl" \
        --mode latent --iterations "$t" --batch-size 64 --backend "$BACKEND" 2>&1 | grep '^kava eval' | sed "s/^/$m T=$t: /"
    done
  done | tee "$WORK/iterations.txt"
}

main() {
  local p phases=("$@")
  [ ${#phases[@]} -gt 0 ] || phases=(prepare warmup methods eval)
  for p in "${phases[@]}"; do echo "### $p"; "phase_$p"; done
}
# One line, so bash has read the whole script before it runs: editing it under a running
# pipeline (hours on a CPU) no longer breaks that pipeline.
main "$@"; exit
