#!/usr/bin/env bash
# Runs ON the GPU server (scripts/gpu/README.md): latent vs CoT wall time per question for SmolLM2-135M on CUDA
# (untrained latents, T = 3, M = 24, CoT capped at 128 tokens).
# MODEL: the SmolLM2-135M-Instruct Q4_1 GGUF (scripts/fetch-models.sh).
set -euo pipefail
BIN=${KAVA_GPU_BIN:-/root/kava-gpu}
OUT=${OUT:-/tmp/kava-out}
MODEL=${MODEL:-/root/SmolLM2-135M-Instruct.Q4_1.gguf}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$BIN/kava" bench --model "$MODEL" --backend cuda --max-cot-tokens 128 --latents 24 --iterations 3 2>&1 | tee "$OUT/latent_bench.txt"
"$BIN/kava" solve --model "$MODEL" --backend cuda --mode both --latents 24 --iterations 3 --max-cot-tokens 128 \
  --question "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?" 2>&1 | tee "$OUT/latent_solve.txt"
