#include "runtime/model/model.h"

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/llama_model.h"

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
    case Architecture::kDeepseekV3:
    case Architecture::kGlm4Moe:
    case Architecture::kMiniMaxM2:
      return absl::UnimplementedError(
          absl::StrCat(model_dir, ": ", std::string(ArchitectureName(config.architecture)),
                       " (mixture of experts) is parsed but has no model implementation yet"));
  }
  return absl::InternalError("unhandled architecture");
}

}  // namespace sparkstack
