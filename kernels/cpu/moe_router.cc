#include "kernels/cpu/moe_router.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/cpu/parallel_columns.h"

namespace sparkstack::kernels {
namespace {

// Group-limited eligibility: eligible[e] = 1 when expert e's group is among the topk_group groups
// with the largest sum of their two best choice scores (ties: lower group id).
template <typename T>
void MarkEligibleGroups(const T* choice, const MoeRouterParams& p, std::vector<uint8_t>& eligible,
                        std::vector<T>& group_score, std::vector<int64_t>& order) {
  const int64_t per_group = p.num_experts / p.n_group;
  for (int64_t g = 0; g < p.n_group; ++g) {
    T best1 = -std::numeric_limits<T>::infinity();
    T best2 = best1;
    for (int64_t e = g * per_group; e < (g + 1) * per_group; ++e) {
      const T v = choice[e];
      if (v > best1) {
        best2 = best1;
        best1 = v;
      } else if (v > best2) {
        best2 = v;
      }
    }
    group_score[g] = best1 + best2;
  }
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return group_score[a] > group_score[b]; });
  std::fill(eligible.begin(), eligible.end(), uint8_t{0});
  for (int64_t i = 0; i < p.topk_group; ++i) {
    const int64_t g = order[i];
    std::fill(eligible.begin() + g * per_group, eligible.begin() + (g + 1) * per_group, uint8_t{1});
  }
}

bool GroupLimited(const MoeRouterParams& p) { return p.n_group > 1 && p.topk_group < p.n_group; }

// Tokens [begin, end) of MoeRouteF32.
void RouteTokens(const float* logits, int64_t begin, int64_t end, const float* bias,
                 const MoeRouterParams& p, int32_t* ids, float* weights) {
  const int64_t n = p.num_experts;
  const int64_t k = p.top_k;
  std::vector<float> scores(n), choice(n), group_score(p.n_group);
  std::vector<uint8_t> eligible(n, 1);
  std::vector<int64_t> group_order(p.n_group);
  std::vector<float> top_value(k);
  std::vector<int32_t> top_id(k);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t t = begin; t < end; ++t) {
    const float* l = logits + t * n;
    if (p.scoring == MoeRouterScoring::kSoftmax) {
      float max = kNegInf;
      for (int64_t e = 0; e < n; ++e) max = std::max(max, l[e]);
      float sum = 0.0f;
      for (int64_t e = 0; e < n; ++e) {
        scores[e] = std::exp(l[e] - max);
        sum += scores[e];
      }
      const float inv = 1.0f / sum;
      for (int64_t e = 0; e < n; ++e) scores[e] *= inv;
    } else {
      for (int64_t e = 0; e < n; ++e) scores[e] = 1.0f / (1.0f + std::exp(-l[e]));
    }
    for (int64_t e = 0; e < n; ++e) {
      const float c = bias != nullptr ? scores[e] + bias[e] : scores[e];
      choice[e] = std::isnan(c) ? kNegInf : c;  // a NaN logit never wins
    }
    if (GroupLimited(p)) MarkEligibleGroups(choice.data(), p, eligible, group_score, group_order);
    // Insertion top-k over increasing expert ids: an equal value goes after the lower ids already
    // held, which gives the lower-id-first tie rule.
    int64_t held = 0;
    for (int64_t e = 0; e < n; ++e) {
      if (!eligible[e]) continue;
      const float c = choice[e];
      if (held == k && !(c > top_value[k - 1])) continue;
      int64_t pos = held < k ? held : k - 1;
      while (pos > 0 && c > top_value[pos - 1]) {
        top_value[pos] = top_value[pos - 1];
        top_id[pos] = top_id[pos - 1];
        --pos;
      }
      top_value[pos] = c;
      top_id[pos] = static_cast<int32_t>(e);
      if (held < k) ++held;
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < k; ++j) sum += scores[top_id[j]];
    const float scale =
        p.norm_topk_prob ? p.routed_scaling_factor / (sum + 1e-20f) : p.routed_scaling_factor;
    for (int64_t j = 0; j < k; ++j) {
      ids[t * k + j] = top_id[j];
      weights[t * k + j] = scores[top_id[j]] * scale;
    }
  }
}

}  // namespace

