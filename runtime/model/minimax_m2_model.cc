#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadMiniMaxM2Model(const ModelConfig& config,
                                                      const Checkpoint& checkpoint,
                                                      Backend& backend,
                                                      const ModelLoadOptions& options) {
  return absl::UnimplementedError("minimax_m2 is not implemented yet");
}

}  // namespace sparkstack
