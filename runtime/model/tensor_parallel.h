// Tensor parallelism inside a model shard: how a layer's dimensions divide among the ranks of a
// pipeline stage, and the collectives the shared blocks call (DESIGN.md, seam 3: the same code
// runs at tp = 1, where every collective is a no-op).
//
// Sharding (Megatron-style): q/k/v and gate/up are column-parallel (each rank keeps its heads /
// its slice of the MLP width), o and down row-parallel (each rank keeps the matching input
// columns; one all-reduce sums the partial outputs), the embedding and lm_head vocabulary-parallel.
// KV heads are split when kv_heads >= tp; otherwise each rank keeps the one kv head its q heads
// read.
#ifndef SPARKSTACK_RUNTIME_MODEL_TENSOR_PARALLEL_H_
#define SPARKSTACK_RUNTIME_MODEL_TENSOR_PARALLEL_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "runtime/core/tensor.h"
#include "runtime/model/sharding.h"

namespace sparkstack {

class Communicator;

struct TensorParallel {
  int rank = 0;
  int size = 1;
  Communicator* comm = nullptr;  // required when size > 1

  // InvalidArgument for a rank outside [0, size) or a missing communicator.
  absl::Status Validate() const;
  // Sums x over the group in place (a no-op at size 1).
  absl::Status AllReduce(Tensor& x) const;
  // out [size, ...in] <- every rank's `in`, in rank order (a copy at size 1).
  absl::Status AllGather(const Tensor& in, Tensor& out) const;
};

// This rank's attention heads.
struct AttentionShard {
  int64_t heads = 0;     // local q heads
  int64_t kv_heads = 0;  // local kv heads
  Range q_heads;         // global q heads of this rank
  Range kv_head_rows;    // global kv heads of this rank (one replicated head when kv_heads < tp)
};

// InvalidArgument when num_heads is not divisible by tp, or num_kv_heads neither divides nor is a
// multiple of tp.
absl::StatusOr<AttentionShard> ShardAttention(int64_t num_heads, int64_t num_kv_heads,
                                              const TensorParallel& tp);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_TENSOR_PARALLEL_H_
