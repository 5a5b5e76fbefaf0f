#include "runtime/model/model.h"

#include "runtime/core/status_macros.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/llama_model.h"
#include "runtime/model/moe_decoder.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const std::string& model_dir, Backend& backend,
                                                 const ModelLoadOptions& options) {
  SPARKSTACK_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  SPARKSTACK_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(model_dir));
  // One case per architecture, no default: a new enum value fails to compile until handled.
  switch (config.architecture) {
    case Architecture::kLlama:
    case Architecture::kQwen3:
      return LoadLlamaModel(config, checkpoint, backend, options);
    case Architecture::kQwen3Moe:
      return LoadQwen3MoeModel(config, checkpoint, backend, options);
    case Architecture::kDeepseekV3:
      return LoadDeepseekV3Model(config, checkpoint, backend, options);
    case Architecture::kGlm4Moe:
      return LoadGlm4MoeModel(config, checkpoint, backend, options);
    case Architecture::kMiniMaxM2:
      return LoadMiniMaxM2Model(config, checkpoint, backend, options);
  }
  return absl::InternalError("unhandled architecture");
}

}  // namespace sparkstack
