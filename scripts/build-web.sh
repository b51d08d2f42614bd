#!/usr/bin/env bash
# Builds the browser demo (kava-web → wasm, www/ → www/dist) from a clean machine, offline:
#   - the wasm32-unknown-unknown target (rustup),
#   - wasm-bindgen-cli of exactly the wasm-bindgen version in Cargo.lock (cargo install),
#   - trunk 0.21.14 (cargo install; 0.22 needs a newer rustc).
# No wasm-opt: Debian's binaryen 108 breaks wasm-bindgen 0.2.130's output (see www/index.html).
# Each tool is installed only when missing; each step prints its wall time. Serve www/dist with
# any static server (`python3 -m http.server -d www/dist`) and open it in a WebGPU browser.
#   scripts/build-web.sh [--dev]     # --dev: cargo's dev profile instead of release
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
profile=(--release)
[ "${1:-}" = --dev ] && profile=()

step_start=$(date +%s)
step() {
  local now; now=$(date +%s)
  echo "build-web: $1 ($(( now - step_start )) s)"
  step_start=$now
}
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
  step "installed the wasm32-unknown-unknown target"
fi

# wasm-bindgen's CLI must match the library version exactly, or its output does not load.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]; then
  echo "build-web: installing wasm-bindgen-cli $wb_version"
  # --locked first; the registry mirror here lacks one crate of its lock file (webpki-roots
  # 1.0.11), in which case the dependencies are resolved afresh.
  cargo install wasm-bindgen-cli --version "$wb_version" --locked \
    || cargo install wasm-bindgen-cli --version "$wb_version"
  step "installed wasm-bindgen-cli $wb_version"
fi

if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  echo "build-web: installing trunk $TRUNK_VERSION (15-25 min on 2 cores)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
  step "installed trunk $TRUNK_VERSION"
fi

(cd www && trunk build --offline "${profile[@]}")
step "trunk build ${profile[*]:-(dev)}"
wasm=$(ls www/dist/*.wasm)
echo "build-web: www/dist ready ($(du -h "$wasm" | cut -f1) of wasm: $wasm)"
