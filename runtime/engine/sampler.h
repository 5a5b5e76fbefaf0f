// Token sampling from logits: greedy, temperature, top-k, top-p (nucleus), seeded.
#ifndef SPARKSTACK_RUNTIME_ENGINE_SAMPLER_H_
#define SPARKSTACK_RUNTIME_ENGINE_SAMPLER_H_

#include <cstdint>
#include <random>
#include <span>

#include "absl/status/statusor.h"

namespace sparkstack {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 0;         // 0: no limit
  float top_p = 1.0f;        // 1: no limit
  uint64_t seed = 0;
};

// Validates the parameters (temperature >= 0 and finite, top_k >= 0, top_p in (0, 1]).
absl::Status ValidateSamplingParams(const SamplingParams& params);

// One sampler per sequence: the seeded generator advances with every draw, so a sequence is
// reproducible from its seed. Not thread-safe.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

  // Picks a token id from logits over the vocabulary. Order of filters as in Hugging Face's
  // generate: temperature, then top-k, then top-p over the remaining softmax mass.
  // InvalidArgument on empty or NaN logits.
  absl::StatusOr<int32_t> Sample(std::span<const float> logits);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_SAMPLER_H_
