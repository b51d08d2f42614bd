#!/usr/bin/env bash
# Latent vs CoT time to answer in headless Chromium (WebGPU on SwiftShader here, and the CPU
# fallback): builds www/dist if needed, then runs tests/browser/timing.mjs. Not a test.
#   scripts/web-timing.sh [timing.mjs options, e.g. --questions 8 --maxcot 256 --backends webgpu,cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f www/dist/index.html ] || scripts/build-web.sh
[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
echo "web-timing: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
node tests/browser/timing.mjs --dist www/dist "$@"
