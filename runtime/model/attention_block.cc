#include "runtime/model/attention_block.h"

#include <cmath>

#include "runtime/core/status_macros.h"
#include "runtime/model/linear_loader.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<AttentionBlock>> AttentionBlock::Load(
    const Checkpoint& checkpoint, const std::string& prefix, const ModelConfig& config,
    const AttentionShard& shard, std::shared_ptr<const RopeTables> rope, Backend& backend) {
  auto owned = std::make_unique<AttentionBlock>();
  AttentionBlock& block = *owned;
  block.rope_ = std::move(rope);
  block.shard_ = shard;
  block.head_dim_ = config.head_dim;
  block.eps_ = static_cast<float>(config.rms_norm_eps);
  block.qk_norm_ = config.qk_norm;
  const int64_t d = config.head_dim;
  const int64_t hidden = config.hidden_size;
  const Range q_rows = {shard.q_heads.begin * d, shard.q_heads.end * d};
  const Range kv_rows = {shard.kv_head_rows.begin * d, shard.kv_head_rows.end * d};
  const Range all_hidden = {0, hidden};
  const int64_t q_width = config.num_heads * d;
  const int64_t kv_width = config.num_kv_heads * d;
  SPARKSTACK_ASSIGN_OR_RETURN(block.q_, LoadShardedLinear(checkpoint, prefix + "q_proj", q_width,
                                                          hidden, q_rows, all_hidden, backend));
  SPARKSTACK_ASSIGN_OR_RETURN(block.k_, LoadShardedLinear(checkpoint, prefix + "k_proj", kv_width,
                                                          hidden, kv_rows, all_hidden, backend));
  SPARKSTACK_ASSIGN_OR_RETURN(block.v_, LoadShardedLinear(checkpoint, prefix + "v_proj", kv_width,
                                                          hidden, kv_rows, all_hidden, backend));
  SPARKSTACK_ASSIGN_OR_RETURN(block.o_, LoadShardedLinear(checkpoint, prefix + "o_proj", hidden,
                                                          q_width, all_hidden, q_rows, backend));
  if (config.qk_norm) {
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor q_norm,
                                LoadFloatTensor(checkpoint, prefix + "q_norm.weight", {d}));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor k_norm,
                                LoadFloatTensor(checkpoint, prefix + "k_norm.weight", {d}));
    SPARKSTACK_ASSIGN_OR_RETURN(block.q_norm_, backend.Upload(q_norm));
    SPARKSTACK_ASSIGN_OR_RETURN(block.k_norm_, backend.Upload(k_norm));
  }
  return owned;
}

int64_t AttentionBlock::WorkspaceBytes(int64_t tokens) const {
  const int64_t d = head_dim_;
  // q, k, v and the attention output.
  return static_cast<int64_t>(Arena::Reserved(tokens * shard_.heads * d * sizeof(float)) * 2 +
                              Arena::Reserved(tokens * shard_.kv_heads * d * sizeof(float)) * 2);
}

absl::Status AttentionBlock::Forward(Backend& backend, const Tensor& x, const ForwardBatch& batch,
                                     Tensor& k_cache, Tensor& v_cache, Arena& workspace,
                                     Tensor& out) const {
  const RopeTables& rope = *rope_;
  const int64_t tokens = x.dim(0);
  const int64_t d = head_dim_;
  const int64_t heads = shard_.heads;
  const int64_t kv_heads = shard_.kv_heads;
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor q, workspace.Take(DType::kF32, {tokens, heads * d}));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor k, workspace.Take(DType::kF32, {tokens, kv_heads * d}));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor v, workspace.Take(DType::kF32, {tokens, kv_heads * d}));
  SPARKSTACK_RETURN_IF_ERROR(backend.Linear(x, q_, q));
  SPARKSTACK_RETURN_IF_ERROR(backend.Linear(x, k_, k));
  SPARKSTACK_RETURN_IF_ERROR(backend.Linear(x, v_, v));
  if (qk_norm_) {  // Qwen3: RMSNorm over each head's vector before RoPE
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor q_rows, q.Reshape({tokens * heads, d}));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor k_rows, k.Reshape({tokens * kv_heads, d}));
    SPARKSTACK_RETURN_IF_ERROR(backend.RmsNorm(q_rows, q_norm_, eps_, q_rows));
    SPARKSTACK_RETURN_IF_ERROR(backend.RmsNorm(k_rows, k_norm_, eps_, k_rows));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(q, q.Reshape({tokens, heads, d}));
  SPARKSTACK_ASSIGN_OR_RETURN(k, k.Reshape({tokens, kv_heads, d}));
  SPARKSTACK_ASSIGN_OR_RETURN(v, v.Reshape({tokens, kv_heads, d}));
  SPARKSTACK_RETURN_IF_ERROR(backend.Rope(q, batch.positions, rope));
  SPARKSTACK_RETURN_IF_ERROR(backend.Rope(k, batch.positions, rope));
  SPARKSTACK_RETURN_IF_ERROR(backend.StoreKv(k, v, batch.attention.slot_mapping, k_cache, v_cache));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor attended, workspace.Take(DType::kF32, {tokens, heads, d}));
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  SPARKSTACK_RETURN_IF_ERROR(
      backend.PagedAttention(q, k_cache, v_cache, batch.attention, scale, attended));
  SPARKSTACK_ASSIGN_OR_RETURN(attended, attended.Reshape({tokens, heads * d}));
  return backend.Linear(attended, o_, out);
}

}  // namespace sparkstack
