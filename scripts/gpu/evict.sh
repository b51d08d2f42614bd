#!/usr/bin/env bash
# Runs ON the GPU server (see scripts/gpu/README.md): the eviction conformance sweep on CUDA,
# a PyTorch implementation checked against the Rust reference, then kernel vs tensor-ops vs
# PyTorch (eager and torch.compile) at SmolLM2 training sizes. Results land in $OUT.
set -euo pipefail
BIN=${KAVA_GPU_BIN:-/root/kava-gpu}
OUT=${OUT:-/tmp/kava-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
"$BIN/evict-bench" check --backend cuda 2>&1 | tee "$OUT/evict_check.txt"
"$BIN/evict-bench" case /tmp/evict_case.json
python3 scripts/evict_torch.py verify /tmp/evict_case.json 2>&1 | tee -a "$OUT/evict_check.txt" || echo "evict_torch verify FAILED" | tee -a "$OUT/evict_check.txt"
"$BIN/evict-bench" bench --backend cuda --json "$OUT/evict_kernel.jsonl" 2>&1 | tee "$OUT/evict_bench.txt"
python3 scripts/evict_torch.py bench --json "$OUT/evict_torch.jsonl" 2>&1 | tee -a "$OUT/evict_bench.txt"
python3 scripts/evict_torch.py bench --compile --json "$OUT/evict_torch_compile.jsonl" 2>&1 | tee -a "$OUT/evict_bench.txt"
