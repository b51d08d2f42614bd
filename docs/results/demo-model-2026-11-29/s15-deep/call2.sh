#!/usr/bin/env bash
# Session 15, device call 2: the pipelines run on; progress after SLEEP seconds.
sleep "${SLEEP:-575}"
"$(dirname "$0")/progress.sh"
