#!/usr/bin/env bash
# Session 17, device call 5, verbatim (the same machine): the fifth stage in CoT and latent mode with
# per-problem predictions, and its model (f32) brought back in two parts.
cd /root/kava4-work && for m in cot latent; do CUDA_VISIBLE_DEVICES=1 /root/kt/bin/kava-train eval --model runs/kava-t2++++/final --data data/test.txt --mode $m --limit 500 --batch-size 64 --backend cuda --predictions $OUT/s5-$m.jsonl 2>&1 | grep '^kava-train eval'; done; tar -C runs/kava-t2++++ -cf - final | xz -T0 -6 | split -b 12M - $OUT/kava-t2-s5.tar.xz.part-; ls -l $OUT
