#!/usr/bin/env bash
# The test command (README): installs what is missing, builds everything (CUDA targets compile-only
# where nvcc exists and no GPU does), runs the unit tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer, then every test (unit, integration, conformance against llama.cpp and
# Hugging Face) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
jobs=$(nproc)

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSPARKSTACK_CUDA=OFF \
  -DSPARKSTACK_SANITIZE=ON -DSPARKSTACK_BUILD_BENCHMARKS=OFF
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j"$jobs"

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
