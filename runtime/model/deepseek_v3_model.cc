#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadDeepseekV3Model(const ModelConfig& config,
                                                      const Checkpoint& checkpoint,
                                                      Backend& backend,
                                                      const ModelLoadOptions& options) {
  return absl::UnimplementedError("deepseek_v3 is not implemented yet");
}

}  // namespace sparkstack
