// The MoE router kernel against its float64 reference on random, well-conditioned logits at odd
// sizes, plus hand-worked routings whose answers come from the routing rules of MODELS.md, not
// from either implementation.
#include "kernels/cpu/moe_router.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparkstack::kernels {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Pointwise;

// The smallest gap between neighbouring values once sorted (infinity for fewer than two).
double MinGap(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double gap = INFINITY;
  for (size_t i = 1; i < v.size(); ++i) gap = std::min(gap, v[i] - v[i - 1]);
  return gap;
}

// True if float32 rounding (errors ~1e-7 here) cannot change this row's choices: the choice
// scores, and the group scores, are all at least 1e-6 apart. Computed here from the rules,
// independently of the kernel.
bool WellConditioned(const float* logits, const float* bias, const MoeRouterParams& p) {
  const int64_t n = p.num_experts;
  std::vector<double> s(n), c(n);
  double max = -INFINITY, sum = 0;
  for (int64_t e = 0; e < n; ++e) max = std::max(max, double{logits[e]});
  for (int64_t e = 0; e < n; ++e) sum += std::exp(logits[e] - max);
  for (int64_t e = 0; e < n; ++e) {
    s[e] = p.scoring == MoeRouterScoring::kSoftmax ? std::exp(logits[e] - max) / sum
                                                   : 1 / (1 + std::exp(-double{logits[e]}));
    c[e] = s[e] + (bias ? bias[e] : 0.0);
  }
  if (MinGap(c) < 1e-6) return false;
  const int64_t per = n / p.n_group;
  std::vector<double> groups;
  for (int64_t g = 0; g < p.n_group; ++g) {
    std::vector<double> m(c.begin() + g * per, c.begin() + (g + 1) * per);
    std::sort(m.begin(), m.end(), std::greater<>());
    groups.push_back(m[0] + (per > 1 ? m[1] : 0.0));
  }
  return MinGap(groups) >= 1e-6;
}

struct Case {
  const char* name;
  MoeRouterParams params;
  bool bias;
  float logit_scale;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class MoeRouterRandomTest : public ::testing::TestWithParam<Case> {};

TEST_P(MoeRouterRandomTest, MatchesReference) {
  const Case& c = GetParam();
  const MoeRouterParams& p = c.params;
  ASSERT_STREQ(MoeRouterParamsError(p), "");
  const int64_t tokens = 37;
  const int64_t n = p.num_experts;
  std::mt19937_64 rng(n * 131 + p.top_k);
  std::normal_distribution<float> normal(0.0f, c.logit_scale);
  std::vector<float> bias(n);
  for (float& b : bias) b = normal(rng) * 0.1f;
  std::vector<float> logits(tokens * n);
  for (int64_t t = 0; t < tokens; ++t) {
    int tries = 0;
    do {
      ASSERT_LT(tries++, 100) << "no well-conditioned logits found";
      for (int64_t e = 0; e < n; ++e) logits[t * n + e] = normal(rng);
    } while (!WellConditioned(&logits[t * n], c.bias ? bias.data() : nullptr, p));
  }
  const float* b = c.bias ? bias.data() : nullptr;
  std::vector<int32_t> want_ids(tokens * p.top_k);
  std::vector<double> want_w(tokens * p.top_k);
  MoeRouteReference(logits.data(), tokens, b, p, want_ids.data(), want_w.data());
  for (int threads : {1, 3}) {
    SCOPED_TRACE(threads);
    std::vector<int32_t> ids(tokens * p.top_k, -7);
    std::vector<float> w(tokens * p.top_k, NAN);
    MoeRouteF32(logits.data(), tokens, b, p, ids.data(), w.data(), threads);
    EXPECT_THAT(ids, ElementsAreArray(want_ids));
    for (size_t i = 0; i < w.size(); ++i) {
      EXPECT_NEAR(w[i], want_w[i], 2e-6 * std::max(1.0, std::fabs(want_w[i]))) << "slot " << i;
    }
  }
  // Sanity of the reference itself: ids distinct per token, eligible-size weights positive, and
  // normalised weights sum to the scaling factor.
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<int32_t> row(want_ids.begin() + t * p.top_k, want_ids.begin() + (t + 1) * p.top_k);
    std::sort(row.begin(), row.end());
    EXPECT_EQ(std::adjacent_find(row.begin(), row.end()), row.end());
    if (p.norm_topk_prob) {
      double sum = 0;
      for (int64_t j = 0; j < p.top_k; ++j) sum += want_w[t * p.top_k + j];
      EXPECT_NEAR(sum, p.routed_scaling_factor, 1e-12);
    }
  }
}

