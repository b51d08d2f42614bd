# Session 19's plan as run: only `nvidia-h200` (one GPU) was lent this session, not the
# `nvidia-h200-x2` that s19-plan.sh was written for. Runs that share a GPU slow each other (two
# 12-layer runs per GPU went 0.38 s/step each, three at micro-batch 128 0.8-1.2 s/step; the results
# README's sessions 14-15), and wide4 alone needs ~1 200 of the session's ~1 500 s of training, so
# the two pipelines side by side would both be cut short of the 4x budget. So this runs s19-plan.sh's GPU 0 pipeline alone, unchanged: `wide4`,
# the 7 x 320 model within 20 MB, the one lever that could meet #7's bar at >= 5x fewer passes.
# The T = 3 diagnostic (`t3x4`, below 5x) is left to a session with two GPUs.
# Calls as s19-plan.sh says, with this file as the PLAN; session.sh runs only GPU 0 when TAG1 is empty.
# Sourced from the repository root, where session.sh runs (begin, and every later call's load_state).
# shellcheck disable=SC1091
source docs/results/demo-model-2026-11-29/s19-plan.sh
TAG1=
