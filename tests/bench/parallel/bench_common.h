// Sizes, iteration counts and the result line shared by the two all-reduce benchmarks, so that
// sparkstack and Open MPI are measured the same way.
#ifndef SPARKSTACK_TESTS_BENCH_PARALLEL_BENCH_COMMON_H_
#define SPARKSTACK_TESTS_BENCH_PARALLEL_BENCH_COMMON_H_

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace sparkstack::bench {

// 4 KiB .. max_bytes (default 64 MiB), powers of two. SPARKSTACK_BENCH_MAX_BYTES lowers the
// top for quick runs (both benchmarks read it, so the table stays aligned).
inline std::vector<size_t> AllReduceSizes() {
  size_t max_bytes = 64u << 20;
  if (const char* env = std::getenv("SPARKSTACK_BENCH_MAX_BYTES"))
    max_bytes = std::strtoull(env, nullptr, 10);
  std::vector<size_t> sizes;
  for (size_t bytes = 4 << 10; bytes <= max_bytes; bytes *= 2) sizes.push_back(bytes);
  return sizes;
}

// Enough iterations for a stable mean without making 64 MiB take minutes.
inline int Iterations(size_t bytes) {
  if (bytes <= (64 << 10)) return 400;
  if (bytes <= (1 << 20)) return 60;
  return 8;
}

inline int Warmup(size_t bytes) { return bytes <= (1 << 20) ? 20 : 2; }

// One result line: "<impl> <ranks> <bytes> <latency us> <bus bandwidth GB/s>". Bus bandwidth
// follows NCCL's convention for all-reduce: bytes * 2 (n - 1) / n / time.
inline void PrintResult(const char* impl, int ranks, size_t bytes, double seconds_per_op) {
  const double bus = static_cast<double>(bytes) * 2.0 * (ranks - 1) / ranks / seconds_per_op / 1e9;
  std::printf("%s %d %zu %.2f %.3f\n", impl, ranks, bytes, seconds_per_op * 1e6, bus);
  std::fflush(stdout);
}

}  // namespace sparkstack::bench

#endif  // SPARKSTACK_TESTS_BENCH_PARALLEL_BENCH_COMMON_H_
