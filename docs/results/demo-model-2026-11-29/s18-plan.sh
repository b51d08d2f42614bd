# Session 18's plan (a draft: written with s17-plan.sh, to be checked against session 17's results —
# if codi's third stage was cut, its kept run is codi-s2 and SEED_RUNS names codi+). Only if
# session 17's 4x kava-t2 is within 10 points of its CoT mode (else the ablation rows wait).
# nvidia-h200-x2; four calls, each at once after the one before:
#   0. carry [".gpu5"] (session 17's codi-s3.tar.xz.part-*, copied there from its $OUT):
#      mkdir -p /root/seed && cp .gpu5/codi-s3.tar.xz.part-* /root/seed/ && ls -l /root/seed   (timeout 60)
#      (the 34.4 MB tree, the 22.6 MB bundle and the 18.9 MB model exceed one call's 64 MiB)
#   1-3. carry [".gpu3"]: scripts/demo-model/session.sh begin docs/results/demo-model-2026-11-29/s18-plan.sh,
#      then progress, then finish (timeouts 600, 600, 560); then give_back.
# The rest of the 4x table on 200 000 problems (session 17's recipe):
# * GPU 0: codi's fourth stage from the carried third (SEED_RUNS; STAGES=4 trains only it), beside
#   No-CoT through its four stages from its own warm-up (codi's stage 4 starts when No-CoT's third
#   has ended: ~175 + 4 500 x ~0.09 s, then 1 500 x ~0.3 s: ~1 100 s with the evaluations).
# * GPU 1: pccot-t2 through its four stages (~175 + 6 000 x 0.154 s = ~1 100 s).
TAG0=cn4 TAG1=pcc4
COMMON='TRAIN_N=200000 LR=1e-3 STEPS=1500 EXTEND_STEPS=1500'
ENV0='METHODS="codi nocot" VARIANTS="" STAGES=4 JOBS=2 SEED_RUNS="codi++=/root/seed/codi-s3.tar.xz.part-"'
ENV1='METHODS="" VARIANTS="pccot-t2" STAGES=4 JOBS=1'
PHASES0="prepare warmup methods extend evalall"
PHASES1="prepare warmup methods extend evalall"
DEADLINE_S=1400
UNTIL=1450
