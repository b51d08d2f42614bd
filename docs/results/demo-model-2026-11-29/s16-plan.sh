# The next device session's plan (nvidia-h200-x2, carry .gpu3): three calls, each at once after the
# one before (the machine goes back 30 s after a call):
#   scripts/demo-model/session.sh begin docs/results/demo-model-2026-11-29/s16-plan.sh   (timeout 600)
#   scripts/demo-model/session.sh progress                                                (timeout 600)
#   scripts/demo-model/session.sh finish                                                  (timeout 540)
# then give_back. Two levers for the latent mode at the 2x budget (two stages of 1 500 x 64), each
# pipeline from its own committed warm-up (3 000 x 64 at lr 1e-3), the 6-layer model:
# * GPU 0, M = 44 latents (kava-t2m44) with its ablation (pccot-t2m44), lr 1e-3: nothing evicted
#   from any trace (the longest has 43 tokens) — the 4- and 5-step ones, where the gap to CoT is, are the only ones longer than M = 24 (87 %
#   of the 4-step, all 5-step ones; the longest 43: s15-deep/trace-lengths-aug.txt); M = 12 -> 24
#   gave +5.6 points at 1x (session 12); the passes stay 5. With the committed No-CoT (50.4 %) and codi (53.4 %) of
#   the same recipe and budget (sessions 13-14), the table is complete.
# * GPU 1, lr 5e-4 (kava-t2 and No-CoT): the rate of the embedded recipe before session 13, which
#   at 1x scored 53.2 % against lr 1e-3's 50.6 % (No-CoT 46.2 against 42.4 %); its pccot and
#   codi rows follow in a later session if it is the better one.
# Either becomes the embedded model if its latent mode comes within 10 points of its CoT mode with
# its table complete. Estimated from session 13's three latent runs on one GPU (~480 s per stage
# of 1 500) and an M = 44 kava step costing 22 % more than an M = 24 one (this 2-core CPU, 6 steps
# of 16 from the embedded model: 2.47 against 2.03 s/step): GPU 0 ~1 150-1 300 s, GPU 1 ~850 s;
# `finish` salvages a stage-1 table if either is late.
TAG0=m44 TAG1=lr5
COMMON='STEPS=1500 EXTEND_STEPS=1500 SUFFIX=+ JOBS=2'
ENV0='LR=1e-3 METHODS="" VARIANTS="kava-t2m44 pccot-t2m44" PACKAGE_RUN=kava-t2m44'
ENV1='LR=5e-4 METHODS="nocot" VARIANTS="kava-t2" PACKAGE_RUN=kava-t2'
PHASES0="prepare warmup methods extend eval package"
PHASES1="prepare warmup methods extend eval package"
DEADLINE_S=1380
