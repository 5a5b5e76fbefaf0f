// Token permutation and the grouped expert MLPs against their float64 references, and a whole MoE
// layer (route, permute, experts, combine) against a per-token float64 computation that never
// groups tokens, including expert-parallel splits whose partial outputs must sum to the whole.
#include "kernels/cpu/moe_experts.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/moe_permute.h"
#include "kernels/cpu/moe_router.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels {
namespace {

using ::testing::ElementsAreArray;

enum class Format { kF32, kBf16, kNvfp4 };

// A random [n, k] weight, entries ~ U(-b, b) with b = sqrt(3 / k) (unit-variance outputs).
Weight RandomWeight(int64_t n, int64_t k, Format format, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(-std::sqrt(3.0f / k), std::sqrt(3.0f / k));
  std::vector<float> w(n * k);
  for (float& v : w) v = dist(rng);
  switch (format) {
    case Format::kF32: {
      Tensor t = Tensor::Zeros(DType::kF32, {n, k});
      std::copy(w.begin(), w.end(), t.data_as<float>());
      return *Weight::Dense(t);
    }
    case Format::kBf16: {
      Tensor t = Tensor::Zeros(DType::kBF16, {n, k});
      for (int64_t i = 0; i < n * k; ++i) t.data_as<uint16_t>()[i] = FloatToBf16(w[i]);
      return *Weight::Dense(t);
    }
    case Format::kNvfp4: {
      Nvfp4Parts parts;
      parts.codes = Tensor::Zeros(DType::kU8, {n, k / 2});
      parts.block_scales = Tensor::Zeros(DType::kF8E4M3, {n, k / 16});
      Nvfp4QuantizeWeightReference(w.data(), n, k, k, parts.codes.data_as<uint8_t>(), k / 2,
                                   parts.block_scales.data_as<uint8_t>(), k / 16,
                                   &parts.global_scale);
      return *Weight::Nvfp4(parts);
    }
  }
  return {};
}

struct Expert {
  Weight gate, up, down;
};

std::vector<Expert> RandomExperts(int64_t count, int64_t hidden, std::vector<int64_t> widths,
                                  Format format, std::mt19937_64& rng) {
  std::vector<Expert> out;
  for (int64_t e = 0; e < count; ++e) {
    const int64_t width = widths[e % widths.size()];
    out.push_back({RandomWeight(width, hidden, format, rng),
                   RandomWeight(width, hidden, format, rng),
                   RandomWeight(hidden, width, format, rng)});
  }
  return out;
}

std::vector<MoeExpertWeights> Views(const std::vector<Expert>& experts, int64_t begin,
                                    int64_t end) {
  std::vector<MoeExpertWeights> v;
  for (int64_t e = begin; e < end; ++e) {
    v.push_back({&experts[e].gate, &experts[e].up, &experts[e].down});
  }
  return v;
}

std::vector<float> RandomRows(int64_t rows, int64_t width, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(rows * width);
  for (float& v : x) v = normal(rng);
  return x;
}

// ---- permutation

TEST(MoePermuteTest, PlanGatherCombineMatchReferences) {
  std::mt19937_64 rng(5);
  for (auto [tokens, k, experts, first, local] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{1, 1, 3, 0, 3},
        {37, 4, 13, 0, 13},
        {37, 4, 13, 5, 4},   // an expert-parallel rank holding experts 5..8
        {23, 7, 29, 28, 1},  // the last expert alone
        {64, 8, 96, 0, 96}}) {
    SCOPED_TRACE(::testing::Message() << tokens << "x" << k << " of " << experts << " local ["
                                      << first << ", +" << local << ")");
    // Distinct ids per token, as a router gives.
    std::vector<int32_t> ids(tokens * k);
    std::vector<int32_t> all(experts);
    for (int64_t t = 0; t < tokens; ++t) {
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng);
      std::copy(all.begin(), all.begin() + k, ids.begin() + t * k);
    }
    std::vector<int32_t> off(local + 1, -1), perm(tokens * k, -1), slot(tokens * k, -9);
    std::vector<int32_t> off_ref(local + 1, -1), perm_ref(tokens * k, -1), slot_ref(tokens * k);
    const int64_t rows =
        MoePermutePlan(ids.data(), tokens, k, first, local, off.data(), perm.data(), slot.data());
    const int64_t rows_ref = MoePermutePlanReference(
        ids.data(), tokens, k, first, local, off_ref.data(), perm_ref.data(), slot_ref.data());
    ASSERT_EQ(rows, rows_ref);
    EXPECT_THAT(off, ElementsAreArray(off_ref));
    EXPECT_THAT(std::vector<int32_t>(perm.begin(), perm.begin() + rows),
                ElementsAreArray(perm_ref.begin(), perm_ref.begin() + rows));
    EXPECT_THAT(slot, ElementsAreArray(slot_ref));

