#!/usr/bin/env bash
# The main job on one machine, CPU only: installs dependencies, builds the `sparkstack` binary,
# writes a tiny random Llama-style model, and generates from it on a local cluster of 2 x 2 ranks
# (tensor parallel 2, pipeline parallel 2: four processes talking over loopback), then checks that
# the cluster's tokens equal a single process's.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh --no-npm
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target sparkstack -j"$(nproc)"
bin=build/launcher/sparkstack

model=${SPARKSTACK_DEMO_MODEL:-/tmp/sparkstack-tiny-llama}
"$bin" make-tiny-model --arch llama --out "$model" --hidden 256 --intermediate 688 --layers 4 \
  --heads 8 --kv-heads 2 --head-dim 32 --vocab 1024 --seed 1
echo "wrote a tiny Llama model to $model"

prompt=1,15,42,7,300,9
echo "single process:"
single=$("$bin" generate --model "$model" --prompt-ids "$prompt" --max-tokens 24 --ignore-eos)
echo "  $single"
echo "local cluster, tp=2 x pp=2 (4 processes over loopback):"
cluster=$("$bin" generate --model "$model" --prompt-ids "$prompt" --max-tokens 24 --ignore-eos \
  --tp 2 --pp 2 --local-ranks)
echo "  $cluster"
if [ "$single" = "$cluster" ]; then
  echo "the cluster generated exactly the single-process tokens"
else
  echo "MISMATCH between the cluster and the single process" >&2
  exit 1
fi
