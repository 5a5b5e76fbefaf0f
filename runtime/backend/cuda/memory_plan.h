// The memory plan of a CUDA rank, made before anything is allocated on the device: weights +
// workspace + the backend's scratch + the KV cache must fit the budget, and the rank then reserves
// exactly that much in one arena (DeviceArena). On unified memory (GB10: the GPU allocates host
// RAM) the budget is also bounded by the host's MemAvailable, so loading a model never pushes the
// box into swapping or the OOM killer, which on a Spark can freeze it.
#ifndef SPARKSTACK_RUNTIME_BACKEND_CUDA_MEMORY_PLAN_H_
#define SPARKSTACK_RUNTIME_BACKEND_CUDA_MEMORY_PLAN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/backend/cuda/device.h"

namespace sparkstack {

struct MemoryNeeds {
  int64_t weights = 0;    // this rank's weights on the device (an upper bound)
  int64_t workspace = 0;  // the step arena (Arena::BufferBytes of the model's workspace)
  int64_t scratch = 0;    // CudaScratchBytes of the backend's options
  int64_t buffers = 0;    // the runner's step buffers (ids, metadata, hidden states, logits)
  int64_t kv_block_bytes = 0;  // one KV block of every layer of the shard
  int64_t kv_min_blocks = 1;   // fewer would not serve one sequence
  int64_t kv_max_blocks = 0;   // more are useless (max_num_seqs x max_model_len); 0: no cap
  // KV budget: these bytes, or (when 0) kv_fraction of what is left after everything else.
  int64_t kv_bytes = 0;
  double kv_fraction = 0.9;
};

struct MemoryPlan {
  int64_t budget = 0;  // what this rank may use
  int64_t kv_blocks = 0;
  int64_t kv_bytes = 0;
  int64_t arena = 0;  // the one reservation: weights + workspace + scratch + buffers + KV + slack
  std::string summary;  // one line, for the log and errors
};

// Left untouched on the device: for the CUDA context, NCCL's buffers, cuBLAS-free kernels' own
// needs and, on unified memory, the rest of the system: max(1 GiB, 5% of the device).
int64_t MemoryReserve(const cuda_backend::MemoryFacts& facts);

// ResourceExhausted, naming every term and the budget, when the needs do not fit with at least
// kv_min_blocks of KV.
absl::StatusOr<MemoryPlan> PlanMemory(const cuda_backend::MemoryFacts& facts,
                                      const MemoryNeeds& needs);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_CUDA_MEMORY_PLAN_H_