    const int64_t hidden = 19;
    const std::vector<float> x = RandomRows(tokens, hidden, rng);
    std::vector<float> x_perm(rows * hidden, NAN);
    MoeGatherRowsF32(x.data(), hidden, perm.data(), rows, x_perm.data(), 3);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < hidden; ++i) {
        ASSERT_EQ(x_perm[r * hidden + i], x[perm[r] * hidden + i]);
      }
    }
    const std::vector<float> y_perm = RandomRows(rows, hidden, rng);
    const std::vector<float> weights = RandomRows(tokens, k, rng);
    std::vector<float> out(tokens * hidden, NAN);
    std::vector<double> want(tokens * hidden);
    MoeCombineF32(y_perm.data(), hidden, slot.data(), weights.data(), tokens, k, out.data(), 2);
    MoeCombineReference(y_perm.data(), hidden, slot_ref.data(), weights.data(), tokens, k,
                        want.data());
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], 1e-5) << i;
  }
}

// ---- grouped experts

struct ExpertsCase {
  const char* name;
  Format format;
  int64_t hidden;
  std::vector<int64_t> widths;  // cycled over the experts
  std::vector<int32_t> rows;    // rows per expert (0: expert not selected)
};

void PrintTo(const ExpertsCase& c, std::ostream* os) { *os << c.name; }

class MoeExpertsTest : public ::testing::TestWithParam<ExpertsCase> {};

TEST_P(MoeExpertsTest, MatchesReferenceForAnyThreadCount) {
  const ExpertsCase& c = GetParam();
  std::mt19937_64 rng(c.hidden * 7 + c.rows.size());
  const int64_t count = static_cast<int64_t>(c.rows.size());
  const std::vector<Expert> experts = RandomExperts(count, c.hidden, c.widths, c.format, rng);
  const std::vector<MoeExpertWeights> views = Views(experts, 0, count);
  const int64_t max_width = *std::max_element(c.widths.begin(), c.widths.end());
  ASSERT_EQ(MoeExpertsWeightsError(views, c.hidden, max_width), "");
  std::vector<int32_t> off(count + 1, 0);
  for (int64_t e = 0; e < count; ++e) off[e + 1] = off[e] + c.rows[e];
  const int64_t rows = off[count];
  const std::vector<float> x = RandomRows(rows, c.hidden, rng);
  std::vector<double> want(rows * c.hidden);
  MoeExpertsSwiGluReference(x.data(), c.hidden, off.data(), views, want.data());
  std::vector<float> first;
  for (int threads : {1, 2, 5}) {
    SCOPED_TRACE(threads);
    std::vector<float> y(rows * c.hidden, NAN);
    std::vector<float> ws(MoeExpertsWorkspaceFloats(rows, max_width, threads), NAN);
    MoeExpertsSwiGluF32(x.data(), c.hidden, off.data(), views, max_width, y.data(), ws.data(),
                        threads);
    double err2 = 0, ref2 = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_TRUE(std::isfinite(y[i])) << "row " << i / c.hidden << " not written";
      err2 += (y[i] - want[i]) * (y[i] - want[i]);
      ref2 += want[i] * want[i];
      // f32 accumulation over hidden + width terms of unit-scale products.
      ASSERT_NEAR(y[i], want[i], 2e-5 * std::sqrt(double(c.hidden + max_width)))
          << "row " << i / c.hidden << " col " << i % c.hidden;
    }
    EXPECT_LT(std::sqrt(err2 / std::max(ref2, 1e-30)), 1e-5);
    if (first.empty()) {
      first = y;
    } else {
      EXPECT_EQ(y, first) << "results depend on the thread count";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MoeExpertsTest,
    ::testing::Values(
        ExpertsCase{"f32_odd", Format::kF32, 37, {23}, {1, 0, 3, 2, 0, 1, 5}},
        ExpertsCase{"bf16_decode", Format::kBf16, 72, {40}, {1, 1, 0, 1, 1, 0, 0, 1, 1, 1}},
        // One expert past the 64-row block, a wider "shared" expert (every 4th).
        ExpertsCase{"bf16_prefill_blocks", Format::kBf16, 48, {24, 24, 24, 56}, {70, 3, 0, 130, 1}},
        ExpertsCase{"nvfp4", Format::kNvfp4, 64, {48, 80}, {2, 0, 1, 67, 4, 1}},
        ExpertsCase{"none_selected", Format::kF32, 16, {8}, {0, 0, 0}}),
    [](const ::testing::TestParamInfo<ExpertsCase>& info) { return std::string(info.param.name); });

TEST(MoeExpertsTest, WeightErrorsNameTheExpert) {
  std::mt19937_64 rng(1);
  std::vector<Expert> experts = RandomExperts(3, 32, {16}, Format::kF32, rng);
  experts[2].down = RandomWeight(32, 24, Format::kF32, rng);  // width 24 != 16
  const std::vector<MoeExpertWeights> views = Views(experts, 0, 3);
  EXPECT_THAT(MoeExpertsWeightsError(views, 32, 16), ::testing::HasSubstr("expert 2"));
  EXPECT_THAT(MoeExpertsWeightsError(Views(experts, 0, 2), 32, 8),
              ::testing::HasSubstr("expert 0"));  // wider than the workspace allows
}

// ---- a whole MoE layer

// y[t] = sum over the reference's chosen experts of w * E(x[t]) (+ shared(x[t])), per token in
// float64 with no grouping at all.
std::vector<double> LayerReference(const std::vector<float>& x, int64_t tokens, int64_t hidden,
                                   const std::vector<float>& logits, const float* bias,
                                   const MoeRouterParams& p, const std::vector<Expert>& experts) {
  std::vector<int32_t> ids(tokens * p.top_k);
  std::vector<double> w(tokens * p.top_k);
  MoeRouteReference(logits.data(), tokens, bias, p, ids.data(), w.data());
  std::vector<double> y(tokens * hidden, 0.0), one(hidden);
  const int32_t single[2] = {0, 1};
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < p.top_k; ++j) {
      const std::vector<MoeExpertWeights> v =
          Views(experts, ids[t * p.top_k + j], ids[t * p.top_k + j] + 1);
      MoeExpertsSwiGluReference(&x[t * hidden], hidden, single, v, one.data());
      for (int64_t i = 0; i < hidden; ++i) y[t * hidden + i] += w[t * p.top_k + j] * one[i];
    }
  }
  return y;
}

