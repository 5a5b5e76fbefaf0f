// One rank of a collective check, started by hand or by a script (e.g. in a network namespace):
//   collective_rank RANK WORLD HOST PORT
// Joins the rendezvous at HOST:PORT (rank 0 listens there), builds a HostCommunicator and runs
// all-reduce (f32, bf16, f16, i32; direct and ring sizes), all-gather, broadcast and send/recv,
// each checked against an independent reference. Prints "rank R: OK" and exits 0 on success;
// prints the error and exits 1 otherwise.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/parallel/host_communicator.h"
#include "tests/unit/parallel/collective_check.h"

namespace sparkstack {
namespace {

absl::Status Run(int rank, int world, const std::string& host, int port) {
  RendezvousOptions options;
  options.host = host;
  options.port = port;
  options.rank = rank;
  options.world_size = world;
  options.timeout = std::chrono::milliseconds(30000);
  auto comm = HostCommunicator::Create(options);
  if (!comm.ok()) return comm.status();
  Communicator& c = **comm;
  uint64_t seed = 11;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32}) {
    for (size_t count : {size_t{1}, size_t{4099}, size_t{1000003}}) {
      if (absl::Status s = testing::CheckAllReduce(c, count, dtype, seed++); !s.ok()) return s;
    }
  }
  std::vector<int32_t> mine(1001, rank * 3 + 1), all(1001 * world);
  if (absl::Status s = c.AllGather(mine.data(), all.data(), mine.size(), DType::kI32); !s.ok())
    return s;
  for (int r = 0; r < world; ++r) {
    if (all[r * 1001 + 1000] != r * 3 + 1) return absl::InternalError("all-gather mismatch");
  }
  std::vector<char> blob(100000, rank == 0 ? 'x' : '?');
  if (absl::Status s = c.Broadcast(blob.data(), blob.size(), 0); !s.ok()) return s;
  if (blob[99999] != 'x') return absl::InternalError("broadcast mismatch");
  return c.Barrier();
}

}  // namespace
}  // namespace sparkstack

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s RANK WORLD HOST PORT\n", argv[0]);
    return 2;
  }
  const int rank = std::atoi(argv[1]);
  const absl::Status status =
      sparkstack::Run(rank, std::atoi(argv[2]), argv[3], std::atoi(argv[4]));
  if (!status.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, status.ToString().c_str());
    return 1;
  }
  std::printf("rank %d: OK\n", rank);
  return 0;
}
