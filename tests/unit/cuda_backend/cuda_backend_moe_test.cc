// The CUDA backend's AddBias, MoeRoute and MoeExperts against the CPU backend and the float64
// references beside the CPU kernels (kernels/cpu/moe_*.h), on fresh random data at odd sizes, with
// NaN-poisoned outputs. Built twice, like cuda_backend_ops_test.cc: against the CUDA emulation
// (label `emulated`, never skips) and the CUDA runtime (label `cuda`, skips without a device).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/moe_experts.h"
#include "kernels/cpu/moe_permute.h"
#include "kernels/cpu/moe_router.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/core/half.h"
#include "tests/unit/cuda_backend/cuda_vs_cpu_test.h"

namespace sparkstack {
namespace {

CudaBackendOptions MoeOptions() {
  CudaBackendOptions o;
  o.max_tokens = 64;
  o.max_linear_k = 256;
  return o;
}

class CudaMoeTest : public testing::CudaVsCpuTest<MoeOptions> {
 protected:
  // A random [n, k] weight: dense of `dtype`, or NVFP4 quantized from f32 when `nvfp4`.
  Weight RandomWeight(int64_t n, int64_t k, DType dtype, bool nvfp4) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(k));
    if (!nvfp4) return *Weight::Dense(Random({n, k}, dtype, scale));
    Tensor w = Random({n, k}, DType::kF32, scale);
    Tensor codes = Tensor::Zeros(DType::kU8, {n, k / 2});
    Tensor scales = Tensor::Zeros(DType::kF8E4M3, {n, k / 16});
    float global = 0;
    kernels::Nvfp4QuantizeWeightReference(w.data_as<float>(), n, k, k, codes.data_as<uint8_t>(),
                                          k / 2, scales.data_as<uint8_t>(), k / 16, &global);
    return *Weight::Nvfp4({.codes = codes,
                           .block_scales = scales,
                           .global_scale = global,
                           .input_scale = std::nullopt});
  }
};

// max |got - want| <= tolerance * max(1, max |want|), printing the first few mismatches.
void ExpectClose(const float* got, const std::vector<double>& want, double tolerance,
                 const std::string& what) {
  double scale = 1.0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  int reported = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got[i];
    if (!(std::fabs(g - want[i]) <= tolerance * scale) && reported++ < 5) {
      ADD_FAILURE() << what << " element " << i << ": got " << g << ", want " << want[i];
    }
  }
}

std::vector<double> AsDoubles(const Tensor& t) {
  return std::vector<double>(t.data_as<float>(), t.data_as<float>() + t.numel());
}

TEST_F(CudaMoeTest, AddBiasEqualsTheCpuBackendForEveryBiasType) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t rows : {1, 3, 17}) {
      const int64_t width = 301;
      Tensor x = Random({rows, width});
      Tensor bias = Random({width}, dtype);
      Tensor dx = OnDevice(x);
      ASSERT_TRUE(cuda().AddBias(dx, OnDevice(bias)).ok());
      Tensor want = x.Clone();
      ASSERT_TRUE(cpu().AddBias(want, bias).ok());
      // One f32 add of the widened bias per element: bit for bit.
      ExpectClose(Host(dx).data_as<float>(), AsDoubles(want), 0.0,
                  std::string(DTypeName(dtype)) + " rows " + std::to_string(rows));
    }
  }
}

TEST_F(CudaMoeTest, AddBiasRejectsAWrongWidth) {
  Tensor dx = OnDevice(Random({3, 20}));
  const absl::Status s = cuda().AddBias(dx, OnDevice(Random({21})));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bias"), std::string_view::npos) << s;
}

struct RouteCase {
  MoeRouting routing;
  bool bias;
};

std::vector<RouteCase> RouteCases() {
  return {
      {{.num_experts = 6, .top_k = 2, .norm_topk_prob = true}, false},  // Qwen3-MoE
      {{.num_experts = 10, .top_k = 3}, false},
      {{.num_experts = 10,
        .top_k = 3,
        .sigmoid = true,
        .norm_topk_prob = true,
        .routed_scaling_factor = 2.5f,
        .n_group = 5,
        .topk_group = 2},
       true},  // DeepSeek-V3 noaux_tc
      {{.num_experts = 6, .top_k = 2, .sigmoid = true, .norm_topk_prob = true}, true},  // GLM
      {{.num_experts = 12, .top_k = 3, .n_group = 4, .topk_group = 3}, false},
  };
}

