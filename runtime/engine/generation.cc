#include "runtime/engine/generation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {

absl::StatusOr<GenerationResult> Generate(Model& model, std::span<const int32_t> prompt,
                                          const GenerationOptions& options,
                                          const TokenCallback& on_token) {
  SPARKSTACK_RETURN_IF_ERROR(ValidateSamplingParams(options.sampling));
  if (prompt.empty()) return absl::InvalidArgumentError("the prompt has no tokens");
  if (options.max_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens must be >= 0, got ", options.max_tokens));
  }
  const ModelConfig& config = model.config();
  const int64_t needed = static_cast<int64_t>(prompt.size()) + options.max_tokens;
  if (needed > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", prompt.size(), " tokens) + max_tokens (", options.max_tokens,
        ") exceeds the model's context of ", config.max_position_embeddings, " positions"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(KvCache cache, model.NewKvCache(std::max<int64_t>(needed, 1)));
  Sampler sampler(options.sampling);
  GenerationResult result;

  SPARKSTACK_ASSIGN_OR_RETURN(Tensor logits, model.Forward(prompt, 0, cache));
  result.last_logits.assign(logits.data_as<float>(), logits.data_as<float>() + logits.numel());
  int64_t position = static_cast<int64_t>(prompt.size());
  for (int64_t step = 0; step < options.max_tokens; ++step) {
    if (step > 0) {
      const int32_t previous = result.output_ids.back();
      SPARKSTACK_ASSIGN_OR_RETURN(logits, model.Forward({&previous, 1}, position++, cache));
    }
    SPARKSTACK_ASSIGN_OR_RETURN(
        int32_t token, sampler.Sample({logits.data_as<float>(), static_cast<size_t>(logits.numel())}));
    result.output_ids.push_back(token);
    if (on_token && !on_token(token)) break;
    const auto& eos = config.eos_token_ids;
    if (options.stop_at_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) break;
  }
  return result;
}

}  // namespace sparkstack