// The runtime path for the experts [first, first + local): returns this rank's partial output.
std::vector<float> LayerKernels(const std::vector<float>& x, int64_t tokens, int64_t hidden,
                                const std::vector<float>& logits, const float* bias,
                                const MoeRouterParams& p, const std::vector<Expert>& experts,
                                int64_t first, int64_t local, int64_t max_width, int threads) {
  std::vector<int32_t> ids(tokens * p.top_k);
  std::vector<float> w(tokens * p.top_k);
  MoeRouteF32(logits.data(), tokens, bias, p, ids.data(), w.data(), threads);
  std::vector<int32_t> off(local + 1), perm(tokens * p.top_k), slot(tokens * p.top_k);
  const int64_t rows = MoePermutePlan(ids.data(), tokens, p.top_k, first, local, off.data(),
                                      perm.data(), slot.data());
  std::vector<float> x_perm(rows * hidden), y_perm(rows * hidden);
  MoeGatherRowsF32(x.data(), hidden, perm.data(), rows, x_perm.data(), threads);
  std::vector<float> ws(MoeExpertsWorkspaceFloats(rows, max_width, threads));
  MoeExpertsSwiGluF32(x_perm.data(), hidden, off.data(), Views(experts, first, first + local),
                      max_width, y_perm.data(), ws.data(), threads);
  std::vector<float> out(tokens * hidden);
  MoeCombineF32(y_perm.data(), hidden, slot.data(), w.data(), tokens, p.top_k, out.data(), threads);
  return out;
}

TEST(MoeLayerTest, GroupedPathAndExpertParallelSplitsMatchPerTokenReference) {
  const int64_t tokens = 29, hidden = 48, experts_n = 24, width = 32;
  std::mt19937_64 rng(77);
  const std::vector<Expert> experts = RandomExperts(experts_n, hidden, {width}, Format::kBf16, rng);
  const std::vector<float> x = RandomRows(tokens, hidden, rng);
  const std::vector<float> logits = RandomRows(tokens, experts_n, rng);
  std::vector<float> bias = RandomRows(1, experts_n, rng);
  for (float& b : bias) b *= 0.05f;
  MoeRouterParams p;
  p.num_experts = experts_n;
  p.top_k = 5;
  p.scoring = MoeRouterScoring::kSigmoid;
  p.norm_topk_prob = true;
  p.routed_scaling_factor = 2.5f;
  p.n_group = 4;
  p.topk_group = 2;
  const std::vector<double> want =
      LayerReference(x, tokens, hidden, logits, bias.data(), p, experts);
  // ep = 1, 2 (12 + 12), 3 uneven (5 + 11 + 8): partial outputs summed as the all-reduce would.
  for (const std::vector<int64_t>& split :
       {std::vector<int64_t>{24}, std::vector<int64_t>{12, 12}, std::vector<int64_t>{5, 11, 8}}) {
    SCOPED_TRACE(split.size());
    std::vector<double> sum(tokens * hidden, 0.0);
    int64_t first = 0;
    for (int64_t local : split) {
      const std::vector<float> part =
          LayerKernels(x, tokens, hidden, logits, bias.data(), p, experts, first, local, width, 3);
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += part[i];
      first += local;
    }
    for (size_t i = 0; i < sum.size(); ++i) ASSERT_NEAR(sum[i], want[i], 2e-4) << i;
  }
}

}  // namespace
}  // namespace sparkstack::kernels
