# The next device session's plan (nvidia-h200-x2, carry .gpu3): three calls, each at once after the
# one before (the machine goes back 30 s after a call):
#   scripts/demo-model/session.sh begin docs/results/demo-model-2026-11-29/s17-plan.sh   (timeout 600)
#   scripts/demo-model/session.sh progress                                                (timeout 600)
#   scripts/demo-model/session.sh finish                                                  (timeout 560)
# then give_back. The first half of the 4x table on 200 000 training problems (session 16: at 3x
# on 50 000 the model has seen each problem ~10 times and scores 5.8 points better on training
# problems than on test ones in latent mode; s16-m44/cpu-checks.txt). The 4x budget: the warm-up
# (3 000 x 64, cot) and four stages of 1 500 x 64 at lr 1e-3, 2.9 epochs in all.
# * GPU 1: kava-t2 (the embedded recipe, M = 24, T = 2) through its four stages, each stage
#   evaluated in latent and CoT mode (evalall), the fourth packaged: the candidate embedded model,
#   chosen in advance (no selection among runs on the test set).
# * GPU 0: codi's first three stages (KEEP_RUNS brings back the last it finished, f32, for
#   session 18: its fourth stage from SEED_RUNS, with No-CoT and pccot-t2 at 4x).
# Estimate (session 16's metrics, one run alone on an H200: kava-t2 0.157-0.174 s/step, warm-up
# 0.058 s/step; session 14's codi alone 0.256 s/step, s14-ablation-2x/metrics/codi+.jsonl.gz):
# kava-t2 ~20 s prepare + 175 s warm-up + 6 000 x 0.166 = ~1 190 s, + 8 evaluations ~60 s;
# codi ~20 + 175 + 4 500 x 0.256 = ~1 350 s, + 3 evaluations. A stage cut by the deadline is
# salvaged by `finish` (the stages before it evaluated, codi's last finished one kept).
TAG0=codi4 TAG1=kava4
COMMON='TRAIN_N=200000 LR=1e-3 STEPS=1500 EXTEND_STEPS=1500 JOBS=1'
ENV0='METHODS="codi" VARIANTS="" STAGES=3 KEEP_RUNS=codi'
ENV1='METHODS="" VARIANTS="kava-t2" PACKAGE_RUN=kava-t2 STAGES=4'
PHASES0="prepare warmup methods extend evalall"
PHASES1="prepare warmup methods extend evalall package"
DEADLINE_S0=1440
DEADLINE_S1=1400
UNTIL=1470