TEST_F(CudaMoeTest, MoeRouteEqualsTheCpuBackendAndTheFloat64Reference) {
  for (const RouteCase& c : RouteCases()) {
    const MoeRouting& r = c.routing;
    for (int64_t tokens : {1, 3, 17}) {
      const std::string what = "experts " + std::to_string(r.num_experts) + " top_k " +
                               std::to_string(r.top_k) + " groups " + std::to_string(r.n_group) +
                               (r.sigmoid ? " sigmoid" : " softmax") + " tokens " +
                               std::to_string(tokens);
      SCOPED_TRACE(what);
      Tensor logits = Random({tokens, r.num_experts}, DType::kF32, 2.0f);
      Tensor bias = c.bias ? Random({r.num_experts}, DType::kF32, 0.3f) : Tensor();
      Tensor ids = Poisoned({tokens, r.top_k}, DType::kI32);
      Tensor weights = Poisoned({tokens, r.top_k});
      const absl::Status s =
          cuda().MoeRoute(OnDevice(logits), c.bias ? OnDevice(bias) : Tensor(), r, ids, weights);
      ASSERT_TRUE(s.ok()) << s;
      Tensor cpu_ids = Tensor::Zeros(DType::kI32, {tokens, r.top_k});
      Tensor cpu_weights = Tensor::Zeros(DType::kF32, {tokens, r.top_k});
      ASSERT_TRUE(cpu().MoeRoute(logits, bias, r, cpu_ids, cpu_weights).ok());
      Tensor got_ids = Host(ids);
      for (int64_t i = 0; i < got_ids.numel(); ++i) {
        ASSERT_EQ(got_ids.data_as<int32_t>()[i], cpu_ids.data_as<int32_t>()[i]) << "slot " << i;
      }
      Tensor got_weights = Host(weights);
      ExpectClose(got_weights.data_as<float>(), AsDoubles(cpu_weights), 1e-6, "weights vs cpu");
      const kernels::MoeRouterParams p{.num_experts = r.num_experts,
                                       .top_k = r.top_k,
                                       .scoring = r.sigmoid ? kernels::MoeRouterScoring::kSigmoid
                                                            : kernels::MoeRouterScoring::kSoftmax,
                                       .norm_topk_prob = r.norm_topk_prob,
                                       .routed_scaling_factor = r.routed_scaling_factor,
                                       .n_group = r.n_group,
                                       .topk_group = r.topk_group};
      std::vector<int32_t> ref_ids(tokens * r.top_k);
      std::vector<double> ref_weights(tokens * r.top_k);
      kernels::MoeRouteReference(logits.data_as<float>(), tokens,
                                 c.bias ? bias.data_as<float>() : nullptr, p, ref_ids.data(),
                                 ref_weights.data());
      for (size_t i = 0; i < ref_ids.size(); ++i) {
        EXPECT_EQ(got_ids.data_as<int32_t>()[i], ref_ids[i]) << "reference slot " << i;
      }
      ExpectClose(got_weights.data_as<float>(), ref_weights, 1e-5, "weights vs reference");
    }
  }
}

TEST_F(CudaMoeTest, MoeRouteRejectsBadParametersAndShapes) {
  Tensor logits = OnDevice(Random({3, 10}));
  Tensor ids = Poisoned({3, 2}, DType::kI32);
  Tensor weights = Poisoned({3, 2});
  absl::Status s = cuda().MoeRoute(logits, Tensor(), {.num_experts = 10, .top_k = 2, .n_group = 3},
                                   ids, weights);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("n_group"), std::string_view::npos) << s;
  s = cuda().MoeRoute(logits, Tensor(), {.num_experts = 12, .top_k = 2}, ids, weights);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("logits"), std::string_view::npos) << s;
}

struct ExpertsCase {
  int64_t num_experts;
  int64_t top_k;
  int64_t first;  // the local slice [first, first + local)
  int64_t local;
  int64_t hidden;
  DType dtype;
  bool nvfp4;
};

