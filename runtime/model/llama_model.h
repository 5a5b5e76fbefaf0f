// The Llama family: Llama 2/3/3.1 and Qwen3 dense (Llama plus per-head RMSNorm of q and k).
#ifndef SPARKSTACK_RUNTIME_MODEL_LLAMA_MODEL_H_
#define SPARKSTACK_RUNTIME_MODEL_LLAMA_MODEL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/model.h"

namespace sparkstack {

// Tensor parallelism: q heads, gate/up rows and the vocabulary are split over the tp ranks
// (column-parallel), o and down over their input columns (row-parallel, each followed by one
// all-reduce); kv heads are split when kv_heads >= tp and otherwise each rank keeps the one kv
// head its q heads read (replication).
absl::StatusOr<std::unique_ptr<Model>> LoadLlamaModel(const ModelConfig& config,
                                                      const Checkpoint& checkpoint,
                                                      Backend& backend, const ModelShard& shard);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_LLAMA_MODEL_H_
