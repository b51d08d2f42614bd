#!/usr/bin/env bash
# Runs kava's cargo-fuzz targets — gguf_parse, safetensors_parse, config_json, kava_json,
# data_readers — for RUNS executions each (default 1 000 000) and prints, per target, the
# executions libFuzzer counted and whether it crashed. Stable Rust works: cargo-fuzz's nightly
# flags are allowed through RUSTC_BOOTSTRAP=1. Needs `cargo install cargo-fuzz`.
# Usage: kava/fuzz/run.sh [TARGET...]   (RUNS=N, or SECONDS_PER_TARGET=S for a time limit instead)
# Crashing inputs land in kava/fuzz/artifacts/TARGET/; the corpora grow in a temporary directory
# (seeded from fuzz/seeds*, which are not modified).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1000000}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf_parse safetensors_parse config_json kava_json data_readers)
export RUSTC_BOOTSTRAP=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
limit=(-runs="$RUNS")
[ -n "${SECONDS_PER_TARGET:-}" ] && limit=(-max_total_time="$SECONDS_PER_TARGET")
status=0
for t in "${targets[@]}"; do
  seeds=fuzz/seeds-$t dict=fuzz/json.dict
  [ "$t" = gguf_parse ] && seeds=fuzz/seeds dict=fuzz/gguf.dict
  mkdir -p "$work/$t"
  start=$(date +%s)
  if cargo fuzz run "$t" "$work/$t" "$seeds" -- "${limit[@]}" -dict="$dict" -print_final_stats=1 > "$work/$t.log" 2>&1; then
    verdict="0 crashes"
  else
    verdict="CRASH (exit $?): kava/fuzz/artifacts/$t/"
    status=1
    tail -40 "$work/$t.log" >&2
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' | tail -1 || true)
  printf '%-18s %10s executions in %5ss, %s\n' "$t" "${execs:-?}" "$(( $(date +%s) - start ))" "$verdict"
done
exit $status
