#!/usr/bin/env bash
# Packs everything a training run on a GPU server without Rust or network needs, built on THIS machine:
# the CUDA binaries (scripts/gpu/pack.sh), the SmolLM2-135M GGUF, the GSM8k files, the PyTorch
# reference script and the peft wheel, as one tar split into chunks of at most 56 MiB, one per
# directory .gpu1/ .gpu2/ … (git-ignored), so that each transfer to the server carries one (for a
# limit of 64 MiB per transfer). scripts/gpu/train.sh stash|train|torch runs there. DATA holds
# gsm8k/train.jsonl, gsm8k/test.jsonl and gsm8k-aug/valid.txt (README: "Data and models").
#   MODEL=path/to/SmolLM2-135M-Instruct.Q4_1.gguf DATA=path/to/data scripts/gpu/pack-train.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${MODEL:?set MODEL to the SmolLM2-135M-Instruct Q4_1 GGUF}"
DATA=${DATA:-../shared/data}
if [ "${SKIP_BUILD:-0}" != 1 ]; then scripts/gpu/pack.sh; fi
[ -d .whl ] || { echo "pack-train: fetch the peft wheel into .whl/ first (see scripts/gpu/README.md)" >&2; exit 1; }
stage=$(mktemp -d)
mkdir -p "$stage/data"
cp .gpu1/bundle.tar.xz "$stage/"
cp "$MODEL" "$stage/model.gguf"
cp "$DATA/gsm8k/train.jsonl" "$DATA/gsm8k/test.jsonl" "$DATA/gsm8k-aug/valid.txt" "$stage/data/"
cp .whl/*.whl "$stage/"
tar -C "$stage" -cf "$stage.tar" .
rm -rf "$stage" .gpu[1-9]/chunk-*
split -b 56M -d "$stage.tar" "$stage.chunk-"
i=1
for c in "$stage".chunk-*; do
  mkdir -p ".gpu$i"
  grep -qx "/.gpu$i/" .git/info/exclude || echo "/.gpu$i/" >> .git/info/exclude
  mv "$c" ".gpu$i/chunk-$(printf %02d $i)"
  i=$((i + 1))
done
rm -f "$stage.tar"
ls -l .gpu*/chunk-*
