# Session 18's plan: the rest of the 4x table on 200 000 problems (session 17's recipe), so that
# the embedded model (session 17's kava-t2, its fourth stage; installed in session 17) has its
# No-CoT, pccot and codi rows at its own budget. nvidia-h200-x2.
# Nothing git-ignored survives from one session to the next (session 17 began in a new checkout:
# .gpu3, .gpu4 and every build were gone), so what session 18 needs is committed:
#   s17-4x/carry/codi-s3-f16.tar.xz (codi's third stage, f16: the f32 model rounded, which scores
#   the same 290/500 on this CPU as the f32 one on CUDA: s17-4x/cpu-checks.txt).
# Before the calls, here:
#   * the CUDA bundle: BINS=kava-train BUNDLE=.gpu3/bundle.tar.xz scripts/gpu/pack.sh (~13 min);
#   * mkdir -p .gpu5 && cp docs/results/demo-model-2026-11-29/s17-4x/carry/codi-s3-f16.tar.xz .gpu5/
#     && echo /.gpu5/ >> .git/info/exclude, then `git rm -r docs/results/demo-model-2026-11-29/s17-4x/carry`
#     and commit: the tree (~36 MB) and the bundle (22.6 MB) fit one call's 64 MiB, the carry beside them not.
# Four calls, each at once after the one before (the machine goes back 30 s after a call):
#   0. carry [".gpu5"]: mkdir -p /root/seed && cp .gpu5/codi-s3-f16.tar.xz /root/seed/ && ls -l /root/seed   (timeout 60)
#   1-3. carry [".gpu3"]: scripts/demo-model/session.sh begin docs/results/demo-model-2026-11-29/s18-plan.sh,
#      then progress, then finish (timeouts 600, 600, 560); then give_back.
# * GPU 0: codi's fourth stage from the carried third (SEED_RUNS; STAGES=4 trains only it), beside
#   No-CoT through its four stages from its own warm-up (codi's stage 4 starts when No-CoT's third
#   has ended: ~20 + 175 + 4 500 x ~0.07 s, then 1 500 x ~0.3 s: ~1 000 s with the evaluations).
# * GPU 1: pccot-t2 through its four stages (~20 + 175 + 6 000 x 0.154 s = ~1 120 s, + 4 x 2 evaluations).
# Each GPU's warm-up is the same recipe as session 17's (3 000 x 64 cot on the same 200 000 problems);
# CUDA training is not bitwise repeatable, so it is a sibling of kava-t2's warm-up, not a copy.
TAG0=cn4 TAG1=pcc4
COMMON='TRAIN_N=200000 LR=1e-3 STEPS=1500 EXTEND_STEPS=1500'
ENV0='METHODS="codi nocot" VARIANTS="" STAGES=4 JOBS=2 SEED_RUNS="codi++=/root/seed/codi-s3-f16.tar.xz"'
ENV1='METHODS="" VARIANTS="pccot-t2" STAGES=4 JOBS=1'
PHASES0="prepare warmup methods extend evalall"
PHASES1="prepare warmup methods extend evalall"
DEADLINE_S=1400
UNTIL=1450
