#include "runtime/backend/cpu/cpu_moe_ops.h"

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/mla_attention.h"
#include "kernels/cpu/moe_experts.h"
#include "kernels/cpu/moe_permute.h"
#include "kernels/cpu/moe_router.h"

namespace sparkstack::cpu {
namespace {

absl::Status Mismatch(std::string_view op, std::string_view what, const Tensor& t,
                      const std::string& expected) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(op), ": ", std::string(what), " is ",
                                                 t.DebugString(), ", expected ", expected));
}

absl::Status Expect(std::string_view op, std::string_view what, const Tensor& t, DType dtype,
                    const Shape& shape) {
  if (t.dtype() != dtype || t.device() != Device::kCpu || t.shape() != shape) {
    return Mismatch(op, what, t, absl::StrCat(std::string(DTypeName(dtype)), ShapeToString(shape)));
  }
  return absl::OkStatus();
}

// Workspace carving shared by MoeExpertsWorkspaceBytes and MoeExperts.
struct ExpertsLayout {
  int64_t slots = 0;
  size_t offsets = 0, perm = 0, slot_row = 0, x_perm = 0, y_perm = 0, kernel = 0, total = 0;
};

ExpertsLayout Layout(int64_t tokens, int64_t top_k, const ExpertSet& experts, int threads) {
  auto align = [](size_t bytes) { return (bytes + 127) / 128 * 128; };
  ExpertsLayout l;
  l.slots = tokens * top_k;
  const int64_t local = static_cast<int64_t>(experts.experts.size());
  size_t at = 0;
  l.offsets = at;
  at += align((local + 1) * sizeof(int32_t));
  l.perm = at;
  at += align(l.slots * sizeof(int32_t));
  l.slot_row = at;
  at += align(l.slots * sizeof(int32_t));
  l.x_perm = at;
  at += align(l.slots * experts.hidden * sizeof(float));
  l.y_perm = at;
  at += align(l.slots * experts.hidden * sizeof(float));
  l.kernel = at;
  at += align(kernels::MoeExpertsWorkspaceFloats(l.slots, experts.max_width, threads) *
              sizeof(float));
  l.total = at;
  return l;
}

kernels::PagedBatch Batch(const AttentionMetadata& m) {
  return {.num_seqs = m.num_seqs,
          .query_start = m.query_start.data_as<int32_t>(),
          .seq_lens = m.seq_lens.data_as<int32_t>(),
          .block_table = m.block_table.data_as<int32_t>(),
          .max_blocks = m.block_table.dim(1)};
}

}  // namespace

absl::Status AddBias(Tensor& x, const Tensor& bias) {
  if (x.rank() != 2 || x.dtype() != DType::kF32 || x.device() != Device::kCpu) {
    return Mismatch("add_bias", "x", x, "f32 [rows, width]");
  }
  const int64_t width = x.dim(1);
  if (bias.rank() != 1 || bias.dim(0) != width || !kernels::IsFloatDType(bias.dtype())) {
    return Mismatch("add_bias", "bias", bias, absl::StrCat("f32/f16/bf16 [", width, "]"));
  }
  std::vector<float> b(width);
  kernels::LoadAsFloat(bias.data(), bias.dtype(), 0, width, b.data());
  float* v = x.data_as<float>();
  for (int64_t r = 0; r < x.dim(0); ++r) {
    for (int64_t i = 0; i < width; ++i) v[r * width + i] += b[i];
  }
  return absl::OkStatus();
}

