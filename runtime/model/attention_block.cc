#include "runtime/model/attention_block.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/linear_loader.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<AttentionBlock>> AttentionBlock::Load(
    const Checkpoint& checkpoint, const std::string& prefix, const ModelConfig& config,
    const AttentionShard& shard, std::shared_ptr<const RopeTables> rope, Backend& backend,
    const TensorParallel& tp) {
  auto owned = std::make_unique<AttentionBlock>();
  AttentionBlock& block = *owned;
  block.rope_ = std::move(rope);
  block.shard_ = shard;
  block.head_dim_ = config.head_dim;
  block.eps_ = static_cast<float>(config.rms_norm_eps);
  block.qk_norm_ = config.qk_norm;
  block.qk_norm_across_heads_ = config.qk_norm && config.qk_norm_across_heads;
  block.tp_ = tp;
  if (block.qk_norm_across_heads_ && tp.size > 1 &&
      (shard.kv_heads * tp.size != config.num_kv_heads ||
       shard.heads * tp.size != config.num_heads)) {
    return absl::InvalidArgumentError(
        absl::StrCat("q/k norms across heads at tp = ", tp.size, " need the ", config.num_heads,
                     " q and ", config.num_kv_heads, " kv heads split evenly over the ranks"));
  }
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
  if (config.attention_bias) {
    auto bias = [&](const char* name, Range rows, int64_t width) -> absl::StatusOr<Tensor> {
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor all, LoadFloatTensor(checkpoint, prefix + name, {width}));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor as_rows, all.Reshape({width, 1}));
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor local, as_rows.SliceRows(rows.begin, rows.end));
      SPARKSTACK_ASSIGN_OR_RETURN(local, local.Reshape({rows.size()}));
      return backend.Upload(local.Clone());
    };
    SPARKSTACK_ASSIGN_OR_RETURN(block.q_bias_, bias("q_proj.bias", q_rows, q_width));
    SPARKSTACK_ASSIGN_OR_RETURN(block.k_bias_, bias("k_proj.bias", kv_rows, kv_width));
    SPARKSTACK_ASSIGN_OR_RETURN(block.v_bias_, bias("v_proj.bias", kv_rows, kv_width));
  }
  if (config.qk_norm) {
    const bool across = block.qk_norm_across_heads_;
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor q_norm, LoadFloatTensor(checkpoint, prefix + "q_norm.weight",
                                                               {across ? q_width : d}));
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor k_norm, LoadFloatTensor(checkpoint, prefix + "k_norm.weight",
                                                               {across ? kv_width : d}));
    SPARKSTACK_ASSIGN_OR_RETURN(block.q_norm_, backend.Upload(q_norm));
    SPARKSTACK_ASSIGN_OR_RETURN(block.k_norm_, backend.Upload(k_norm));
  }
  return owned;
}

int64_t AttentionBlock::WorkspaceBytes(int64_t tokens) const {
  const int64_t d = head_dim_;
  // q, k, v and the attention output.
  int64_t bytes =
      static_cast<int64_t>(Arena::Reserved(tokens * shard_.heads * d * sizeof(float)) * 2 +
                           Arena::Reserved(tokens * shard_.kv_heads * d * sizeof(float)) * 2);
  if (qk_norm_across_heads_ && tp_.size > 1) {  // the gathered and the whole q (k is smaller)
    bytes += 2 * static_cast<int64_t>(
                     Arena::Reserved(tokens * shard_.heads * d * tp_.size * sizeof(float)));
  }
  return bytes;
}

absl::Status AttentionBlock::NormAcrossHeads(Backend& backend, Tensor& x, const Tensor& weight,
                                             Arena& workspace) const {
  if (tp_.size == 1) return backend.RmsNorm(x, weight, eps_, x);
  const int64_t tokens = x.dim(0);
  const int64_t width = x.dim(1);
  const size_t mark = workspace.used();
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor gathered,
                              workspace.Take(DType::kF32, {tp_.size, tokens, width}));
  SPARKSTACK_RETURN_IF_ERROR(tp_.AllGather(x, gathered));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor slabs, gathered.Reshape({tp_.size * tokens, width}));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor whole,
                              workspace.Take(DType::kF32, {tokens, tp_.size * width}));
  for (int r = 0; r < tp_.size; ++r) {  // ranks hold consecutive heads, in rank order
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor slab, slabs.SliceRows(r * tokens, (r + 1) * tokens));
    SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(slab, 0, whole, r * width, width));
  }
  SPARKSTACK_RETURN_IF_ERROR(backend.RmsNorm(whole, weight, eps_, whole));
  SPARKSTACK_RETURN_IF_ERROR(backend.CopyColumns(whole, tp_.rank * width, x, 0, width));
  workspace.Rewind(mark);
  return absl::OkStatus();
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
  if (q_bias_.defined()) {
    SPARKSTACK_RETURN_IF_ERROR(backend.AddBias(q, q_bias_));
    SPARKSTACK_RETURN_IF_ERROR(backend.AddBias(k, k_bias_));
    SPARKSTACK_RETURN_IF_ERROR(backend.AddBias(v, v_bias_));
  }
  if (qk_norm_across_heads_) {  // MiniMax-M2: one RMSNorm over the whole q, one over k
    SPARKSTACK_RETURN_IF_ERROR(NormAcrossHeads(backend, q, q_norm_, workspace));
    SPARKSTACK_RETURN_IF_ERROR(NormAcrossHeads(backend, k, k_norm_, workspace));
  } else if (qk_norm_) {  // Qwen3: RMSNorm over each head's vector before RoPE
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
