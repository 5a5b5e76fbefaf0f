// LocalCommunicator: the size-1 group used when tp = pp = 1, so the model calls the same
// collectives at every scale. Collectives are no-ops or copies; Send/Recv have no peer and fail.
#ifndef SPARKSTACK_RUNTIME_PARALLEL_LOCAL_COMMUNICATOR_H_
#define SPARKSTACK_RUNTIME_PARALLEL_LOCAL_COMMUNICATOR_H_

#include "runtime/parallel/communicator.h"

namespace sparkstack {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }

  // Validates dtype (f32, f16, bf16, i32) and returns; the sum over one rank is the input.
  absl::Status AllReduceSum(void* data, size_t count, DType dtype) override;
  // Copies `in` to `out` (unless they are the same buffer).
  absl::Status AllGather(const void* in, void* out, size_t count, DType dtype) override;
  // root must be 0.
  absl::Status Broadcast(void* data, size_t bytes, int root) override;
  // A group of one has no peer: InvalidArgument.
  absl::Status Send(const void* data, size_t bytes, int peer) override;
  absl::Status Recv(void* data, size_t bytes, int peer) override;
  absl::Status Barrier() override { return absl::OkStatus(); }
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_PARALLEL_LOCAL_COMMUNICATOR_H_
