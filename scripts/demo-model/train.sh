#!/usr/bin/env bash
# Reproduces the embedded demo model (kava/models/demo) and its ablation table, all through
# `kava-train`:
#   prepare  synthetic problems (`kava-train synth`: 200 000 train, 1 000 held out: the first 500
#            are the test set (test.txt), the other 500 the validation set (valid.txt) that picks
#            among recipe variants) and a scratch Llama (`kava-train init-model`: BPE vocabulary trained on the train split,
#            digits one per token; 256 wide, 6 layers, ~5 M parameters)
#   warmup   `cot` from scratch (full fine-tuning): the model learns the language and the steps
#   methods  from the warm-up, the same budget (STEPS × MB) for each of cot, nocot, codi, kava and
#            the VARIANTS (default pccot-t2: kava's ablation; see variant_args), JOBS at a time
#   select   every kava run (kava and VARIANTS) in latent mode on the validation set
#            -> $WORK/select.md; the best becomes PACKAGE_RUN unless that is set
#   extend   a further stage of EXTEND_STEPS for every method from its own result: runs/<m> ->
#            runs/<m>+ (eval/select/package then take SUFFIX=+); SUFFIX=++ FROM_SUFFIX=+ a third
#            stage, runs/<m>+ -> runs/<m>++. STAGES=N: every stage up to the Nth in turn (runs/<m>+,
#            ++, ... with N - 1 pluses; SUFFIX then defaults to the last), skipping a run whose
#            stage, or a later one, is already there (e.g. a run copied in from another machine). The
#            embedded model is a fourth stage's: `all` runs it (STAGES=N: the Nth; default 4)
#   evalall  `eval` for every stage that has a trained run: results.md, results+.md, ...
#   eval     the 500 held-out problems: PACKAGE_RUN in latent and CoT mode, cot in CoT mode, nocot,
#            codi and pccot in their modes (and the VARIANTS in latent mode) -> $WORK/results.md
#   package  PACKAGE_RUN's final model as f16 into kava/models/demo, or PACKAGE_DIR (+ questions.txt: held-out problems)
#   iterations  the packaged model (or MODEL_DIR) in latent mode with T = 0, 1, 2, 3, 6 Jacobi iterations and in
#            CoT mode, each with its accuracy by the number of reasoning steps
# Usage: scripts/demo-model/train.sh PHASE... or `all` — the committed model's recipe: prepare warmup
# methods select, then stages 2-4 (extend: each from the one before) evalall select package (EXTEND_STEPS=0: one stage
# only, packaged from it; STAGES=N: N stages, the Nth packaged; default 4). Environment: KAVA_TRAIN / KAVA (the
# binaries; default target/release/*), BACKEND (cuda|wgpu|cpu, default: the best one), WORK (run
# directory, default demo-work), TRAIN_N (training problems, default 200 000), WARMUP_STEPS, WARMUP_MB, WARMUP_LR, STEPS, MB (batch of the
# methods), LR (1e-3), EXTEND_STEPS (1 500), METHODS (default "cot nocot codi kava"), JOBS,
# VARIANTS (default pccot-t2), PACKAGE_RUN,
# TRAIN_TIMEOUT (seconds per training command) and DEADLINE (epoch seconds by which every training
# command stops); a stopped run continues from its checkpoint when the phase is run again. `eval`
# leaves out the rows of methods that were not trained. The model and the traces: HIDDEN (256),
# LAYERS (6), INTERMEDIATE (768), HEADS (8), KV_HEADS (4) for `prepare`; TRACE (aug, demo.toml's:
# the equations, or nl: sentences) for every training command — keep the packaged model within 20 MB of f16.
# On one H200, three latent runs (codi, pccot, kava, kava-*) side by side at micro-batch 64 keep
# ~0.5 s/step; five saturate it (0.87 s/step) — set JOBS accordingly.
# The run that produced the committed model, its evaluation and its ablation: docs/RESULTS.md
# ("The embedded demo model") and docs/results/demo-model/, docs/results/demo-ablation-4x/.
set -euo pipefail
cd "$(dirname "$0")/../.."
KT=${KAVA_TRAIN:-target/release/kava-train}
KAVA=${KAVA:-target/release/kava}
WORK=${WORK:-demo-work}
WARMUP_STEPS=${WARMUP_STEPS:-3000}
WARMUP_MB=${WARMUP_MB:-64}
WARMUP_LR=${WARMUP_LR:-1e-3}
STEPS=${STEPS:-1500}
MB=${MB:-64}
LR=${LR:-1e-3}
EXTEND_STEPS=${EXTEND_STEPS:-1500}
# The pluses that name stage K's runs: stage 1 runs/<m>, stage 2 runs/<m>+, stage 3 runs/<m>++ ...
stage_suffix() { # K
  local k=$1 s=""
  while [ "$k" -gt 1 ]; do s+=+; k=$((k - 1)); done
  echo "$s"
}
MAX_STAGES=8
if [ -n "${STAGES:-}" ]; then
  [[ "$STAGES" =~ ^[1-9]$ ]] && [ "$STAGES" -le "$MAX_STAGES" ] || { echo "train.sh: STAGES=$STAGES: expected 1 to $MAX_STAGES" >&2; exit 2; }
  [ -n "${SUFFIX+set}" ] || SUFFIX=$(stage_suffix "$STAGES")