absl::Status MoeRoute(const Tensor& logits, const Tensor& bias, const MoeRouting& routing,
                      Tensor& ids, Tensor& weights, int threads) {
  const kernels::MoeRouterParams params{.num_experts = routing.num_experts,
                                        .top_k = routing.top_k,
                                        .scoring = routing.sigmoid
                                                       ? kernels::MoeRouterScoring::kSigmoid
                                                       : kernels::MoeRouterScoring::kSoftmax,
                                        .norm_topk_prob = routing.norm_topk_prob,
                                        .routed_scaling_factor = routing.routed_scaling_factor,
                                        .n_group = routing.n_group,
                                        .topk_group = routing.topk_group};
  if (const char* error = kernels::MoeRouterParamsError(params); *error != '\0') {
    return absl::InvalidArgumentError(absl::StrCat("moe_route: ", error));
  }
  if (logits.rank() != 2) return Mismatch("moe_route", "logits", logits, "f32 [tokens, experts]");
  const int64_t tokens = logits.dim(0);
  const int64_t e = routing.num_experts;
  const int64_t k = routing.top_k;
  if (auto s = Expect("moe_route", "logits", logits, DType::kF32, {tokens, e}); !s.ok()) return s;
  if (bias.defined() && bias.numel() > 0) {
    if (auto s = Expect("moe_route", "bias", bias, DType::kF32, {e}); !s.ok()) return s;
  }
  if (auto s = Expect("moe_route", "ids", ids, DType::kI32, {tokens, k}); !s.ok()) return s;
  if (auto s = Expect("moe_route", "weights", weights, DType::kF32, {tokens, k}); !s.ok()) {
    return s;
  }
  kernels::MoeRouteF32(logits.data_as<float>(), tokens,
                       bias.defined() && bias.numel() > 0 ? bias.data_as<float>() : nullptr, params,
                       ids.data_as<int32_t>(), weights.data_as<float>(), threads);
  return absl::OkStatus();
}

int64_t MoeExpertsWorkspaceBytes(int64_t tokens, int64_t top_k, const ExpertSet& experts,
                                 int threads) {
  return static_cast<int64_t>(Layout(tokens, top_k, experts, threads).total);
}

absl::Status MoeExperts(const Tensor& x, const Tensor& ids, const Tensor& weights,
                        const ExpertSet& experts, Tensor& workspace, Tensor& out, int threads) {
  if (x.rank() != 2 || ids.rank() != 2) {
    return Mismatch("moe_experts", "x", x, "f32 [tokens, hidden] with ids [tokens, top_k]");
  }
  const int64_t tokens = x.dim(0);
  const int64_t hidden = experts.hidden;
  const int64_t top_k = ids.dim(1);
  if (auto s = Expect("moe_experts", "x", x, DType::kF32, {tokens, hidden}); !s.ok()) return s;
  if (auto s = Expect("moe_experts", "ids", ids, DType::kI32, {tokens, top_k}); !s.ok()) return s;
  if (auto s = Expect("moe_experts", "weights", weights, DType::kF32, {tokens, top_k}); !s.ok()) {
    return s;
  }
  if (auto s = Expect("moe_experts", "out", out, DType::kF32, {tokens, hidden}); !s.ok()) return s;
  std::vector<kernels::MoeExpertWeights> views;
  views.reserve(experts.experts.size());
  for (const ExpertMlp& e : experts.experts) views.push_back({&e.gate, &e.up, &e.down});
  if (std::string error = kernels::MoeExpertsWeightsError(views, hidden, experts.max_width);
      !error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("moe_experts: ", error));
  }
  const ExpertsLayout l = Layout(tokens, top_k, experts, threads);
  if (workspace.device() != Device::kCpu || workspace.nbytes() < l.total) {
    return Mismatch("moe_experts", "workspace", workspace, absl::StrCat(">= ", l.total, " bytes"));
  }
  char* base = static_cast<char*>(workspace.data());
  auto* offsets = reinterpret_cast<int32_t*>(base + l.offsets);
  auto* perm = reinterpret_cast<int32_t*>(base + l.perm);
  auto* slot_row = reinterpret_cast<int32_t*>(base + l.slot_row);
  auto* x_perm = reinterpret_cast<float*>(base + l.x_perm);
  auto* y_perm = reinterpret_cast<float*>(base + l.y_perm);
  auto* scratch = reinterpret_cast<float*>(base + l.kernel);
  const int64_t local = static_cast<int64_t>(views.size());
  const int64_t rows = kernels::MoePermutePlan(ids.data_as<int32_t>(), tokens, top_k, experts.first,
                                               local, offsets, perm, slot_row);
  kernels::MoeGatherRowsF32(x.data_as<float>(), hidden, perm, rows, x_perm, threads);
  kernels::MoeExpertsSwiGluF32(x_perm, hidden, offsets, views, experts.max_width, y_perm, scratch,
                               threads);
  kernels::MoeCombineF32(y_perm, hidden, slot_row, weights.data_as<float>(), tokens, top_k,
                         out.data_as<float>(), threads);
  return absl::OkStatus();
}

