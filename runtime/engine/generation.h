// Single-sequence generation on one model stage that holds the whole model: prefill the prompt,
// then decode one token at a time. (Several ranks go through the step executor instead.)
#ifndef SPARKSTACK_RUNTIME_ENGINE_GENERATION_H_
#define SPARKSTACK_RUNTIME_ENGINE_GENERATION_H_

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/engine/sampler.h"
#include "runtime/model/model.h"

namespace sparkstack {

struct GenerationOptions {
  int64_t max_tokens = 16;
  SamplingParams sampling;
  bool stop_at_eos = true;  // stop after emitting one of the config's eos ids
};

struct GenerationResult {
  std::vector<int32_t> output_ids;
  std::vector<float> last_logits;  // logits at the last prompt position (chose output_ids[0])
};

// Called with each new token as it is chosen; returning false stops generation.
using TokenCallback = std::function<bool(int32_t token)>;

absl::StatusOr<GenerationResult> Generate(Model& model, std::span<const int32_t> prompt,
                                          const GenerationOptions& options,
                                          const TokenCallback& on_token = nullptr);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_GENERATION_H_