fi
JOBS=${JOBS:-5}
EVAL_N=${EVAL_N:-500}
BACKEND_ARG=()
[ -n "${BACKEND:-}" ] && BACKEND_ARG=(--backend "$BACKEND")
CONFIG=scripts/demo-model/demo.toml
# METHODS="" (set and empty) trains none of them: the VARIANTS only.
read -r -a METHODS <<< "${METHODS-cot nocot codi kava}"
# VARIANTS="" (set and empty): none.
read -r -a VARIANT_LIST <<< "${VARIANTS-pccot-t2}"  # e.g. VARIANTS="kava-a1 kava-emb"

# A recipe variant: NAME -> the method and the overrides it trains with, on top of demo.toml
# (demo.toml has aug traces and T = 2; some variants were first tried on nl traces at T = 3).
variant_args() {
  case $1 in
    kava-a10) echo "kava --set loss.alpha_codi=10.0" ;; # the paper's α₁ = 10 (demo.toml has 1)
    kava-a03) echo "kava --set loss.alpha_codi=0.3" ;; # α₁ below demo.toml's 1
    kava-a0) echo "kava --set loss.alpha_codi=0.0" ;; # L_KV alone: on the latent-depth probe it builds the latent route sooner
    kava-a0m6) echo "kava --set loss.alpha_codi=0.0 --set latent.num_latents=6" ;; # L_KV alone with the probe's M = 6
    kava-a0m6t6) echo "kava --set loss.alpha_codi=0.0 --set latent.num_latents=6 --set latent.num_iterations=6" ;; # the probe's best shape (M = 6, T = 6) with L_KV alone
    kava-a0m96) echo "kava --set loss.alpha_codi=0.0 --set latent.num_latents=96" ;; # M ≥ the longest nl trace (95): nothing evicted, every slot matched with its own trace token (offset 0)
    kava-a0crop) echo "kava --set loss.alpha_codi=0.0 --set evict.method=\"crop\"" ;; # method.md §4's crop ablation: the first M entries, offset 0
    kava-a0t2) echo "kava --set loss.alpha_codi=0.0 --set latent.num_iterations=2" ;; # 5 passes: ≥ 5x fewer than the aug traces' CoT (~28.5)
    kava-s43) echo "kava --set optim.seed=43" ;; # the embedded model's recipe, another seed: the run-to-run spread
    nocot-s43) echo "nocot --set optim.seed=43" ;; # No-CoT's recipe, another seed
    kava-kvall) echo "kava --set loss.kv_every_iteration=true" ;; # L_KV on every Jacobi iteration (beyond the paper): z⁰ holds nothing today
    kava-a0kvall) echo "kava --set loss.alpha_codi=0.0 --set loss.kv_every_iteration=true" ;; # the same with L_KV alone
    kava-kvall-s43) echo "kava --set loss.kv_every_iteration=true --set optim.seed=43" ;; # kava-kvall, another seed
    kava-a0kvall-s43) echo "kava --set loss.alpha_codi=0.0 --set loss.kv_every_iteration=true --set optim.seed=43" ;; # kava-a0kvall, another seed
    kava-t3) echo "kava --set latent.num_iterations=3" ;; # T = 3: with TRACE=nl, an earlier embedded model's recipe (latent 50.8 %)
    kava-t2) echo "kava --set latent.num_iterations=2" ;; # α₁ = 1 (demo.toml's) at T = 2: 5 passes on the aug traces
    kava-t2m12) echo "kava --set latent.num_iterations=2 --set latent.num_latents=12" ;; # kava-t2 with M = 12 (the aug traces: 20.4 tokens on average)
    kava-t2m44) echo "kava --set latent.num_iterations=2 --set latent.num_latents=44" ;; # kava-t2 with M = 44: nothing evicted from any aug trace (the longest, of train and test, has 43 tokens; the only ones longer than 24 are 4- and 5-step traces); the same passes
    pccot-t2m44) echo "pccot --set latent.num_iterations=2 --set latent.num_latents=44" ;; # kava-t2m44's ablation: the same latents, no KV loss
    kava-t2m44-s43) echo "kava --set latent.num_iterations=2 --set latent.num_latents=44 --set optim.seed=43" ;; # kava-t2m44, another seed
    kava-t2crop) echo "kava --set latent.num_iterations=2 --set evict.method=\"crop\"" ;; # kava-t2 with method.md §4's crop ablation
    kava-t2a3) echo "kava --set latent.num_iterations=2 --set loss.alpha_codi=3.0" ;; # kava-t2 with α₁ = 3
    kava-t2pre) echo "kava --set latent.num_iterations=2 --set loss.kv_pre_rope=true" ;; # kava-t2 with L_KV on the keys before RoPE
    pccot-t2) echo "pccot --set latent.num_iterations=2" ;; # kava-t2's and kava-a0t2's ablation: the same latents, no KV loss
    pccot-m96) echo "pccot --set latent.num_latents=96" ;; # kava-a0m96's ablation: the same latents, no KV loss (α₁ = 1 as pccot's)
    kava-a0t6) echo "kava --set loss.alpha_codi=0.0 --set latent.num_iterations=6" ;; # L_KV alone and T = 6: on the probe T = 6 followed one link more than T = 3
    kava-a1) echo "kava --set loss.alpha_codi=1.0" ;;   # α₁ = 1 (demo.toml's; the paper's is 10)
    kava-m12) echo "kava --set latent.num_latents=12" ;; # fewer latents for these short traces
    kava-m6t6) echo "kava --set latent.num_latents=6 --set latent.num_iterations=6" ;; # an exact chain (T = M, as codi) with L_KV: T + n_answer ≈ 9 passes
    kava-t6) echo "kava --set latent.num_iterations=6" ;; # more depth: the latents of T = 3 reach ~2 steps
    kava-prerope) echo "kava --set loss.kv_pre_rope=true" ;; # L_KV on the keys before RoPE
    kava-mse) echo "kava --set loss.kv_rho=\"mse\"" ;; # the paper's KV loss for natural-language traces (Llama-1B / Qwen-0.5B NL)
    kava-emb) echo "kava --set latent.projection_scale=\"embedding\"" ;; # latents at the token embeddings' scale
    *) echo "train.sh: unknown variant $1" >&2; return 1 ;;
  esac
}