// The float64 reference of MoeExperts: plan, gather, experts and combine from the references
// beside the CPU kernels.
std::vector<double> ReferenceExperts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                                     const ExpertSet& set) {
  const int64_t tokens = x.dim(0), top_k = ids.dim(1), hidden = set.hidden;
  const int64_t local = std::ssize(set.experts);
  std::vector<int32_t> offsets(local + 1), perm(tokens * top_k), slot_row(tokens * top_k);
  const int64_t rows =
      kernels::MoePermutePlanReference(ids.data_as<int32_t>(), tokens, top_k, set.first, local,
                                       offsets.data(), perm.data(), slot_row.data());
  std::vector<float> x_perm(std::max<int64_t>(rows, 1) * hidden);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(x.data_as<float>() + perm[r] * hidden, hidden, x_perm.data() + r * hidden);
  }
  std::vector<kernels::MoeExpertWeights> views;
  for (const ExpertMlp& e : set.experts) views.push_back({&e.gate, &e.up, &e.down});
  std::vector<double> y_perm(std::max<int64_t>(rows, 1) * hidden);
  kernels::MoeExpertsSwiGluReference(x_perm.data(), hidden, offsets.data(), views, y_perm.data());
  std::vector<double> out(tokens * hidden, 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < top_k; ++j) {
      const int32_t r = slot_row[t * top_k + j];
      if (r < 0) continue;
      const double w = weights.data_as<float>()[t * top_k + j];
      for (int64_t i = 0; i < hidden; ++i) out[t * hidden + i] += w * y_perm[r * hidden + i];
    }
  }
  return out;
}

TEST_F(CudaMoeTest, MoeExpertsEqualsTheCpuBackendAndTheFloat64Reference) {
  const std::vector<ExpertsCase> cases = {
      {6, 2, 0, 6, 77, DType::kBF16, false},  {10, 3, 0, 10, 45, DType::kF32, false},
      {10, 3, 4, 3, 77, DType::kBF16, false},  // an expert-parallel slice: some tokens get zeros
      {6, 2, 2, 3, 61, DType::kF16, false},   {6, 2, 0, 6, 80, DType::kF32, true},
      {10, 3, 3, 4, 96, DType::kF32, true},
  };
  for (const ExpertsCase& c : cases) {
    // Widths differ per expert; NVFP4 needs multiples of 16 along K (hidden and the widths).
    ExpertSet host_set{.first = c.first, .hidden = c.hidden, .max_width = 0, .experts = {}};
    ExpertSet cpu_set = host_set, dev_set = host_set;
    for (int64_t e = 0; e < c.local; ++e) {
      const int64_t width = c.nvfp4 ? 32 + 16 * (e % 3) : 23 + 7 * e;
      host_set.max_width = std::max(host_set.max_width, width);
      ExpertMlp m{.gate = RandomWeight(width, c.hidden, c.dtype, c.nvfp4),
                  .up = RandomWeight(width, c.hidden, c.dtype, c.nvfp4),
                  .down = RandomWeight(c.hidden, width, c.dtype, c.nvfp4)};
      host_set.experts.push_back(m);
      ExpertMlp dm{.gate = *cuda().PrepareWeight(m.gate),
                   .up = *cuda().PrepareWeight(m.up),
                   .down = *cuda().PrepareWeight(m.down)};
      dev_set.experts.push_back(dm);
      ExpertMlp cm{.gate = *cpu().PrepareWeight(m.gate),
                   .up = *cpu().PrepareWeight(m.up),
                   .down = *cpu().PrepareWeight(m.down)};
      cpu_set.experts.push_back(cm);
    }
    dev_set.max_width = cpu_set.max_width = host_set.max_width;
    for (int64_t tokens : {1, 3, 17}) {
      const std::string what = std::string(c.nvfp4 ? "nvfp4" : DTypeName(c.dtype)) + " experts " +
                               std::to_string(c.num_experts) + " top_k " + std::to_string(c.top_k) +
                               " local [" + std::to_string(c.first) + ", " +
                               std::to_string(c.first + c.local) + ") tokens " +
                               std::to_string(tokens);
      SCOPED_TRACE(what);
      const MoeRouting routing{
          .num_experts = c.num_experts, .top_k = c.top_k, .norm_topk_prob = true};
      Tensor logits = Random({tokens, c.num_experts}, DType::kF32, 2.0f);
      Tensor ids = Tensor::Zeros(DType::kI32, {tokens, c.top_k});
      Tensor weights = Tensor::Zeros(DType::kF32, {tokens, c.top_k});
      ASSERT_TRUE(cpu().MoeRoute(logits, Tensor(), routing, ids, weights).ok());
      Tensor x = Random({tokens, c.hidden});

      const int64_t bytes = cuda().MoeExpertsWorkspaceBytes(tokens, c.top_k, dev_set);
      Tensor workspace = Poisoned({bytes}, DType::kU8);
      Tensor out = Poisoned({tokens, c.hidden});
      const absl::Status s =
          cuda().MoeExperts(OnDevice(x), OnDevice(ids), OnDevice(weights), dev_set, workspace, out);
      ASSERT_TRUE(s.ok()) << s;
      Tensor got = Host(out);

      Tensor cpu_ws =
          Tensor::Zeros(DType::kU8, {cpu().MoeExpertsWorkspaceBytes(tokens, c.top_k, cpu_set)});
      Tensor cpu_out = Tensor::Zeros(DType::kF32, {tokens, c.hidden});
      ASSERT_TRUE(cpu().MoeExperts(x, ids, weights, cpu_set, cpu_ws, cpu_out).ok());
      ExpectClose(got.data_as<float>(), AsDoubles(cpu_out), 1e-5, "vs cpu");
      ExpectClose(got.data_as<float>(), ReferenceExperts(x, ids, weights, host_set), 1e-5,
                  "vs float64 reference");
      // Tokens with no local expert get zeros (not left poisoned).
      for (int64_t t = 0; t < tokens; ++t) {
        bool local = false;
        for (int64_t j = 0; j < c.top_k; ++j) {
          const int32_t id = ids.data_as<int32_t>()[t * c.top_k + j];
          local = local || (id >= c.first && id < c.first + c.local);
        }
        if (local) continue;
        for (int64_t i = 0; i < c.hidden; ++i) {
          ASSERT_EQ(got.data_as<float>()[t * c.hidden + i], 0.0f) << "token " << t;
        }
      }
    }
  }
}

