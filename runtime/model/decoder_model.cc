#include "runtime/model/decoder_model.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {
namespace {

class DecoderModel final : public Model {
 public:
  DecoderModel(Backend& backend, DecoderParts parts)
      : backend_(backend), parts_(std::move(parts)), tp_(TensorParallelOf(parts_.shard)) {}

  const ModelConfig& config() const override { return parts_.config; }
  const ModelShard& shard() const override { return parts_.shard; }
  int64_t max_model_len() const override { return parts_.max_model_len; }
  KvCacheSpec kv_cache_spec() const override { return parts_.kv_cache_spec; }

  int64_t WorkspaceBytes(const StepLimits& limits) const override {
    const int64_t hidden = parts_.config.hidden_size;
    const int64_t t = limits.max_tokens;
    int64_t block = 0;
    for (const DecoderLayer& layer : parts_.layers) {
      block = std::max({block, layer.attention->WorkspaceBytes(t), layer.ffn->WorkspaceBytes(t)});
    }
    const int64_t rows = limits.max_logit_rows;
    const int64_t head = parts_.head ? static_cast<int64_t>(Arena::Reserved(rows * hidden * 4)) +
                                           LogitsHead::WorkspaceBytes(parts_.config, tp_, rows)
                                     : 0;
    // delta and normed [T, hidden] live through the step; one block's scratch at a time.
    return 2 * static_cast<int64_t>(Arena::Reserved(t * hidden * sizeof(float))) +
           std::max(block, head);
  }

  absl::Status Forward(const ForwardBatch& batch, KvCache& cache, Arena& workspace,
                       Tensor& hidden, Tensor* logits) override;

 private:
  Backend& backend_;
  DecoderParts parts_;
  TensorParallel tp_;
};

absl::Status DecoderModel::Forward(const ForwardBatch& batch, KvCache& cache, Arena& workspace,
                                   Tensor& hidden, Tensor* logits) {
  const ModelConfig& c = parts_.config;
  const int64_t tokens = batch.num_tokens();
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (hidden.rank() != 2 || hidden.dim(0) != tokens || hidden.dim(1) != c.hidden_size ||
      hidden.dtype() != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat("hidden states are ", hidden.DebugString(),
                                                   ", expected f32[", tokens, ", ", c.hidden_size,
                                                   "]"));
  }
  if (cache.k.size() != parts_.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("kv cache has ", cache.k.size(),
                                                   " layers, this shard ", parts_.layers.size()));
  }
  if (parts_.shard.last_stage != (logits != nullptr)) {
    return absl::InvalidArgumentError("logits are asked of the last stage, and only of it");
  }
  workspace.Reset();
  if (parts_.embedding) {
    SPARKSTACK_RETURN_IF_ERROR(parts_.embedding->Forward(backend_, tp_, batch.token_ids, hidden));
  }
  Tensor& residual = hidden;
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor delta, workspace.Take(DType::kF32, {tokens, c.hidden_size}));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor normed, workspace.Take(DType::kF32, {tokens, c.hidden_size}));
  bool pending = false;  // delta holds a block output not yet added to the residual
  auto norm = [&](const Tensor& weight) {
    return pending ? backend_.AddRmsNorm(residual, delta, weight, eps, normed)
                   : backend_.RmsNorm(residual, weight, eps, normed);
  };
  for (size_t i = 0; i < parts_.layers.size(); ++i) {
    const DecoderLayer& layer = parts_.layers[i];
    Tensor no_v;
    Tensor& v_cache = cache.v.empty() ? no_v : cache.v[i];
    SPARKSTACK_RETURN_IF_ERROR(norm(layer.attention_norm));
    const size_t mark = workspace.used();
    SPARKSTACK_RETURN_IF_ERROR(layer.attention->Forward(backend_, normed, batch, cache.k[i],
                                                        v_cache, workspace, delta));
    workspace.Rewind(mark);
    SPARKSTACK_RETURN_IF_ERROR(tp_.AllReduce(delta));
    pending = true;
    SPARKSTACK_RETURN_IF_ERROR(norm(layer.ffn_norm));
    SPARKSTACK_RETURN_IF_ERROR(layer.ffn->Forward(backend_, normed, workspace, delta));
    workspace.Rewind(mark);
    SPARKSTACK_RETURN_IF_ERROR(tp_.AllReduce(delta));
  }
  if (pending) SPARKSTACK_RETURN_IF_ERROR(backend_.Add(residual, delta));
  if (logits == nullptr) return absl::OkStatus();

  const int64_t rows = batch.num_logits();
  if (logits->rank() != 2 || logits->dim(0) != rows) {
    return absl::InvalidArgumentError(absl::StrCat("logits are ", logits->DebugString(),
                                                   ", expected [", rows, ", vocab]"));
  }
  if (rows == 0) return absl::OkStatus();
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor last, workspace.Take(DType::kF32, {rows, c.hidden_size}));
  SPARKSTACK_RETURN_IF_ERROR(backend_.GatherRows(residual, batch.logits_rows, last));
  return parts_.head->Forward(backend_, tp_, last, workspace, *logits);
}

}  // namespace

std::unique_ptr<Model> MakeDecoderModel(Backend& backend, DecoderParts parts) {
  return std::make_unique<DecoderModel>(backend, std::move(parts));
}

absl::StatusOr<Range> ShardLayers(const ModelConfig& config, const ModelShard& shard) {
  const int64_t end = shard.layer_end < 0 ? config.num_layers : shard.layer_end;
  if (shard.layer_begin < 0 || shard.layer_begin > end || end > config.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer range [", shard.layer_begin, ", ", end,
                                                   ") of a ", config.num_layers, "-layer model"));
  }
  return Range{shard.layer_begin, end};
}

}  // namespace sparkstack
