#include "runtime/model/mla_attention.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/convert.h"
#include "runtime/core/half.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/linear_loader.h"
#include "runtime/model/moe_rope.h"
#include "runtime/quant/nvfp4_quantizer.h"

namespace sparkstack {
namespace {

// kv_b_proj [heads * (nope + v), kv_lora] as f32 host values (dequantized when NVFP4).
absl::StatusOr<std::vector<float>> DenseValues(const Weight& w) {
  std::vector<float> values(w.rows() * w.cols());
  if (w.format() == WeightFormat::kNvfp4) {
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor dense, DequantizeNvfp4(w));
    std::copy(dense.data_as<float>(), dense.data_as<float>() + values.size(), values.begin());
  } else {
    kernels::LoadAsFloat(w.dense().data(), w.dense().dtype(), 0, w.rows() * w.cols(),
                         values.data());
  }
  return values;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MlaAttention>> MlaAttention::Load(
    const Checkpoint& checkpoint, const std::string& prefix, const ModelConfig& config,
    const AttentionShard& shard, std::shared_ptr<const RopeTables> rope, Backend& backend) {
  const MlaConfig& m = config.mla;
  const int64_t hidden = config.hidden_size;
  const int64_t nope = m.qk_nope_head_dim;
  const int64_t dq = m.qk_nope_head_dim + m.qk_rope_head_dim;
  const int64_t kv_rows = m.qk_nope_head_dim + m.v_head_dim;
  const int64_t heads = config.num_heads;
  auto owned = std::make_unique<MlaAttention>();
  MlaAttention& b = *owned;
  b.rope_ = std::move(rope);
  b.mla_ = m;
  b.heads_ = shard.heads;
  b.eps_ = static_cast<float>(config.rms_norm_eps);
  b.scale_ = static_cast<float>(MlaSoftmaxScale(config));
  const Range all_hidden = {0, hidden};
  const Range q_rows = {shard.q_heads.begin * dq, shard.q_heads.end * dq};
  if (m.q_lora_rank > 0) {
    SPARKSTACK_ASSIGN_OR_RETURN(
        b.q_a_, LoadShardedLinear(checkpoint, prefix + "q_a_proj", m.q_lora_rank, hidden,
                                  {0, m.q_lora_rank}, all_hidden, backend));
    SPARKSTACK_ASSIGN_OR_RETURN(
        Tensor norm, LoadFloatTensor(checkpoint, prefix + "q_a_layernorm.weight", {m.q_lora_rank}));
    SPARKSTACK_ASSIGN_OR_RETURN(b.q_a_norm_, backend.Upload(norm));
    SPARKSTACK_ASSIGN_OR_RETURN(
        b.q_b_, LoadShardedLinear(checkpoint, prefix + "q_b_proj", heads * dq, m.q_lora_rank,
                                  q_rows, {0, m.q_lora_rank}, backend));
  } else {
    SPARKSTACK_ASSIGN_OR_RETURN(b.q_, LoadShardedLinear(checkpoint, prefix + "q_proj", heads * dq,
                                                        hidden, q_rows, all_hidden, backend));
  }
  const int64_t latent_in = m.kv_lora_rank + m.qk_rope_head_dim;
  SPARKSTACK_ASSIGN_OR_RETURN(
      b.kv_a_, LoadShardedLinear(checkpoint, prefix + "kv_a_proj_with_mqa", latent_in, hidden,
                                 {0, latent_in}, all_hidden, backend));
  SPARKSTACK_ASSIGN_OR_RETURN(
      Tensor kv_norm,
      LoadFloatTensor(checkpoint, prefix + "kv_a_layernorm.weight", {m.kv_lora_rank}));
  SPARKSTACK_ASSIGN_OR_RETURN(b.kv_a_norm_, backend.Upload(kv_norm));

  // kv_b_proj: per head `nope` key rows then `v` value rows, each kv_lora wide.
  SPARKSTACK_ASSIGN_OR_RETURN(Weight kv_b, LoadLinear(checkpoint, prefix + "kv_b_proj"));
  if (kv_b.rows() != heads * kv_rows || kv_b.cols() != m.kv_lora_rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", prefix, "kv_b_proj.weight' in ", checkpoint.dir(), " is ", kv_b.DebugString(),
        ", expected [", heads * kv_rows, ", ", m.kv_lora_rank, "]"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(std::vector<float> kv_b_values, DenseValues(kv_b));
  const bool bf16 = kv_b.format() == WeightFormat::kDense && kv_b.dense().dtype() == DType::kBF16;
  for (int64_t h = shard.q_heads.begin; h < shard.q_heads.end; ++h) {
    const int64_t first = h * kv_rows;
    // W_kb,h^T [kv_lora, nope]: exact in the checkpoint's bf16, or f32.
    Tensor k_t = Tensor::Zeros(bf16 ? DType::kBF16 : DType::kF32, {m.kv_lora_rank, nope});
    for (int64_t r = 0; r < nope; ++r) {
      for (int64_t c = 0; c < m.kv_lora_rank; ++c) {
        const float v = kv_b_values[(first + r) * m.kv_lora_rank + c];
        if (bf16) {
          k_t.data_as<uint16_t>()[c * nope + r] = FloatToBf16(v);
        } else {
          k_t.data_as<float>()[c * nope + r] = v;
        }
      }
    }
    SPARKSTACK_ASSIGN_OR_RETURN(Weight k_absorb, Weight::Dense(std::move(k_t)));
    SPARKSTACK_ASSIGN_OR_RETURN(k_absorb, backend.PrepareWeight(k_absorb));
    b.k_absorb_.push_back(std::move(k_absorb));
    SPARKSTACK_ASSIGN_OR_RETURN(Weight v_absorb,
                                kv_b.SliceRows(first + nope, first + nope + m.v_head_dim));
    SPARKSTACK_ASSIGN_OR_RETURN(v_absorb, backend.PrepareWeight(v_absorb));
    b.v_absorb_.push_back(std::move(v_absorb));
  }
  const int64_t o_width = heads * m.v_head_dim;
  SPARKSTACK_ASSIGN_OR_RETURN(
      b.o_, LoadShardedLinear(
                checkpoint, prefix + "o_proj", hidden, o_width, all_hidden,
                {shard.q_heads.begin * m.v_head_dim, shard.q_heads.end * m.v_head_dim}, backend));
  return owned;
}

int64_t MlaAttention::WorkspaceBytes(int64_t tokens) const {
  const MlaConfig& m = mla_;
  const int64_t width = m.qk_rope_head_dim + m.kv_lora_rank;
  const int64_t dq = m.qk_nope_head_dim + m.qk_rope_head_dim;
  auto f32 = [&](int64_t n) { return static_cast<int64_t>(Arena::Reserved(tokens * n * 4)); };
  return f32(m.q_lora_rank) + f32(heads_ * dq) + f32(m.kv_lora_rank + m.qk_rope_head_dim) +
         f32(m.kv_lora_rank) + f32(width) + f32(heads_ * width) + f32(m.qk_nope_head_dim) +
         f32(m.kv_lora_rank) + f32(heads_ * m.kv_lora_rank) + f32(m.kv_lora_rank) +
         f32(m.v_head_dim) + f32(heads_ * m.v_head_dim);
}

absl::Status MlaAttention::Forward(Backend& backend, const Tensor& x, const ForwardBatch& batch,
                                   Tensor& k_cache, Tensor& v_cache, Arena& workspace,
                                   Tensor& out) const {
  const MlaConfig& m = mla_;
  const int64_t tokens = x.dim(0);
  const int64_t nope = m.qk_nope_head_dim;
  const int64_t pe = m.qk_rope_head_dim;
  const int64_t kvr = m.kv_lora_rank;
  const int64_t dq = nope + pe;
  const int64_t width = pe + kvr;  // latent row [k_pe | c_kv]
  const int64_t heads = heads_;
  auto take = [&](int64_t n) { return workspace.Take(DType::kF32, {tokens, n}); };

  // Queries.
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor q, take(heads * dq));
  if (m.q_lora_rank > 0) {
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor cq, take(m.q_lora_rank));
    SPARKSTACK_RETURN_IF_ERROR(backend.Linear(x, q_a_, cq));
    SPARKSTACK_RETURN_IF_ERROR(backend.RmsNorm(cq, q_a_norm_, eps_, cq));
    SPARKSTACK_RETURN_IF_ERROR(backend.Linear(cq, q_b_, q));
  } else {
    SPARKSTACK_RETURN_IF_ERROR(backend.Linear(x, q_, q));
  }

