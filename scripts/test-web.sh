#!/usr/bin/env bash
# The browser end-to-end test (run by scripts/test.sh, so by CI): builds www/ with trunk, serves
# www/dist on 127.0.0.1 and drives Debian's headless Chromium (playwright-core) through the demo:
# on WebGPU (SwiftShader) and again with WebGPU disabled (CPU fallback), solving an example in
# latent and CoT mode; the answers must equal the native `kava solve` on the same model and
# settings, and latent must take fewer forward passes. Screenshots and results land in
# $KAVA_WEB_ARTIFACTS (default tests/browser/out). Installs what is missing (chromium, npm
# packages; build-web.sh installs the build tools); prints each step's wall time.
#   KAVA_BIN=path/to/kava   use this native binary for the reference (default: cargo run)
set -euo pipefail
cd "$(dirname "$0")/.."

# The tiny fixture, not the page's default KaVa demo model (e2e.mjs only checks that one is
# served and chosen by default): SwiftShader could not afford the demo model's decode steps.
MODEL=tests/fixtures/tiny-llama
QUESTION="A baker makes 24 muffins in the morning and 18 in the afternoon. She sells 30 of them. How many muffins are left?"
# CoT is capped at 32 tokens: WebGPU on SwiftShader (no GPU here) costs ~1 s per decode step of
# even the tiny fixture (a few hundred unfused dispatches each), so 256 would take minutes per run.
# 32 still exceeds latent mode's T + 16 = 19 passes.
MAXCOT=32
SHOW=3
OUT="${KAVA_WEB_ARTIFACTS:-tests/browser/out}"
mkdir -p "$OUT"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

start=$(date +%s); step_start=$start
step() {
  local now; now=$(date +%s)
  echo "test-web: $1 ($(( now - step_start )) s)"
  step_start=$now
}

scripts/build-web.sh
step "web build"

if ! [ -x /usr/bin/chromium ]; then
  echo "test-web: installing Debian's chromium"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
  step "installed chromium"
fi
if ! command -v node >/dev/null; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq nodejs npm >/dev/null
  step "installed node"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "test-web: playwright-core needs Node >= 20, found $(node --version)" >&2
  exit 1
fi
if ! [ -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
  step "npm ci (playwright-core)"
fi

# The native reference: same model, question and settings, on the CPU backend.
if [ -n "${KAVA_BIN:-}" ]; then
  if ! [ -x "$KAVA_BIN" ]; then
    echo "test-web: KAVA_BIN=$KAVA_BIN is not an executable (build it: cargo build -p kava)" >&2
    exit 1
  fi
  kava=("$KAVA_BIN")
else
  kava=(cargo run -p kava --features wgpu --locked --quiet --)
fi
"${kava[@]}" solve --model "$MODEL" --backend cpu --mode both --json --show-latents "$SHOW" \
  --max-cot-tokens "$MAXCOT" --question "$QUESTION" > "$OUT/native.json"
step "native reference ($OUT/native.json)"

node tests/browser/e2e.mjs --dist www/dist --reference "$OUT/native.json" --question "$QUESTION" \
  --model "models/$(basename "$MODEL")/" --maxcot "$MAXCOT" --show "$SHOW" --out "$OUT"
step "headless Chromium e2e"
echo "test-web: passed in $(( $(date +%s) - start )) s"
