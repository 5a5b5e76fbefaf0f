// The Llama family: Llama 2/3/3.1 and Qwen3 dense (Llama plus per-head RMSNorm of q and k).
#ifndef SPARKSTACK_RUNTIME_MODEL_LLAMA_MODEL_H_
#define SPARKSTACK_RUNTIME_MODEL_LLAMA_MODEL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/model.h"

namespace sparkstack {

// Tensor parallelism as runtime/model/tensor_parallel.h describes it.
absl::StatusOr<std::unique_ptr<Model>> LoadLlamaModel(const ModelConfig& config,
                                                      const Checkpoint& checkpoint,
                                                      Backend& backend,
                                                      const ModelLoadOptions& options);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_LLAMA_MODEL_H_
