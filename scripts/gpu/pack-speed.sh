#!/usr/bin/env bash
# Packs what scripts/gpu/smollm2-speed.sh needs into transfers of at most LIMIT bytes each
# (default 50 MB, for a limit of 64 MiB per transfer that also carries the repository's tracked
# files): the plain CUDA bundle (.gpu1/bundle.tar.xz), the fusion one (.gpu3/bundle.tar.xz,
# FEATURES=kava-train/fusion BUNDLE=.gpu3/bundle.tar.xz scripts/gpu/pack.sh), and one tar of the
# SmolLM2-135M GGUF, the GSM8k files and the peft wheel, split so that chunk-01 fills .gpu1 up to
# LIMIT, chunk-02 fills .gpu3, and the rest goes in LIMIT-sized chunks to .gpu2, .gpu4, .gpu5 ….
# FUSION=0 leaves the fusion bundle out (then chunk-02 is a full LIMIT-sized chunk in .gpu2/ and
# the rest follow in .gpu4/, .gpu5/ …) — what scripts/gpu/train.sh needs for the long SmolLM2 run.
#   MODEL=path/to/SmolLM2-135M-Instruct.Q4_1.gguf DATA=path/to/data scripts/gpu/pack-speed.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${MODEL:?set MODEL to the SmolLM2-135M-Instruct Q4_1 GGUF}"
DATA=${DATA:-../shared/data}
LIMIT=${LIMIT:-50000000}
FUSION=${FUSION:-1}
bundles=(.gpu1/bundle.tar.xz)
[ "$FUSION" = 1 ] && bundles+=(.gpu3/bundle.tar.xz)
for b in "${bundles[@]}"; do [ -s "$b" ] || { echo "pack-speed: $b missing (scripts/gpu/pack.sh)" >&2; exit 1; }; done
[ -d .whl ] || { echo "pack-speed: fetch the peft wheel into .whl/ first (scripts/gpu/README.md)" >&2; exit 1; }
stage=$(mktemp -d)
mkdir -p "$stage/data"
cp "$MODEL" "$stage/model.gguf"
cp "$DATA/gsm8k/train.jsonl" "$DATA/gsm8k/test.jsonl" "$DATA/gsm8k-aug/valid.txt" "$stage/data/"
cp .whl/*.whl "$stage/"
tar -C "$stage" -cf "$stage.tar" .
rm -rf "$stage" .gpu[1-9]/chunk-*
size() { stat -c %s "$1"; }
c1=${C1:-$(( LIMIT - $(size .gpu1/bundle.tar.xz) ))}  # C1=0: the plain bundle already went in an earlier call
piece() { dd if="$stage.tar" of="$3" bs=1M iflag=skip_bytes,count_bytes skip="$1" count="$2" status=none; }
[ "$c1" -gt 0 ] && piece 0 "$c1" .gpu1/chunk-01
if [ "$FUSION" = 1 ]; then
  c2=$(( LIMIT - $(size .gpu3/bundle.tar.xz) ))
  piece "$c1" "$c2" .gpu3/chunk-02
else
  c2=$LIMIT
  mkdir -p .gpu2 && piece "$c1" "$c2" .gpu2/chunk-02
fi
off=$(( c1 + c2 )); i=3
dirs=(2 4 5 6 7 8 9)
[ "$FUSION" = 1 ] || dirs=(4 5 6 7 8 9)
for d in "${dirs[@]}"; do
  [ "$off" -lt "$(size "$stage.tar")" ] || break
  mkdir -p ".gpu$d"
  grep -qx "/.gpu$d/" .git/info/exclude || echo "/.gpu$d/" >> .git/info/exclude
  piece "$off" "$LIMIT" ".gpu$d/chunk-$(printf %02d $i)"
  off=$(( off + LIMIT )); i=$(( i + 1 ))
done
[ "$off" -ge "$(size "$stage.tar")" ] || { echo "pack-speed: too big for nine calls" >&2; exit 1; }
rm -f "$stage.tar"
ls -l .gpu*/