MoeRouterParams Params(int64_t experts, int64_t k, MoeRouterScoring scoring, bool norm, float scale,
                       int64_t groups, int64_t topk_group) {
  MoeRouterParams p;
  p.num_experts = experts;
  p.top_k = k;
  p.scoring = scoring;
  p.norm_topk_prob = norm;
  p.routed_scaling_factor = scale;
  p.n_group = groups;
  p.topk_group = topk_group;
  return p;
}

constexpr auto kSoftmax = MoeRouterScoring::kSoftmax;
constexpr auto kSigmoid = MoeRouterScoring::kSigmoid;

INSTANTIATE_TEST_SUITE_P(
    Configs, MoeRouterRandomTest,
    ::testing::Values(
        Case{"qwen3_top1", Params(7, 1, kSoftmax, false, 1.0f, 1, 1), false, 1.0f},
        Case{"qwen3_norm", Params(61, 5, kSoftmax, true, 1.0f, 1, 1), false, 2.0f},
        Case{"qwen3_unnormalised", Params(45, 8, kSoftmax, false, 1.0f, 1, 1), false, 1.5f},
        Case{"deepseek_groups", Params(60, 6, kSigmoid, true, 2.5f, 5, 2), true, 1.0f},
        Case{"deepseek_groups_wide", Params(96, 7, kSigmoid, true, 2.5f, 8, 3), true, 1.0f},
        Case{"glm_no_group_limit", Params(40, 8, kSigmoid, true, 2.5f, 1, 1), true, 1.0f},
        Case{"minimax", Params(50, 6, kSigmoid, true, 1.0f, 1, 1), true, 1.0f},
        Case{"sigmoid_plain", Params(33, 3, kSigmoid, false, 1.0f, 1, 1), false, 1.0f},
        Case{"all_experts", Params(9, 9, kSigmoid, true, 1.0f, 3, 3), true, 1.0f}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

std::vector<float> Logit(const std::vector<double>& s) {
  std::vector<float> out;
  for (double v : s) out.push_back(static_cast<float>(std::log(v / (1 - v))));
  return out;
}

// DeepSeek-V3's rule worked by hand. Scores s (after sigmoid) and a bias of 0.6 on expert 1:
//   choice c = [0.9, 0.7, 0.8, 0.55, 0.2, 0.3, 0.6, 0.85], groups of two:
//   g0 = 0.9 + 0.7 = 1.6, g1 = 0.8 + 0.55 = 1.35, g2 = 0.5, g3 = 0.6 + 0.85 = 1.45
//   -> keep g0, g3; eligible {0, 1, 6, 7}; top 3 by c: 0 (0.9), 7 (0.85), 1 (0.7)
//   weights from the unbiased s: 0.9, 0.85, 0.1, divided by 1.85, times 2.5.
// Expert 2 (c = 0.8) would be second without the group limit; expert 1 would not be chosen
// without its bias, yet its weight uses s = 0.1.
TEST(MoeRouterTest, DeepseekGroupLimitedByHand) {
  const std::vector<float> logits = Logit({0.9, 0.1, 0.8, 0.55, 0.2, 0.3, 0.6, 0.85});
  const std::vector<float> bias = {0, 0.6f, 0, 0, 0, 0, 0, 0};
  const MoeRouterParams p = Params(8, 3, kSigmoid, true, 2.5f, 4, 2);
  std::vector<int32_t> ids(3);
  std::vector<float> w(3);
  MoeRouteF32(logits.data(), 1, bias.data(), p, ids.data(), w.data());
  EXPECT_THAT(ids, ElementsAre(0, 7, 1));
  EXPECT_THAT(std::vector<double>(w.begin(), w.end()),
              Pointwise(DoubleNear(1e-6), {0.9 / 1.85 * 2.5, 0.85 / 1.85 * 2.5, 0.1 / 1.85 * 2.5}));
  std::vector<double> wr(3);
  MoeRouteReference(logits.data(), 1, bias.data(), p, ids.data(), wr.data());
  EXPECT_THAT(ids, ElementsAre(0, 7, 1));

  // Without the group limit: 0 (0.9), 7 (0.85), 2 (0.8).
  const MoeRouterParams flat = Params(8, 3, kSigmoid, true, 2.5f, 1, 1);
  MoeRouteF32(logits.data(), 1, bias.data(), flat, ids.data(), w.data());
  EXPECT_THAT(ids, ElementsAre(0, 7, 2));
}

// Qwen3-MoE: softmax over all experts, top-k of p, optionally renormalised.
TEST(MoeRouterTest, SoftmaxByHand) {
  const std::vector<float> logits = {std::log(1.0f), std::log(4.0f), std::log(2.0f),
                                     std::log(3.0f)};
  std::vector<int32_t> ids(2);
  std::vector<float> w(2);
  MoeRouteF32(logits.data(), 1, nullptr, Params(4, 2, kSoftmax, false, 1.0f, 1, 1), ids.data(),
              w.data());
  EXPECT_THAT(ids, ElementsAre(1, 3));
  EXPECT_NEAR(w[0], 0.4, 1e-6);  // 4 / 10
  EXPECT_NEAR(w[1], 0.3, 1e-6);
  MoeRouteF32(logits.data(), 1, nullptr, Params(4, 2, kSoftmax, true, 1.0f, 1, 1), ids.data(),
              w.data());
  EXPECT_NEAR(w[0], 4.0 / 7.0, 1e-6);
  EXPECT_NEAR(w[1], 3.0 / 7.0, 1e-6);
}

// Exact ties resolve to the lower expert id, and tied groups to the lower group id.
TEST(MoeRouterTest, TiesGoToLowerIds) {
  std::vector<float> logits(12, 0.5f);
  logits[7] = 2.0f;
  std::vector<int32_t> ids(4);
  std::vector<float> w(4);
  std::vector<double> wr(4);
  for (const MoeRouterParams& p :
       {Params(12, 4, kSoftmax, true, 1.0f, 1, 1), Params(12, 4, kSigmoid, true, 1.0f, 1, 1)}) {
    MoeRouteF32(logits.data(), 1, nullptr, p, ids.data(), w.data());
    EXPECT_THAT(ids, ElementsAre(7, 0, 1, 2));
    MoeRouteReference(logits.data(), 1, nullptr, p, ids.data(), wr.data());
    EXPECT_THAT(ids, ElementsAre(7, 0, 1, 2));
  }
  // Groups of 3: g2 holds expert 7 and wins; g0, g1, g3 tie, so g0 is kept with it.
  const MoeRouterParams grouped = Params(12, 4, kSigmoid, true, 1.0f, 4, 2);
  MoeRouteF32(logits.data(), 1, nullptr, grouped, ids.data(), w.data());
  EXPECT_THAT(ids, ElementsAre(7, 0, 1, 2));
  std::vector<float> flat(12, -1.0f);
  MoeRouteF32(flat.data(), 1, nullptr, Params(12, 3, kSigmoid, true, 1.0f, 4, 2), ids.data(),
              w.data());
  EXPECT_THAT(std::vector<int32_t>(ids.begin(), ids.begin() + 3), ElementsAre(0, 1, 2));
  EXPECT_NEAR(w[0], 1.0 / 3.0, 1e-6);
}

TEST(MoeRouterTest, NanLogitIsNeverChosen) {
  std::vector<float> logits = {NAN, 0.1f, 0.3f, 0.2f};
  std::vector<int32_t> ids(2);
  std::vector<float> w(2);
  MoeRouteF32(logits.data(), 1, nullptr, Params(4, 2, kSigmoid, true, 1.0f, 1, 1), ids.data(),
              w.data());
  EXPECT_THAT(ids, ElementsAre(2, 3));
}

TEST(MoeRouterTest, ParamErrors) {
  EXPECT_STRNE(MoeRouterParamsError(Params(8, 9, kSoftmax, false, 1, 1, 1)), "");
  EXPECT_STRNE(MoeRouterParamsError(Params(8, 2, kSoftmax, false, 1, 3, 1)), "");
  EXPECT_STRNE(MoeRouterParamsError(Params(8, 2, kSoftmax, false, 1, 8, 2)), "");  // 1 per group
  EXPECT_STRNE(MoeRouterParamsError(Params(8, 5, kSoftmax, false, 1, 4, 2)), "");  // 4 < 5
  EXPECT_STRNE(MoeRouterParamsError(Params(8, 2, kSoftmax, false, 0, 1, 1)), "");
  EXPECT_STREQ(MoeRouterParamsError(Params(8, 4, kSoftmax, false, 1, 4, 2)), "");
}

}  // namespace
}  // namespace sparkstack::kernels