  // The latent row of each token: [RoPE(k_pe) | RMSNorm(c_kv)], stored into the pool.
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor kv, take(kvr + pe));
  SPARKSTACK_RETURN_IF_ERROR(backend.Linear(x, kv_a_, kv));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor ckv, take(kvr));
  SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(kv, 0, ckv, 0, kvr));
  SPARKSTACK_RETURN_IF_ERROR(backend.RmsNorm(ckv, kv_a_norm_, eps_, ckv));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor latent, take(width));
  SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(kv, kvr, latent, 0, pe));
  SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(ckv, 0, latent, pe, kvr));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor latent_heads, latent.Reshape({tokens, 1, width}));
  SPARKSTACK_RETURN_IF_ERROR(backend.Rope(latent_heads, batch.positions, *rope_));
  SPARKSTACK_RETURN_IF_ERROR(backend.StoreLatent(latent, batch.attention.slot_mapping, k_cache));

  // Absorbed queries [q_pe | W_kb^T q_nope] per head.
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor q_lat, take(heads * width));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor q_nope, take(nope));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor q_abs, take(kvr));
  for (int64_t h = 0; h < heads; ++h) {
    SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(q, h * dq + nope, q_lat, h * width, pe));
    SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(q, h * dq, q_nope, 0, nope));
    SPARKSTACK_RETURN_IF_ERROR(backend.Linear(q_nope, k_absorb_[h], q_abs));
    SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(q_abs, 0, q_lat, h * width + pe, kvr));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor q_rows, q_lat.Reshape({tokens, heads, width}));
  SPARKSTACK_RETURN_IF_ERROR(backend.Rope(q_rows, batch.positions, *rope_));

  SPARKSTACK_ASSIGN_OR_RETURN(Tensor attended, workspace.Take(DType::kF32, {tokens, heads, kvr}));
  SPARKSTACK_RETURN_IF_ERROR(
      backend.PagedLatentAttention(q_rows, k_cache, pe, kvr, batch.attention, scale_, attended));
  SPARKSTACK_ASSIGN_OR_RETURN(attended, attended.Reshape({tokens, heads * kvr}));

  // Values: o_h = W_vb,h (attended latent of head h), then o_proj.
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor head_latent, take(kvr));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor head_value, take(m.v_head_dim));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor values, take(heads * m.v_head_dim));
  for (int64_t h = 0; h < heads; ++h) {
    SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(attended, h * kvr, head_latent, 0, kvr));
    SPARKSTACK_RETURN_IF_ERROR(backend.Linear(head_latent, v_absorb_[h], head_value));
    SPARKSTACK_RETURN_IF_ERROR(
        backend.CopyColumns(head_value, 0, values, h * m.v_head_dim, m.v_head_dim));
  }
  return backend.Linear(values, o_, out);
}

}  // namespace sparkstack