TEST_F(CudaMoeTest, MoeExpertsNamesAMismatchedExpertAndAShortWorkspace) {
  const int64_t hidden = 40, width = 24, tokens = 3, top_k = 2;
  ExpertSet set{.first = 0, .hidden = hidden, .max_width = width, .experts = {}};
  for (int e = 0; e < 4; ++e) {
    set.experts.push_back(
        {.gate = *cuda().PrepareWeight(RandomWeight(width, hidden, DType::kF32, false)),
         .up = *cuda().PrepareWeight(RandomWeight(width, hidden, DType::kF32, false)),
         .down = *cuda().PrepareWeight(RandomWeight(hidden, width, DType::kF32, false))});
  }
  Tensor x = OnDevice(Random({tokens, hidden}));
  Tensor ids_host = Tensor::Zeros(DType::kI32, {tokens, top_k});
  for (int64_t i = 0; i < ids_host.numel(); ++i) ids_host.data_as<int32_t>()[i] = i % 4;
  Tensor ids = OnDevice(ids_host);
  Tensor weights = OnDevice(Random({tokens, top_k}));
  Tensor out = Poisoned({tokens, hidden});
  const int64_t bytes = cuda().MoeExpertsWorkspaceBytes(tokens, top_k, set);
  Tensor workspace = Poisoned({bytes}, DType::kU8);

  ExpertSet bad = set;
  bad.experts[2].down = *cuda().PrepareWeight(RandomWeight(hidden + 1, width, DType::kF32, false));
  absl::Status s = cuda().MoeExperts(x, ids, weights, bad, workspace, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("expert 2 down"), std::string_view::npos) << s;

  Tensor wide_x = OnDevice(Random({tokens, hidden + 3}));
  s = cuda().MoeExperts(wide_x, ids, weights, set, workspace, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("moe_experts: x"), std::string_view::npos) << s;

  Tensor small = Poisoned({bytes - 1}, DType::kU8);
  s = cuda().MoeExperts(x, ids, weights, set, small, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("workspace"), std::string_view::npos) << s;
}

}  // namespace
}  // namespace sparkstack