# The mode a run answers in: a variant's method decides (a `nocot-*` variant answers directly).
mode_of() {
  local method=$1
  [ "$1" = kava ] || method=$(variant_args "$1" | cut -d' ' -f1)
  case $method in cot | nocot) echo "$method" ;; *) echo latent ;; esac
}

# The kava run that becomes the embedded model: PACKAGE_RUN, else the one `select` picked, else kava.
package_run() {
  if [ -n "${PACKAGE_RUN:-}" ]; then echo "$PACKAGE_RUN"
  elif [ -s "$WORK/selected${SUFFIX:-}" ]; then cat "$WORK/selected${SUFFIX:-}"
  else echo kava; fi
}

# Seconds a training command may run: TRAIN_TIMEOUT, cut to what is left before DEADLINE.
time_left() {
  local t=${TRAIN_TIMEOUT:-0}
  if [ -n "${DEADLINE:-}" ]; then
    local left=$(( DEADLINE - $(date +%s) ))
    [ "$left" -gt 1 ] || left=1
    { [ "$t" = 0 ] || [ "$t" -gt "$left" ]; } && t=$left
  fi
  echo "$t"
}

train() { # NAME METHOD FROM-MODEL STEPS LR MICRO-BATCH [extra kava-train args]
  local name=$1 method=$2 from=$3 steps=$4 lr=$5 mb=$6; shift 6
  timeout "$(time_left)" "$KT" train --config "$CONFIG" --method "$method" "${BACKEND_ARG[@]}" \
    --set model=\""$from"\" --set data.train=\""$WORK/data/train.jsonl"\" \
    --set optim.max_steps="$steps" --set optim.lr="$lr" \
    --set optim.micro_batch="$mb" --set optim.effective_batch="$mb" \
    --set checkpoint.dir=\""$WORK/runs/$name"\" --set data.trace=\""${TRACE:-aug}"\" "$@" >> "$WORK/logs/$name.log" 2>&1
}

