#!/usr/bin/env bash
# The test command (README): installs what is missing, builds everything (CUDA targets compile-only
# where nvcc exists and no GPU does), runs the unit tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer, cross-builds the CPU unit tests for aarch64 and runs them under qemu
# (.ci/cross-aarch64.sh), then every test (unit, integration, conformance against llama.cpp and
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

# aarch64: the CPU libraries and their unit tests cross-built with Debian's arm64 packages and run
# under qemu (NEON paths); skipped, and said so, where the cross toolchain cannot be installed.
cross_rc=0
bash .ci/cross-aarch64.sh || cross_rc=$?
if [ "$cross_rc" -eq 77 ]; then echo "aarch64 check skipped (no cross toolchain)"; elif [ "$cross_rc" -ne 0 ]; then exit "$cross_rc"; fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

# libFuzzer targets (clang-14 with libclang-rt-14-dev): each replays its corpus and crash
# regressions, then explores for SPARKSTACK_FUZZ_SECONDS (tests/fuzz/CMakeLists.txt). Skipped
# without clang; CMake skips them without libFuzzer.
if command -v clang++-14 >/dev/null; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSPARKSTACK_CUDA=OFF -DSPARKSTACK_SANITIZE=ON -DSPARKSTACK_BUILD_FUZZERS=ON \
    -DSPARKSTACK_BUILD_BENCHMARKS=OFF
  # (The target list is read whole first: `grep -q` quitting early would SIGPIPE cmake, and under
  # pipefail that would skip the fuzzers silently.)
  fuzz_targets=$(cmake --build build-fuzz --target help)
  if grep -q '^fuzzers:' <<<"$fuzz_targets"; then
    cmake --build build-fuzz --target fuzzers -j"$jobs"
    ctest --test-dir build-fuzz -L fuzz --output-on-failure -j"$jobs"
  fi
else
  echo "tests/run.sh: clang++-14 not found; skipping the fuzzers"
fi
