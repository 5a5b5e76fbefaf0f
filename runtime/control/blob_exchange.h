// BlobExchange: the coordinator's side of the gRPC bootstrap. Every rank's bootstrap operations
// (AllGather, Broadcast, Barrier) arrive here as contributions numbered 0, 1, 2, ... per rank;
// once every rank has contributed to operation n, its result goes back to all of them.
//
// The ranks are untrusted in the sense that a bug or a version mismatch must give an error, not
// a wrong result: a rank that sends operation n out of order, twice, or as a different kind than
// the others fails the exchange with a message naming the ranks involved. A failed exchange stays
// failed (the group is re-formed with a new one). Not thread-safe: the coordinator serialises
// calls under its lock.
#ifndef SPARKSTACK_RUNTIME_CONTROL_BLOB_EXCHANGE_H_
#define SPARKSTACK_RUNTIME_CONTROL_BLOB_EXCHANGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sparkstack::control {

enum class BootstrapOpKind { kAllGather, kBroadcast, kBarrier };
const char* BootstrapOpName(BootstrapOpKind kind);

class BlobExchange {
 public:
  // A finished operation: AllGather: every rank's blob in rank order; Broadcast: rank 0's blob;
  // Barrier: none.
  struct Completed {
    uint64_t seq = 0;
    BootstrapOpKind kind = BootstrapOpKind::kBarrier;
    std::vector<std::string> blobs;
  };

  explicit BlobExchange(int world_size);

  int world_size() const { return world_size_; }

  // Records `rank`'s contribution to its operation `seq`. Returns the completed operation when this
  // was the last contribution it waited for, nullopt while others are missing, or the error that
  // fails the exchange (rank out of range, seq not this rank's next, kind differing from the other
  // ranks', blob above kBootstrapMaxBlobBytes, or the exchange already failed).
  absl::StatusOr<std::optional<Completed>> Contribute(int rank, uint64_t seq, BootstrapOpKind kind,
                                                      std::string blob);

  // Fails the exchange (e.g. a node died); later Contribute calls return `status`.
  void Fail(absl::Status status);
  const absl::Status& status() const { return failed_; }

  // Ranks that have not yet contributed to the pending operation (empty when none is pending).
  std::vector<int> Missing() const;

 private:
  absl::Status FailWith(absl::Status status);

  int world_size_;
  uint64_t seq_ = 0;  // the pending operation
  std::optional<BootstrapOpKind> kind_;
  int first_rank_ = -1;  // who set kind_
  std::vector<std::optional<std::string>> blobs_;
  int received_ = 0;
  absl::Status failed_;
};

}  // namespace sparkstack::control

#endif  // SPARKSTACK_RUNTIME_CONTROL_BLOB_EXCHANGE_H_
