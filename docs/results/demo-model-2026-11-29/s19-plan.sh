# Session 19's plan: the two levers on #7's bar (latent within 10 points of CoT) that earlier plans
# named and no session ran, each through the embedded recipe's four stages on 200 000 problems, so
# that each compares with the embedded model (kava-t2+++, latent 63.2 %, CoT mode 73.8 %, gap 10.6)
# on the same 500 held-out problems. nvidia-h200-x2; no seed to carry, so three calls.
# * GPU 0, tag `wide4`: a wider, deeper model within the issue's 20 MB: hidden 320, 7 layers,
#   10 heads / 5 KV heads (head_dim 32, as the embedded model's), MLP 960 (8.93 M parameters, 18.8
#   MB in f16 with its kava.safetensors; session 12's plan named it). Its own `cot` warm-up, then
#   kava-t2's four stages, each evaluated in both modes, the last finished one packaged (f32, three
#   parts of 12 MiB). If it is within 10 points at >= 5x fewer passes and beats the embedded model,
#   it is the candidate; its ablation rows are then a later session's.
# * GPU 1, tag `t3x4`: T = 3 (`kava-t3`: 6 forward passes, 4.8x fewer than CoT, below the issue's
#   5x), a diagnostic: does a third Jacobi iteration reach the 4- and 5-step problems at this
#   budget? Not packaged.
# Before the calls, here: the CUDA bundle (`.gpu3/bundle.tar.xz`; if this checkout lacks it,
# BINS=kava-train BUNDLE=.gpu3/bundle.tar.xz scripts/gpu/pack.sh, ~13 min). The tree (~36 MB) and
# the bundle (22.6 MB) fit one call's 64 MiB.
# Three calls, each at once after the one before (the machine goes back 30 s after a call), all
# with carry [".gpu3"]: scripts/demo-model/session.sh begin docs/results/demo-model-2026-11-29/s19-plan.sh
# (timeout 600), then `session.sh progress` (600), then `session.sh finish` (600); then give_back.
# Estimates (session 17-18 rates, H200): warm-up 3 000 x ~0.05-0.07 s; kava-t2 0.14-0.16 s/step at
# 6 layers x 256, so ~0.17-0.2 s/step at 7 x 320 (launch-bound: layers count more than width):
# 6 000 steps in 1 000-1 200 s; T = 3 ~0.18 s/step: ~1 100 s. Each pipeline stops training at its
# deadline; finish evaluates and packages what a cut pipeline finished.
# Checked here (session 18) on this CPU: s19-plan-check.sh -> s19-plan-check.txt runs this file,
# plus one line that shrinks only COMMON (TRAIN_N=300, 2 steps per stage and warm-up, MB=4,
# EVAL_N=4), through session.sh begin + finish. The 7 x 320 model is initialised, both pipelines
# run and evaluate every stage (wide4 in both modes), wide4 packages its fourth stage, and finish
# collects everything with nothing to salvage. The package is f16 there, because the `kava` binary
# is present; the bundle has none, so it is f32 on the device. The packaged model's files total
# 18 762 898 bytes, within the 20 MB that tests/tests/integration/demo.rs checks. It was trained
# for 2 steps, so its answers are noise, but it solves a question identically on the CPU and on
# wgpu (lavapipe): the same answer text and the same nearest tokens of every latent.
TAG0=wide4 TAG1=t3x4
COMMON='TRAIN_N=200000 LR=1e-3 STEPS=1500 EXTEND_STEPS=1500 JOBS=1 METHODS=""'
ENV0='HIDDEN=320 LAYERS=7 HEADS=10 KV_HEADS=5 INTERMEDIATE=960 VARIANTS="kava-t2" PACKAGE_RUN=kava-t2 STAGES=4'
ENV1='VARIANTS="kava-t3" STAGES=4'
PHASES0="prepare warmup methods extend evalall package"
PHASES1="prepare warmup methods extend evalall"
DEADLINE_S0=1500
DEADLINE_S1=1450
UNTIL=1540
