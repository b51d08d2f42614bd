#!/usr/bin/env bash
# The test suite, from a fresh machine: installs what the tests need, then runs them.
#   - Mesa's lavapipe Vulkan driver, so the wgpu parity tests run without a GPU.
#   - python3, for the test of scripts/demo-model/paired.py (kava-train/tests/paired_script.rs).
#   - for the browser test (scripts/test-web.sh): trunk, wasm-bindgen-cli, Debian's chromium and
#     the npm package playwright-core, each only when missing.
# Set KAVA_SKIP_WGPU=1 to test on the CPU backend only; KAVA_SKIP_WEB=1 skips the browser test
# (loudly; CI never sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() { # WHAT PACKAGE...
  echo "test.sh: installing $1"; shift
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@" >/dev/null
}
if [ "${KAVA_SKIP_WGPU:-0}" != 1 ] && ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  apt_install "the lavapipe Vulkan driver (mesa-vulkan-drivers)" mesa-vulkan-drivers libvulkan1
fi
command -v python3 >/dev/null || apt_install python3 python3
# wgpu warns without it; harmless, but keep the log clean.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

cargo test --workspace --locked "$@"

# The browser demo end to end in headless Chromium, against the native CLI just built.
if [ "${KAVA_SKIP_WEB:-0}" = 1 ]; then
  echo "test.sh: SKIPPING the browser end-to-end test (KAVA_SKIP_WEB=1)" >&2
else
  KAVA_BIN="${CARGO_TARGET_DIR:-target}/debug/kava" scripts/test-web.sh
fi