absl::Status StoreLatent(const Tensor& latent, const Tensor& slot_mapping, Tensor& cache) {
  if (cache.rank() != 4 || cache.dtype() != DType::kF32 || cache.dim(2) != 1) {
    return Mismatch("store_latent", "cache", cache, "f32 [blocks, block_size, 1, width]");
  }
  const int64_t width = cache.dim(3);
  const int64_t tokens = latent.rank() == 2 ? latent.dim(0) : -1;
  if (auto s = Expect("store_latent", "latent", latent, DType::kF32, {tokens, width}); !s.ok()) {
    return s;
  }
  if (auto s = Expect("store_latent", "slot_mapping", slot_mapping, DType::kI32, {tokens});
      !s.ok()) {
    return s;
  }
  const int32_t* slots = slot_mapping.data_as<int32_t>();
  for (int64_t t = 0; t < tokens; ++t) {
    if (slots[t] < 0) continue;
    std::memcpy(cache.data_as<float>() + int64_t{slots[t]} * width,
                latent.data_as<float>() + t * width, width * sizeof(float));
  }
  return absl::OkStatus();
}

absl::Status PagedLatentAttention(const Tensor& q, const Tensor& cache, int64_t value_offset,
                                  int64_t value_width, const AttentionMetadata& m, float scale,
                                  Tensor& out, int threads) {
  if (cache.rank() != 4 || cache.dtype() != DType::kF32 || cache.dim(2) != 1 ||
      cache.dim(1) != m.block_size) {
    return Mismatch("paged_latent_attention", "cache", cache,
                    absl::StrCat("f32 [blocks, ", m.block_size, ", 1, width]"));
  }
  const int64_t width = cache.dim(3);
  if (q.rank() != 3 || q.dim(0) != m.num_tokens) {
    return Mismatch("paged_latent_attention", "q", q,
                    absl::StrCat("f32 [", m.num_tokens, ", heads, ", width, "]"));
  }
  const int64_t heads = q.dim(1);
  if (auto s = Expect("paged_latent_attention", "q", q, DType::kF32, {m.num_tokens, heads, width});
      !s.ok()) {
    return s;
  }
  if (value_offset < 0 || value_width <= 0 || value_offset + value_width > width) {
    return absl::InvalidArgumentError(absl::StrCat("paged_latent_attention: values [", value_offset,
                                                   ", ", value_offset + value_width,
                                                   ") outside rows of width ", width));
  }
  if (auto s = Expect("paged_latent_attention", "out", out, DType::kF32,
                      {m.num_tokens, heads, value_width});
      !s.ok()) {
    return s;
  }
  if (auto s = Expect("paged_latent_attention", "query_start", m.query_start, DType::kI32,
                      {m.num_seqs + 1});
      !s.ok()) {
    return s;
  }
  if (auto s = Expect("paged_latent_attention", "seq_lens", m.seq_lens, DType::kI32, {m.num_seqs});
      !s.ok()) {
    return s;
  }
  if (m.block_table.rank() != 2 || m.block_table.dim(0) != m.num_seqs ||
      m.block_table.dtype() != DType::kI32) {
    return Mismatch("paged_latent_attention", "block_table", m.block_table,
                    absl::StrCat("i32 [", m.num_seqs, ", max_blocks]"));
  }
  const kernels::LatentPool pool{.rows = cache.data_as<float>(),
                                 .block_size = m.block_size,
                                 .width = width,
                                 .value_offset = value_offset,
                                 .value_width = value_width};
  kernels::PagedLatentAttentionF32(q.data_as<float>(), m.num_tokens, heads, pool, Batch(m), scale,
                                   out.data_as<float>(), threads);
  return absl::OkStatus();
}

}  // namespace sparkstack::cpu
