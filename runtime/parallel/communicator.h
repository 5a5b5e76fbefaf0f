// Communicator: the data plane's collectives, the one seam the model calls for tensor and pipeline
// parallelism. Implementations: HostCommunicator (UCX, host tensors) and NcclCommunicator (device
// tensors). The model calls it the same way at tp = 1, where every call is a local no-op or copy.
#ifndef SPARKSTACK_RUNTIME_PARALLEL_COMMUNICATOR_H_
#define SPARKSTACK_RUNTIME_PARALLEL_COMMUNICATOR_H_

#include <chrono>
#include <cstddef>

#include "absl/status/status.h"
#include "runtime/core/dtype.h"

namespace sparkstack {

// Contract for every call: all ranks of the group call the same collectives in the same order
// with matching sizes; buffers live on the communicator's device; a call blocks until done or
// until timeout() passes, when it returns DeadlineExceeded (a dead peer gives an error, never a
// hang). After an error the communicator is unusable. One thread at a time per communicator.
class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In-place element-wise sum over all ranks. dtype: f32, f16, bf16 or i32.
  virtual absl::Status AllReduceSum(void* data, size_t count, DType dtype) = 0;
  // Concatenates each rank's `count` elements in rank order into `out` (size() * count).
  virtual absl::Status AllGather(const void* in, void* out, size_t count, DType dtype) = 0;
  // Copies `root`'s buffer to every rank.
  virtual absl::Status Broadcast(void* data, size_t bytes, int root) = 0;
  // Point to point, matched in order between each pair of ranks.
  virtual absl::Status Send(const void* data, size_t bytes, int peer) = 0;
  virtual absl::Status Recv(void* data, size_t bytes, int peer) = 0;
  virtual absl::Status Barrier() = 0;

  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

 private:
  std::chrono::milliseconds timeout_{10000};
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_COMMUNICATOR_H_
