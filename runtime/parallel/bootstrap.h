// Bootstrap: what communicators need from the outside world before the data plane exists — a way
// for the ranks of one group to exchange a few small opaque blobs (UCX worker addresses, the NCCL
// unique id, a job description). Nothing per token goes through it.
//
// Implementations: the TCP Rendezvous (rendezvous.h; tests and `generate --local-ranks`) and the
// control plane's gRPC bootstrap (runtime/control: rank 0 in the head's coordinator, the other
// ranks in node agents, every blob relayed by the coordinator).
#ifndef SPARKSTACK_RUNTIME_PARALLEL_BOOTSTRAP_H_
#define SPARKSTACK_RUNTIME_PARALLEL_BOOTSTRAP_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sparkstack {

// Every implementation accepts blobs up to this size (the gRPC bootstrap refuses larger ones).
inline constexpr size_t kBootstrapMaxBlobBytes = 256 * 1024;

// Contract: all ranks call the same operations in the same order (a mismatch is an error on every
// rank, never a wrong answer). Each call blocks until every rank has made it, or fails: a peer that
// is gone gives Unavailable naming it, a stall gives DeadlineExceeded after the implementation's
// timeout. After an error the bootstrap is unusable. One thread at a time.
class Bootstrap {
 public:
  virtual ~Bootstrap() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // Every rank contributes `blob`; every rank gets all blobs in rank order.
  virtual absl::StatusOr<std::vector<std::string>> AllGather(std::string_view blob) = 0;
  // Every rank gets rank 0's `blob`; other ranks' arguments are ignored.
  virtual absl::StatusOr<std::string> Broadcast(std::string_view blob) = 0;
  // Returns once every rank has called Barrier.
  virtual absl::Status Barrier() = 0;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_BOOTSTRAP_H_
