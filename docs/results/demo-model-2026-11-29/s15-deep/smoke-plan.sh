# A smoke test of scripts/demo-model/session.sh on the device (session 15's last 382 s): a tiny
# model, pipeline `sa` ends on its own, `sb`'s second stage is stopped by `finish` and salvaged.
#   SLEEP=40 scripts/demo-model/session.sh begin docs/results/demo-model-2026-11-29/s15-deep/smoke-plan.sh
#   UNTIL=60 scripts/demo-model/session.sh finish
TAG0=sa TAG1=sb
COMMON='TRAIN_N=2000 HIDDEN=64 LAYERS=2 HEADS=2 KV_HEADS=1 INTERMEDIATE=128 WARMUP_STEPS=20 STEPS=20 EVAL_N=50 SUFFIX=+'
ENV0='METHODS="nocot" VARIANTS="" JOBS=1 EXTEND_STEPS=20'
ENV1='METHODS="nocot" VARIANTS="kava-t2" PACKAGE_RUN=kava-t2 JOBS=2 EXTEND_STEPS=100000'
PHASES0="prepare warmup methods extend eval"
PHASES1="prepare warmup methods extend eval package"
DEADLINE_S=300
