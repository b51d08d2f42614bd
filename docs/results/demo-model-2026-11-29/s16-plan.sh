# The next device session's plan (nvidia-h200-x2, carry .gpu3): three calls, each at once after the
# one before (the machine goes back 30 s after a call):
#   scripts/demo-model/session.sh begin docs/results/demo-model-2026-11-29/s16-plan.sh   (timeout 600)
#   scripts/demo-model/session.sh progress                                                (timeout 600)
#   scripts/demo-model/session.sh finish                                                  (timeout 540)
# then give_back. M = 44 latents at the 2x budget (two stages of 1 500 x 64 at lr 1e-3), the 6-layer
# model, each pipeline from its own committed warm-up (3 000 x 64 at lr 1e-3): nothing evicted
# from any aug trace (the longest has 43 tokens). The 4- and 5-step problems, where the gap to CoT
# is, are the only ones whose traces are longer than M = 24 (87 % of the 4-step, all 5-step ones:
# s15-deep/trace-lengths-aug.txt), and there the embedded model's student misses its teacher's
# cache 3x as much as where its trace fits (s15-deep/kv-match-by-steps.txt). The passes stay 5.
# * GPU 0: kava-t2m44 and its ablation pccot-t2m44 (the same latents, no KV loss); with the
#   committed No-CoT (50.4 %) and codi (53.4 %) of the same recipe and budget the table is complete.
# * GPU 1: kava-t2m44 with another seed, and kava-t2 (M = 24, the embedded recipe) again: the
#   M = 24 control and the run-to-run spread in the same session.
# kava-t2m44 becomes the embedded model if its latent mode comes within 10 points of its CoT mode
# and the other seed agrees. Estimated from session 13's `kvall` pipeline (three latent runs and
# No-CoT on one H200, one stage of 1 500 with the warm-up and evaluations: 723 s,
# s13-lr1e-3-stages/kvall/gpu.log) and an M = 44 kava step costing 23 % more than an M = 24 one
# (this 2-core CPU, 6 steps of 16: 2.47 against 2.01 s/step, s15-deep/m44-step-cost-cpu.txt):
# ~1 150-1 300 s per GPU;
# `finish` salvages a stage-1 table if either is late. (lr 5e-4, 2.6 points better at 1x, waits.)
TAG0=m44 TAG1=m44b
COMMON='LR=1e-3 STEPS=1500 EXTEND_STEPS=1500 SUFFIX=+ JOBS=2 METHODS=""'
ENV0='VARIANTS="kava-t2m44 pccot-t2m44" PACKAGE_RUN=kava-t2m44'
ENV1='VARIANTS="kava-t2m44-s43 kava-t2" PACKAGE_RUN=kava-t2m44-s43'
PHASES0="prepare warmup methods extend eval package"
PHASES1="prepare warmup methods extend eval package"
DEADLINE_S=1380
