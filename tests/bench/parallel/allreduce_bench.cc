// sparkstack HostCommunicator all-reduce latency / bus bandwidth on loopback.
//   allreduce_bench RANKS   (forks RANKS processes; rank 0 prints one line per size)
// Compare with mpi_allreduce_bench via run_allreduce_bench.sh.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tests/bench/parallel/bench_common.h"
#include "tests/unit/parallel/rank_processes.h"

namespace sparkstack {
namespace {

absl::Status Measure(Communicator& comm) {
  for (size_t bytes : bench::AllReduceSizes()) {
    std::vector<float> data(bytes / 4, 1.0f);
    for (int i = 0; i < bench::Warmup(bytes); ++i) {
      if (absl::Status s = comm.AllReduceSum(data.data(), data.size(), DType::kF32); !s.ok())
        return s;
    }
    if (absl::Status s = comm.Barrier(); !s.ok()) return s;
    const int iters = bench::Iterations(bytes);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) {
      if (absl::Status s = comm.AllReduceSum(data.data(), data.size(), DType::kF32); !s.ok())
        return s;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // The slowest rank defines the collective's time.
    float mine = static_cast<float>(seconds), slowest = 0;
    std::vector<float> all(comm.size());
    if (absl::Status s = comm.AllGather(&mine, all.data(), 1, DType::kF32); !s.ok()) return s;
    for (float t : all) slowest = std::max(slowest, t);
    if (comm.rank() == 0) bench::PrintResult("sparkstack", comm.size(), bytes, slowest / iters);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace sparkstack

int main(int argc, char** argv) {
  const int ranks = argc > 1 ? std::atoi(argv[1]) : 2;
  if (ranks < 1 || ranks > 64) {
    std::fprintf(stderr, "usage: %s RANKS\n", argv[0]);
    return 2;
  }
  auto results = sparkstack::testing::RunCommunicatorRanks(
      ranks, std::chrono::minutes(10),
      [](sparkstack::Communicator& comm) { return sparkstack::Measure(comm); });
  int failed = 0;
  for (size_t r = 0; r < results.size(); ++r) {
    if (!results[r].ok) {
      std::fprintf(stderr, "rank %zu: %s\n", r, results[r].message.c_str());
      failed = 1;
    }
  }
  return failed;
}
