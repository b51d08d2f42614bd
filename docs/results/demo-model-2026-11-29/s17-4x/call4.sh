#!/usr/bin/env bash
# Session 17, device call 4, verbatim (the same machine, after `session.sh finish`): a fifth stage of
# kava-t2 (1 500 x 64 at lr 1e-3, from the fourth) on GPU 1 with the 411 s of device time left,
# evaluated in latent mode (train.sh eval of a VARIANTS run evaluates latent only; call 5 adds CoT).
# Its training log did not come back (the device tool refuses names with '+').
cd /root/kava4-snap && P="env TRAIN_N=200000 LR=1e-3 STEPS=1500 EXTEND_STEPS=1500 JOBS=1 METHODS= VARIANTS=kava-t2 STAGES=5 WORK=/root/kava4-work KAVA_TRAIN=/root/kt/bin/kava-train BACKEND=cuda CUDA_VISIBLE_DEVICES=1"; timeout 330 $P scripts/demo-model/train.sh extend 2>&1 | grep -v '^step' | tail -5; $P SUFFIX=++++ scripts/demo-model/train.sh eval 2>&1 | grep -v '^step' | tail -8; mkdir -p $OUT/s5 && cp /root/kava4-work/logs/kava-t2++++.log $OUT/s5/ 2>/dev/null; ls /root/kava4-work/logs | tail -3
