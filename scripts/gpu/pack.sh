#!/usr/bin/env bash
# Builds kava's CUDA binaries on THIS machine, for a GPU server without a Rust toolchain, and packs
# them for it: `kava`, `kava-train` and `evict-bench` in one xz archive with a 256 MiB dictionary, so the two
# LLVM-heavy static binaries compress together (~2 × 120 MB → one ~25 MB file). Output: .gpu1/
# (git-ignored through .git/info/exclude). Optional: MODEL=path.gguf also splits that model into
# 36 MiB parts — the first beside the bundle in .gpu1/, the rest in .gpu2/ — so that each of two
# transfers stays under a 64 MiB transfer limit. FEATURES adds cargo features (e.g.
# FEATURES=kava-train/fusion) and BUNDLE names the archive (default .gpu1/bundle.tar.xz).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .git/info
for d in /.gpu1/ /.gpu2/; do grep -qx "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude; done
# burn's CUDA backend downloads an LLVM bundle at build time; on a build machine without network,
# an environment script placed at ../shared/tools/cuda-build-env.sh can provide a stand-in.
# Elsewhere cargo fetches its own and this is skipped.
if [ -f ../shared/tools/cuda-build-env.sh ]; then source ../shared/tools/cuda-build-env.sh; fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/cuda}
# evict-bench times the eviction kernels, which a fusion build does not use: leave it out then.
# BINS picks the binaries: `BINS=kava-train` (~23 MB) is enough for every phase of
# scripts/demo-model/train.sh but `iterations`, where the whole bundle does not fit one transfer.
read -r -a bins <<< "${BINS:-kava kava-train evict-bench}"
[[ "${FEATURES:-}" == *fusion* ]] && bins=(kava kava-train)
cargo build --release --locked -p kava -p shaders -p kava-train --features "kava/cuda,shaders/cuda,kava-train/cuda${FEATURES:+,$FEATURES}" "${bins[@]/#/--bin=}"
stage=$(mktemp -d)
for b in "${bins[@]}"; do cp "$CARGO_TARGET_DIR/release/$b" "$stage/"; done
strip "$stage"/*
mkdir -p .gpu1 .gpu2
BUNDLE=${BUNDLE:-.gpu1/bundle.tar.xz}
mkdir -p "$(dirname "$BUNDLE")"
# The bundle's folder stays out of git too, so that a copy of the working tree does not carry it twice.
case $BUNDLE in
  /*) ;;
  */*) d="/${BUNDLE%%/*}/"; grep -qx "$d" .git/info/exclude || echo "$d" >> .git/info/exclude ;;
esac
tar -C "$stage" -cf - "${bins[@]}" | xz -T2 --lzma2=preset=6,dict=256MiB > "$BUNDLE"
rm -rf "$stage"
ls -l "$BUNDLE"
if [ -n "${MODEL:-}" ]; then
  rm -f .gpu1/model.part-* .gpu2/model.part-*
  split -b 36M -d "$MODEL" .gpu2/model.part-
  mv .gpu2/model.part-00 .gpu1/
  ls -l .gpu1 .gpu2
fi
