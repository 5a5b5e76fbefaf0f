#include "kernels/cpu/sampling_reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace sparkstack::kernels {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Relative gap between two values (1 when either is infinite).
double RelativeGap(double a, double b) {
  if (std::isinf(a) || std::isinf(b)) return 1.0;
  const double scale = std::max({std::abs(a), std::abs(b), 1e-30});
  return std::abs(a - b) / scale;
}

// Ids of `values` sorted by value descending, ties by lower id.
std::vector<int32_t> SortedDescending(const std::vector<double>& values) {
  std::vector<int32_t> ids(values.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  return ids;
}

}  // namespace

absl::StatusOr<SamplingReferenceResult> SampleReference(std::span<const float> logits,
                                                        int64_t vocab_limit, const SamplingRow& row,
                                                        double uniform) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  if (vocab_limit <= 0 || vocab_limit > vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab_limit ", vocab_limit, " is not in [1, ", vocab, "]"));
  }
  if (absl::Status status = ValidateSamplingRow(row, vocab); !status.ok()) return status;
  const SamplingParams& p = row.params;
  const int64_t n = vocab_limit;
  std::vector<double> x(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = logits[i];
    if (std::isnan(x[i]) || x[i] == kInf) {
      return absl::InvalidArgumentError(absl::StrCat("logit of id ", i, " is ", x[i]));
    }
  }
  SamplingReferenceResult result;

  // Raw logprobs.
  const double x_max = *std::max_element(x.begin(), x.end());
  double z = 0.0;
  for (double v : x) z += std::exp(v - x_max);
  const double log_z = x_max + std::log(z);
  result.logprobs.resize(n);
  for (int64_t i = 0; i < n; ++i) result.logprobs[i] = x[i] - log_z;
  if (p.logprobs > 0) {
    const std::vector<int32_t> order = SortedDescending(x);
    result.top.assign(order.begin(), order.begin() + std::min<int64_t>(p.logprobs, n));
  }

  // Penalties and bans.
  std::vector<double> l = x;
  std::vector<int64_t> output_count(vocab, 0);
  std::vector<bool> seen(vocab, false);
  for (int32_t id : row.output_tokens) ++output_count[id];
  if (p.repetition_penalty != 1.0f) {
    for (int32_t id : row.prompt_tokens) seen[id] = true;
    for (int32_t id : row.output_tokens) seen[id] = true;
  }
  // Penalized logits are f32 by definition (sampling.h), so that every backend has the same ones.
  for (int64_t i = 0; i < n; ++i) {
    float v = logits[i];
    if (seen[i]) v = v > 0.0f ? v / p.repetition_penalty : v * p.repetition_penalty;
    if (output_count[i] > 0) {
      const float frequency = p.frequency_penalty * static_cast<float>(output_count[i]);
      v = v - frequency;
      v = v - p.presence_penalty;
    }
    l[i] = std::min(v, std::numeric_limits<float>::max());
  }
  for (int32_t id : row.banned_tokens) {
    if (id < n) l[id] = -kInf;
  }
  const std::vector<int32_t> order = SortedDescending(l);
  const double l_max = l[order[0]];
  if (l_max == -kInf) {
    return absl::InvalidArgumentError("no token can be chosen: every allowed logit is -inf");
  }

  auto finish = [&](int32_t token) {
    result.token = token;
    result.logprob = result.logprobs[token];
    return result;
  };
  if (p.temperature == 0.0f) {
    result.probs.assign(n, 0.0);
    result.probs[order[0]] = 1.0;
    return finish(order[0]);
  }

  const double t = p.temperature;
  std::vector<double> w(n);
  for (int64_t i = 0; i < n; ++i) w[i] = std::exp((l[i] - l_max) / t);
  std::vector<bool> keep(n, true);
  if (p.min_p > 0.0f) {
    // Implementations may compare l with l_max + t * log(min_p) instead: the margin is measured
    // there.
    const double threshold = l_max + t * std::log(static_cast<double>(p.min_p));
    for (int64_t i = 0; i < n; ++i) {
      keep[i] = keep[i] && w[i] >= p.min_p;
      result.margin = std::min(result.margin, RelativeGap(l[i], threshold));
    }
  }
  if (p.top_k > 0 && p.top_k < n) {
    const double kth = l[order[p.top_k - 1]];
    for (int64_t i = 0; i < n; ++i) keep[i] = keep[i] && l[i] >= kth;
  }
  if (p.top_p < 1.0f) {
    double mass = 0.0;
    for (int64_t i = 0; i < n; ++i) mass += keep[i] ? w[i] : 0.0;
    const double limit = p.top_p * mass;
    double before = 0.0;
    for (int32_t id : order) {
      if (!keep[id]) continue;
      result.margin = std::min(result.margin, std::abs(before - limit) / mass);
      keep[id] = before < limit;
      before += w[id];
    }
  }

  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += keep[i] ? w[i] : 0.0;
  result.probs.assign(n, 0.0);
  for (int64_t i = 0; i < n; ++i) result.probs[i] = keep[i] ? w[i] / total : 0.0;
  const double target = uniform * total;
  double cumulative = 0.0;
  int32_t token = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!keep[i] || w[i] == 0.0) continue;
    const double next = cumulative + w[i];
    if (token < 0 && target < next) {
      token = static_cast<int32_t>(i);
      result.margin =
          std::min({result.margin, (target - cumulative) / total, (next - target) / total});
    }
    cumulative = next;
  }
  if (token < 0) {  // u * total rounded up to total: the last id that can be chosen
    for (int64_t i = n - 1; i >= 0 && token < 0; --i) {
      if (keep[i] && w[i] > 0.0) token = static_cast<int32_t>(i);
    }
    result.margin = 0.0;
  }
  return finish(token);
}

}  // namespace sparkstack::kernels
