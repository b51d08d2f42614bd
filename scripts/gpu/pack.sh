#!/usr/bin/env bash
# Builds kava's CUDA binaries on THIS machine (the GPU machine has no Rust toolchain) and packs
# them for it: `kava` and `evict-bench` in one xz archive with a 256 MiB dictionary, so the two
# LLVM-heavy static binaries compress together (~2 × 120 MB → one ~25 MB file). Output: .gpu/
# (git-ignored through .git/info/exclude). Optional: MODEL=path.gguf also splits that model into 36 MiB
# .gpu/model.part-* chunks small enough for the device tool's 64 MiB transfer limit.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
# This workplace cannot download the LLVM bundle burn's CUDA backend wants; the shared recipe
# installs a stand-in. Elsewhere cargo fetches its own and this is skipped.
if [ -f ../shared/tools/cuda-build-env.sh ]; then source ../shared/tools/cuda-build-env.sh; fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/cuda}
cargo build --release --locked -p kava -p shaders --features kava/cuda,shaders/cuda --bins
rm -rf .gpu/stage && mkdir -p .gpu/stage
cp "$CARGO_TARGET_DIR/release/kava" "$CARGO_TARGET_DIR/release/evict-bench" .gpu/stage/
strip .gpu/stage/*
tar -C .gpu/stage -cf - kava evict-bench | xz -T2 --lzma2=preset=6,dict=256MiB > .gpu/bundle.tar.xz
ls -l .gpu/bundle.tar.xz
if [ -n "${MODEL:-}" ]; then
  rm -f .gpu/model.part-*
  split -b 36M -d "$MODEL" .gpu/model.part-
  ls -l .gpu/model.part-*
fi
