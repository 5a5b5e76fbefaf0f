#include "runtime/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sparkstack {

absl::Status ValidateSamplingParams(const SamplingParams& params) {
  if (!(params.temperature >= 0.0f) || !std::isfinite(params.temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be a finite number >= 0, got ", params.temperature));
  }
  if (params.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0, got ", params.top_k));
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", params.top_p));
  }
  return absl::OkStatus();
}

absl::StatusOr<int32_t> Sampler::Sample(std::span<const float> logits) {
  if (logits.empty()) return absl::InvalidArgumentError("cannot sample from empty logits");
  for (float value : logits) {
    if (std::isnan(value)) return absl::InvalidArgumentError("logits contain NaN");
  }
  if (params_.temperature == 0.0f || params_.top_k == 1) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  // Candidates sorted by logit, highest first (ties: lower id first), cut to top-k.
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  size_t keep = ids.size();
  if (params_.top_k > 0) keep = std::min<size_t>(keep, params_.top_k);
  auto by_logit = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), by_logit);
  ids.resize(keep);

  std::vector<double> probs(keep);
  const double max_logit = logits[ids[0]];
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[ids[i]] - max_logit) / params_.temperature);
    total += probs[i];
  }
  // Nucleus: the smallest prefix whose mass reaches top_p (always at least one token).
  size_t nucleus = keep;
  if (params_.top_p < 1.0f) {
    double mass = 0.0;
    for (size_t i = 0; i < keep; ++i) {
      mass += probs[i] / total;
      if (mass >= params_.top_p) {
        nucleus = i + 1;
        break;
      }
    }
  }
  const double nucleus_total = std::accumulate(probs.begin(), probs.begin() + nucleus, 0.0);
  std::uniform_real_distribution<double> uniform(0.0, nucleus_total);
  double target = uniform(rng_);
  for (size_t i = 0; i < nucleus; ++i) {
    target -= probs[i];
    if (target < 0.0) return ids[i];
  }
  return ids[nucleus - 1];
}

}  // namespace sparkstack