const char* MoeRouterParamsError(const MoeRouterParams& p) {
  if (p.num_experts < 1) return "num_experts must be positive";
  if (p.top_k < 1 || p.top_k > p.num_experts) return "top_k must be in [1, num_experts]";
  if (p.n_group < 1 || p.num_experts % p.n_group != 0) {
    return "n_group must be positive and divide num_experts";
  }
  if (p.topk_group < 1 || p.topk_group > p.n_group) return "topk_group must be in [1, n_group]";
  const int64_t per_group = p.num_experts / p.n_group;
  if (GroupLimited(p) && per_group < 2) return "a limited group needs at least two experts";
  if (p.topk_group * per_group < p.top_k) return "topk_group groups cannot supply top_k experts";
  if (!(p.routed_scaling_factor > 0.0f) || !std::isfinite(p.routed_scaling_factor)) {
    return "routed_scaling_factor must be positive and finite";
  }
  return "";
}

void MoeRouteF32(const float* logits, int64_t tokens, const float* bias,
                 const MoeRouterParams& params, int32_t* ids, float* weights, int threads) {
  // ~8 operations per logit; ForEachColumnRange stays on this thread for small batches.
  ForEachColumnRange(tokens, tokens * params.num_experts * 8, threads,
                     [&](int64_t begin, int64_t end) {
                       RouteTokens(logits, begin, end, bias, params, ids, weights);
                     });
}

void MoeRouteReference(const float* logits, int64_t tokens, const float* bias,
                       const MoeRouterParams& p, int32_t* ids, double* weights) {
  const int64_t n = p.num_experts;
  const int64_t k = p.top_k;
  std::vector<double> scores(n), choice(n), group_score(p.n_group);
  std::vector<uint8_t> eligible(n, 1);
  std::vector<int64_t> group_order(p.n_group), order(n);
  for (int64_t t = 0; t < tokens; ++t) {
    const float* l = logits + t * n;
    if (p.scoring == MoeRouterScoring::kSoftmax) {
      double max = -std::numeric_limits<double>::infinity();
      for (int64_t e = 0; e < n; ++e) max = std::max(max, double{l[e]});
      double sum = 0.0;
      for (int64_t e = 0; e < n; ++e) sum += std::exp(double{l[e]} - max);
      for (int64_t e = 0; e < n; ++e) scores[e] = std::exp(double{l[e]} - max) / sum;
    } else {
      for (int64_t e = 0; e < n; ++e) scores[e] = 1.0 / (1.0 + std::exp(-double{l[e]}));
    }
    for (int64_t e = 0; e < n; ++e) choice[e] = scores[e] + (bias ? double{bias[e]} : 0.0);
    if (GroupLimited(p)) {
      // Written independently of MarkEligibleGroups: sort each group, sort the groups.
      const int64_t per_group = n / p.n_group;
      for (int64_t g = 0; g < p.n_group; ++g) {
        std::vector<double> members(choice.begin() + g * per_group,
                                    choice.begin() + (g + 1) * per_group);
        std::sort(members.begin(), members.end(), std::greater<double>());
        group_score[g] = members[0] + members[1];
      }
      std::iota(group_order.begin(), group_order.end(), int64_t{0});
      std::stable_sort(group_order.begin(), group_order.end(),
                       [&](int64_t a, int64_t b) { return group_score[a] > group_score[b]; });
      for (int64_t e = 0; e < n; ++e) {
        const int64_t g = e / per_group;
        eligible[e] = std::find(group_order.begin(), group_order.begin() + p.topk_group, g) !=
                      group_order.begin() + p.topk_group;
      }
    }
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      if (eligible[a] != eligible[b]) return eligible[a] > eligible[b];
      return choice[a] > choice[b];
    });
    double sum = 0.0;
    for (int64_t j = 0; j < k; ++j) sum += scores[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      ids[t * k + j] = static_cast<int32_t>(order[j]);
      double w = scores[order[j]];
      if (p.norm_topk_prob) w /= sum + 1e-20;
      weights[t * k + j] = w * p.routed_scaling_factor;
    }
  }
}

}  // namespace sparkstack::kernels
