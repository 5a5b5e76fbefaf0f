#!/usr/bin/env bash
# aarch64 check (tests/run.sh): cross-builds the CPU libraries and their unit tests with Debian's
# arm64 multiarch packages and runs them under qemu-aarch64-static, so that the NEON paths compile
# and are tested on every CI run. CUDA off, benchmarks off, only the targets below: a few minutes.
#   .ci/cross-aarch64.sh            install what is missing, build, test
# Exit status: 0 when the tests pass, 1 when they fail, 77 when the cross toolchain cannot be
# installed here (tests/run.sh then says so and goes on).
set -euo pipefail
cd "$(dirname "$0")/.."

# Unit tests of the CPU code (kernels with NEON paths, core, quantization, sampling, model I/O,
# parallel plan). Targets absent from this tree are skipped.
targets=(core_test quant_float8_test cpu_nvfp4_linear_test cpu_kernels_test sampling_test
         philox_test model_loading_test moe_config_test parallel_plan_test)
packages=(crossbuild-essential-arm64 qemu-user-static libabsl-dev:arm64 libre2-dev:arm64
          libgtest-dev:arm64 libgmock-dev:arm64 libspdlog-dev:arm64 libfmt-dev:arm64
          libutf8proc-dev:arm64 libucx-dev:arm64 libgrpc++-dev:arm64 libprotobuf-dev:arm64
          protobuf-compiler protobuf-compiler-grpc)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo -n); fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "cross-aarch64: installing ${missing[*]}"
  if ! { dpkg --print-foreign-architectures | grep -qx arm64 ||
         "${sudo_cmd[@]}" dpkg --add-architecture arm64; } ||
     ! "${sudo_cmd[@]}" apt-get update -qq ||
     ! DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
         "${missing[@]}"; then
    echo "cross-aarch64: the arm64 cross toolchain cannot be installed here; aarch64 check skipped"
    exit 77
  fi
fi

build=build-aarch64
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/.ci/aarch64-toolchain.cmake" -DSPARKSTACK_CUDA=OFF \
  -DSPARKSTACK_BUILD_BENCHMARKS=OFF >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
present=()
for t in "${targets[@]}"; do
  if ninja -C "$build" -t query "$t" >/dev/null 2>&1; then present+=("$t"); fi
done
echo "cross-aarch64: building ${present[*]}"
cmake --build "$build" --target "${present[@]}" -j"$(nproc)"
# qemu-user cannot start threads in some sandboxes (a std::thread hangs before clone): there the
# tests that need a thread pool are built (the NEON paths compile) but not run, and this says so.
probe="$build/thread_probe"
printf '#include <thread>\nint main() { std::thread t([] {}); t.join(); }\n' >"$probe.cc"
aarch64-linux-gnu-g++ -pthread "$probe.cc" -o "$probe"
if ! timeout 20 qemu-aarch64-static -L /usr/aarch64-linux-gnu "$probe"; then
  echo "cross-aarch64: this qemu cannot start threads; cpu_kernels_test is built but not run"
  runnable=()
  for t in "${present[@]}"; do [ "$t" = cpu_kernels_test ] || runnable+=("$t"); done
  present=("${runnable[@]}")
fi
regex="^($(IFS='|'; echo "${present[*]}"))\$"
# The emulator makes every test several times slower: give them room.
ctest --test-dir "$build" -R "$regex" --output-on-failure --timeout 900 -j"$(nproc)"
