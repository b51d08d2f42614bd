#!/usr/bin/env bash
# Session 15, device call 1 (nvidia-h200-x2, carry .gpu3): the 12-layer model's whole table at the
# 2x budget, micro-batch 128 for half the steps. GPU 0: codi; GPU 1: No-CoT, kava-t2, pccot-t2.
cd "$(dirname "$0")/../../../.."
mkdir -p /root/kt/bin && xz -dc .gpu3/bundle.tar.xz | tar -C /root/kt/bin -xf - && nvidia-smi -L
T0=$(date +%s); echo "T0=$T0" | tee /root/t0
D=(HIDDEN=192 LAYERS=12 INTERMEDIATE=576 HEADS=6 KV_HEADS=3 WARMUP_MB=128 WARMUP_STEPS=1500 WARMUP_LR=1.4e-3
   MB=128 STEPS=750 EXTEND_STEPS=750 LR=1.4e-3 SUFFIX=+)
env "${D[@]}" DEADLINE=$((T0+1400)) TAG=dcodi CUDA_VISIBLE_DEVICES=0 METHODS="codi" VARIANTS="" JOBS=1 \
  scripts/demo-model/gpu.sh start prepare warmup methods extend eval
env "${D[@]}" DEADLINE=$((T0+1330)) TAG=deep CUDA_VISIBLE_DEVICES=1 METHODS="nocot" VARIANTS="kava-t2 pccot-t2" PACKAGE_RUN=kava-t2 JOBS=3 \
  scripts/demo-model/gpu.sh start prepare warmup methods extend eval package
sleep "${SLEEP:-570}"
"$(dirname "$0")/progress.sh"