phase_prepare() {
  mkdir -p "$WORK/logs"
  "$KT" synth --out "$WORK/data" --train "${TRAIN_N:-200000}" --test 1000 --seed 1
  # The test stream's first 500 problems are the test set (the same 500 with --test 500); the
  # next 500 are the validation set.
  tail -n +501 "$WORK/data/test.txt" > "$WORK/data/valid.txt"
  head -n 500 "$WORK/data/test.txt" > "$WORK/data/test500.txt" && mv "$WORK/data/test500.txt" "$WORK/data/test.txt"
  "$KT" init-model --overwrite --data "$WORK/data/train.jsonl" --out "$WORK/init" --vocab-size 1024 \
    --hidden "${HIDDEN:-256}" --layers "${LAYERS:-6}" --heads "${HEADS:-8}" --kv-heads "${KV_HEADS:-4}" \
    --intermediate "${INTERMEDIATE:-768}" --seed 0
}

phase_warmup() {
  mkdir -p "$WORK/logs"
  local resume=()
  [ -e "$WORK/runs/warmup/latest" ] && resume=(--resume)
  [ -d "$WORK/runs/warmup/final" ] || train warmup cot "$WORK/init" "$WARMUP_STEPS" "$WARMUP_LR" "$WARMUP_MB" "${resume[@]}"
  tail -3 "$WORK/logs/warmup.log"
}

# Whether run M has finished the stage SUFFIX names, or a later one (a run carried in at a later
# stage skips the stages before it).
stage_done() { # M SUFFIX
  local last
  last=$(last_stage "$1") && [ "${#last}" -ge "${#2}" ]
}

# Trains every method (JOBS at a time) for STEPS into runs/<method><SUFFIX>, each from FROM:
# `warmup` (the shared warm-up) or `self` (the method's own runs/<method>FROM_SUFFIX/final); a run
# that was stopped continues from its checkpoint.
train_all() { # SUFFIX STEPS FROM [FROM_SUFFIX]
  local suffix=$1 steps=$2 from=$3 from_suffix=${4-${FROM_SUFFIX:-}} pids=() m src spec
  mkdir -p "$WORK/logs"
  for m in "${METHODS[@]}" "${VARIANT_LIST[@]}"; do
    spec=$m
    [[ " ${METHODS[*]} " == *" $m "* ]] || spec=$(variant_args "$m") || return 1
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
    src="$WORK/runs/warmup/final"
    [ "$from" = self ] && src="$WORK/runs/$m$from_suffix/final"
    local resume=()
    [ -e "$WORK/runs/$m$suffix/latest" ] && resume=(--resume)
    # shellcheck disable=SC2086 # spec is "METHOD [--set k=v]..."
    set -- $spec
    local method=$1; shift
    stage_done "$m" "$suffix" || train "$m$suffix" "$method" "$src" "$steps" "$LR" "$MB" "$@" "${resume[@]}" &
    pids+=($!)
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  for m in "${METHODS[@]}" "${VARIANT_LIST[@]}"; do
    [ -e "$WORK/logs/$m$suffix.log" ] && { echo "== $m$suffix"; tail -2 "$WORK/logs/$m$suffix.log"; }
  done
  return $rc
}

phase_methods() { train_all "" "$STEPS" warmup; }

# A further stage with the same budget for every method: each continues from its own final model
# runs/<method>FROM_SUFFIX (default: the first stage's) for EXTEND_STEPS more steps (a fresh
# warm-up + cosine schedule) into runs/<method>SUFFIX (default +). With STAGES=N, stages 2 to N in
# turn, each from the one before.
phase_extend() {
  if [ -z "${STAGES:-}" ]; then train_all "${SUFFIX:-+}" "$EXTEND_STEPS" self; return; fi
  local k
  for ((k = 2; k <= STAGES; k++)); do
    echo "## stage $k"
    train_all "$(stage_suffix "$k")" "$EXTEND_STEPS" self "$(stage_suffix $((k - 1)))" || return 1
  done
}

