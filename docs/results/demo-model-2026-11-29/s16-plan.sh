# The next device session's plan (nvidia-h200-x2, carry .gpu3): three calls, each at once after the
# one before (the machine goes back 30 s after a call):
#   scripts/demo-model/session.sh begin docs/results/demo-model-2026-11-29/s16-plan.sh   (timeout 600)
#   scripts/demo-model/session.sh progress                                                (timeout 600)
#   scripts/demo-model/session.sh finish                                                  (timeout 540)
# then give_back. What it runs: the 6-layer model's whole table at the 2x budget (two stages of
# 1 500 x 64) at lr 5e-4 — the embedded recipe's rate before session 13, which scored 53.2 % at
# 1 500 steps against lr 1e-3's 50.6 % (No-CoT 46.2 against 42.4 %) — each pipeline from its own
# committed warm-up (3 000 x 64 at lr 1e-3). If kava-t2's latent mode is within 10 points of its
# CoT mode there and beats No-CoT, it becomes the embedded model with this table.
# Estimated (session 14's rates alone on a GPU: codi 0.26 s/step, kava 0.16, pccot 0.14; two runs
# share one GPU here): GPU 0 ~1 150 s, GPU 1 ~1 000 s; session.sh finish salvages a stage-1 table
# if either is late.
TAG0=lr5a TAG1=lr5b
COMMON='LR=5e-4 STEPS=1500 EXTEND_STEPS=1500 SUFFIX=+'
ENV0='METHODS="codi nocot" VARIANTS="" JOBS=2'
ENV1='METHODS="" VARIANTS="kava-t2 pccot-t2" PACKAGE_RUN=kava-t2 JOBS=2'
PHASES0="prepare warmup methods extend eval"
PHASES1="prepare warmup methods extend eval package"
DEADLINE_S=1380
