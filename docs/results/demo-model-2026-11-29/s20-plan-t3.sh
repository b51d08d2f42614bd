# A plan ready for the T = 3 diagnostic that session 19 could not run (`t3x4` of s19-plan.sh, its
# GPU 1 pipeline, unchanged) on a machine of one GPU: kava-t3 (6 forward passes, 4.8x fewer than
# CoT, below #7's 5x) through the embedded recipe's four stages from its own `cot` warm-up on the
# same 200 000 problems; each stage evaluated in latent and CoT mode (PACKAGE_RUN; no package
# phase) on the same 500 held-out problems, so that each stage has its own gap. It
# answers whether a third Jacobi iteration reaches the 4- and 5-step problems at this budget, which
# matters only if #7's owner relaxes the 5x to 4.8x. kava-t3 at ~0.18 s/step (s19-plan.sh's estimate), so
# 3 000 x 0.06 + 6 000 x 0.18 ~ 1 260 s: within DEADLINE_S1 (1 450) alone on one H200.
# Calls as s19-plan.sh says (kind nvidia-h200, carry [".gpu3"]), with this file as the PLAN.
# Checked here with a tiny budget (session 19): PLAN_FILE=s20-plan-t3.sh s19-plan-check.sh -> s20-plan-t3-check.txt.
# shellcheck disable=SC1091
source docs/results/demo-model-2026-11-29/s19-plan.sh
TAG0=$TAG1 ENV0="$ENV1 PACKAGE_RUN=kava-t3" PHASES0=$PHASES1 DEADLINE_S0=$DEADLINE_S1
TAG1=