# Where eval_one writes the evaluation of run NAME (of the stage SUFFIX names) in MODE on SPLIT:
# one name for the writer and the readers (select, eval). EXT: log or jsonl (its predictions).
eval_file() { # DIR NAME MODE [SPLIT: test|valid] [EXT]
  local tag=""
  [ "${4:-test}" = test ] || tag="-$4"
  echo "$WORK/$1/eval$tag-$2${SUFFIX:-}-$3.${5:-log}"
}

eval_one() { # NAME MODE [SPLIT: test|valid]  (SUFFIX=+ evaluates the extended runs)
  local split=${3:-test} preds=()
  # Per-problem records (scripts/demo-model/paired.py compares two runs on the same problems),
  # where the binary has --predictions.
  if "$KT" eval --help 2>/dev/null | grep -q -- --predictions; then
    mkdir -p "$WORK/preds" && preds=(--predictions "$(eval_file preds "$1" "$2" "$split" jsonl)")
  fi
  "$KT" eval --model "$WORK/runs/$1${SUFFIX:-}/final" --data "$WORK/data/$split.txt" --mode "$2" \
    --limit "$EVAL_N" --batch-size 64 "${BACKEND_ARG[@]}" "${preds[@]}" 2>&1 | tee "$(eval_file logs "$1" "$2" "$split")" | grep '^kava-train eval'
}

# The validation set picks the kava recipe: each kava run in latent mode -> $WORK/select${SUFFIX:-}.md.
phase_select() {
  mkdir -p "$WORK/logs"
  local m runs=()
  # kava's own run only where it was trained (METHODS may leave it out and train variants only).
  for m in kava "${VARIANT_LIST[@]}"; do
    # only kava runs compete (a pccot-* variant is an ablation row, not a candidate)
    [ "$m" = kava ] || [ "$(variant_args "$m" | cut -d' ' -f1)" = kava ] || continue
    [ -d "$WORK/runs/$m${SUFFIX:-}/final" ] && runs+=("$m")
  done
  for m in "${runs[@]}"; do eval_one "$m" latent valid & done
  wait
  for m in "${runs[@]}"; do
    sed -n 's/.*accuracy \([0-9.]*%\).*passes \([0-9.]*\).*/| '"$m"' | \1 | \2 |/p' "$(eval_file logs "$m" latent valid)"
  done | { echo "| kava run | validation accuracy (latent) | forward passes |"; echo "|---|---|---|"; cat; } > "$WORK/select${SUFFIX:-}.md"
  # The best validation accuracy wins; a tie keeps the earlier run (kava's defaults first).
  sed -n 's/^| \([a-z0-9-]*\) | \([0-9.]*\)%.*/\2 \1/p' "$WORK/select${SUFFIX:-}.md" | sort -s -k1,1 -rn | head -1 | cut -d' ' -f2 > "$WORK/selected${SUFFIX:-}"
  cat "$WORK/select${SUFFIX:-}.md"
  echo "selected: $(cat "$WORK/selected${SUFFIX:-}")"
}

# The rows `eval` evaluates, one "RUN MODE" per line: PACKAGE_RUN in latent and CoT mode, cot,
# nocot, pccot, codi and the VARIANTS in their modes — those that finished the stage SUFFIX names.
eval_rows() {
  local pr r m
  pr=$(package_run)
  local all=("$pr latent" "$pr cot" "cot cot" "nocot nocot" "pccot latent" "codi latent")
  for m in kava "${VARIANT_LIST[@]}"; do [ "$m" = "$pr" ] || all+=("$m $(mode_of "$m")"); done
  for r in "${all[@]}"; do [ ! -d "$WORK/runs/${r%% *}${SUFFIX:-}/final" ] || echo "$r"; done
}

phase_eval() {
  mkdir -p "$WORK/logs"
  local r rows=()
  mapfile -t rows < <(eval_rows)
  for r in "${rows[@]}"; do eval_one $r & done
  wait
  {
    echo "| trained with (same budget) | mode | accuracy | forward passes | generated tokens | s/question |"
    echo "|---|---|---|---|---|---|"
    for r in "${rows[@]}"; do
      set -- $r
      sed -n 's/.*mode \([a-z]*\) | n \([0-9]*\) | accuracy \([0-9.]*%\) ([0-9/]*) | passes \([0-9.]*\) | generated \([0-9.]*\) | KV entries [0-9.]* | \([0-9.]*\) s.*/| '"$1"' | \1 | \3 (n \2) | \4 | \5 | \6 |/p' "$(eval_file logs "$1" "$2")"
    done
    echo
    echo "Accuracy by the gold solution's number of steps:"
    echo
    for r in "${rows[@]}"; do
      set -- $r
      sed -n 's/^kava-train eval by steps | mode \([a-z]*\) | \(.*\)/* '"$1"', \1: \2/p' "$(eval_file logs "$1" "$2")"
    done
  } > "$WORK/results${SUFFIX:-}.md"
  cat "$WORK/results${SUFFIX:-}.md"
}

