#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadGlm4MoeModel(const ModelConfig& config,
                                                      const Checkpoint& checkpoint,
                                                      Backend& backend,
                                                      const ModelLoadOptions& options) {
  return absl::UnimplementedError("glm4_moe is not implemented yet");
}

}  // namespace sparkstack
