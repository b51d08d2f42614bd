#!/usr/bin/env bash
# The test suite, from a fresh machine: installs what the tests need, then runs them.
#   - Mesa's lavapipe Vulkan driver, so the wgpu parity tests run without a GPU.
# Set KAVA_SKIP_WGPU=1 to test on the CPU backend only.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${KAVA_SKIP_WGPU:-0}" != 1 ] && ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  echo "test.sh: installing the lavapipe Vulkan driver (mesa-vulkan-drivers)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
# wgpu warns without it; harmless, but keep the log clean.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

cargo test --workspace --locked "$@"