# `eval` for every stage of which some run has finished: results.md, results+.md, ... (the rows of
# one stage are the runs that finished it).
phase_evalall() {
  local k suffix
  for ((k = 1; k <= MAX_STAGES; k++)); do
    suffix=$(stage_suffix "$k")
    [ -z "$(SUFFIX=$suffix eval_rows)" ] || { echo "## stage $k"; SUFFIX=$suffix phase_eval; }
  done
}

# The suffix of run M's last finished stage ("" for stage 1, "+" for stage 2 ...); fails if M
# finished none: `train.sh last-stage M`, e.g. to copy a run's last finished stage elsewhere.
last_stage() { # M
  local k s="" last=""
  for ((k = 1; k <= MAX_STAGES; k++)); do
    [ ! -d "$WORK/runs/$1$s/final" ] || last=${s}.
    s+=+
  done
  [ -n "$last" ] && echo "${last%.}"
}

# Does the answer depend on the latent reasoning? The packaged model on the held-out problems with
# T = 0, 1, 2, 3 (trained), 6 Jacobi iterations (`kava eval --iterations`), on BACKEND.
phase_iterations() {
  local t
  for t in 0 1 2 3 6; do
    "$KAVA" eval --model "${MODEL_DIR:-kava/models/demo}" --data "$WORK/data/test.txt" --mode latent --iterations "$t" \
      --limit "$EVAL_N" --batch-size 32 "${BACKEND_ARG[@]}" 2>&1 | grep '^kava eval'
  done
  # The same model's CoT mode, for the accuracy by step count next to the latent one.
  "$KT" eval --model "${MODEL_DIR:-kava/models/demo}" --data "$WORK/data/test.txt" --mode cot --limit "$EVAL_N" \
    --batch-size 64 "${BACKEND_ARG[@]}" 2>&1 | grep '^kava-train eval'
}

phase_package() {
  local dest=${PACKAGE_DIR:-kava/models/demo}
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  if [ -x "$KAVA" ]; then
    "$KAVA" convert "$WORK/runs/$(package_run)${SUFFIX:-}/final" "$dest.tmp" --dtype f16
  else
    # Only kava-train on this machine (e.g. a GPU server without the kava binary): the f32 run as it is, to be converted
    # where `kava` is: kava convert DIR DIR.f16 --dtype f16 (exact: f16 rounding is deterministic).
    echo "train.sh package: no $KAVA: packaging the f32 model; convert it to f16 with \`kava convert … --dtype f16\`" >&2
    cp -r "$WORK/runs/$(package_run)${SUFFIX:-}/final/." "$dest.tmp/"
  fi
  head -n 16 "$WORK/data/test.txt" > "$dest.tmp/questions.txt"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  du -sh "$dest"
}

[ $# -gt 0 ] || { awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 2; }
if [ "$1" = last-stage ]; then last_stage "${2:?train.sh last-stage RUN}"; exit; fi
for p in "$@"; do
  if [ "$p" = all ]; then
    # The first stage, then the later ones (STAGES, default 4), every stage evaluated (results.md:
    # the 1× rows, results+.md the 2× ...), the last one packaged.
    unset SUFFIX FROM_SUFFIX
    stages=${STAGES:-4}
    stage1=(prepare warmup methods select) stage2=(extend evalall select package)
    [ "$EXTEND_STEPS" -gt 0 ] && [ "$stages" -gt 1 ] || { stage1+=(eval package); stage2=(); }
    for q in "${stage1[@]}"; do echo "### $q"; "phase_$q"; done
    STAGES=$stages SUFFIX=$(stage_suffix "$stages")
    for q in "${stage2[@]}"; do echo "### $q (SUFFIX=$SUFFIX)"; "phase_$q"; done
    unset SUFFIX
  else
    echo "### $p"; "phase_$p"
  fi
done
