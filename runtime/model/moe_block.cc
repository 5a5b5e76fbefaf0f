#include "runtime/model/moe_block.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/convert.h"
#include "runtime/core/status_macros.h"
#include "runtime/model/linear_loader.h"
#include "runtime/model/mlp_block.h"

namespace sparkstack {
namespace {

struct MoeNames {
  std::string router;
  std::string bias;  // empty: none
  std::string experts;
  std::string gate, up, down;
  std::string shared;  // empty: none
};

MoeNames NamesFor(const ModelConfig& c, const std::string& p) {
  if (c.architecture == Architecture::kMiniMaxM2) {
    const std::string m = p + "block_sparse_moe.";
    return {m + "gate.weight", m + "e_score_correction_bias", m + "experts.", "w1", "w3", "w2", ""};
  }
  const std::string m = p + "mlp.";
  return {m + "gate.weight",
          c.moe.score_correction_bias ? m + "gate.e_score_correction_bias" : "",
          m + "experts.",
          "gate_proj",
          "up_proj",
          "down_proj",
          c.moe.num_shared_experts > 0 ? m + "shared_experts." : ""};
}

// The correction bias as f32 (checkpoints store it f32; a bf16 one is widened).
absl::StatusOr<Tensor> LoadBias(const Checkpoint& checkpoint, const std::string& name,
                                int64_t experts) {
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor t, LoadFloatTensor(checkpoint, name, {experts}));
  Tensor f32 = Tensor::Zeros(DType::kF32, {experts});
  kernels::LoadAsFloat(t.data(), t.dtype(), 0, experts, f32.data_as<float>());
  return f32;
}

}  // namespace

absl::StatusOr<ExpertShard> ShardExperts(int64_t num_experts, const TensorParallel& tp, int ep) {
  if (ep < 1 || tp.size % ep != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("expert parallelism ", ep, " must divide the tensor-parallel size ", tp.size));
  }
  if (num_experts < ep) {
    return absl::InvalidArgumentError(
        absl::StrCat(num_experts, " experts cannot be split over ", ep, " expert-parallel groups"));
  }
  ExpertShard shard;
  shard.slices = tp.size / ep;
  shard.slice = tp.rank % shard.slices;
  shard.experts = BalancedSplit(num_experts, ep, tp.rank / shard.slices);
  return shard;
}

absl::StatusOr<std::unique_ptr<MoeBlock>> MoeBlock::Load(const Checkpoint& checkpoint,
                                                         const std::string& layer_prefix,
                                                         const ModelConfig& config,
                                                         const TensorParallel& tp, int ep,
                                                         Backend& backend) {
  const MoeConfig& m = config.moe;
  const int64_t hidden = config.hidden_size;
  const int64_t width = m.moe_intermediate_size;
  const MoeNames names = NamesFor(config, layer_prefix);
  SPARKSTACK_ASSIGN_OR_RETURN(ExpertShard shard, ShardExperts(m.num_experts, tp, ep));

  auto owned = std::make_unique<MoeBlock>();
  MoeBlock& block = *owned;
  block.backend_ = &backend;
  block.routing_ = {.num_experts = m.num_experts,
                    .top_k = m.num_experts_per_tok,
                    .sigmoid = m.scoring == MoeScoring::kSigmoid,
                    .norm_topk_prob = m.norm_topk_prob,
                    .routed_scaling_factor = static_cast<float>(m.routed_scaling_factor),
                    .n_group = m.n_group,
                    .topk_group = m.topk_group};
  const Range all_hidden = {0, hidden};
  // The router's rows name the experts; LoadShardedLinear takes the prefix without ".weight".
  const std::string router_prefix = names.router.substr(0, names.router.size() - 7);
  SPARKSTACK_ASSIGN_OR_RETURN(block.router_,
                              LoadShardedLinear(checkpoint, router_prefix, m.num_experts, hidden,
                                                {0, m.num_experts}, all_hidden, backend));
  if (!names.bias.empty()) {
    SPARKSTACK_ASSIGN_OR_RETURN(Tensor bias, LoadBias(checkpoint, names.bias, m.num_experts));
    SPARKSTACK_ASSIGN_OR_RETURN(block.bias_, backend.Upload(bias));
  }
  const Range local_width = BalancedSplit(width, shard.slices, shard.slice);
  block.experts_.first = shard.experts.begin;
  block.experts_.hidden = hidden;
  block.experts_.max_width = local_width.size();
  for (int64_t e = shard.experts.begin; e < shard.experts.end; ++e) {
    const std::string p = absl::StrCat(names.experts, e, ".");
    ExpertMlp expert;
    SPARKSTACK_ASSIGN_OR_RETURN(
        expert.gate, LoadShardedLinear(checkpoint, p + names.gate, width, hidden, local_width,
                                       all_hidden, backend));
    SPARKSTACK_ASSIGN_OR_RETURN(
        expert.up, LoadShardedLinear(checkpoint, p + names.up, width, hidden, local_width,
                                     all_hidden, backend));
    SPARKSTACK_ASSIGN_OR_RETURN(
        expert.down, LoadShardedLinear(checkpoint, p + names.down, hidden, width, all_hidden,
                                       local_width, backend));
    block.experts_.experts.push_back(std::move(expert));
  }
  if (!names.shared.empty()) {
    SPARKSTACK_ASSIGN_OR_RETURN(block.shared_,
                                MlpBlock::Load(checkpoint, names.shared, hidden,
                                               m.num_shared_experts * width, tp, backend));
  }
  return owned;
}

int64_t MoeBlock::WorkspaceBytes(int64_t tokens) const {
  const int64_t e = routing_.num_experts;
  const int64_t k = routing_.top_k;
  int64_t bytes = static_cast<int64_t>(Arena::Reserved(tokens * e * sizeof(float)) +
                                       Arena::Reserved(tokens * k * sizeof(int32_t)) +
                                       Arena::Reserved(tokens * k * sizeof(float)));
  bytes += static_cast<int64_t>(
      Arena::Reserved(backend_->MoeExpertsWorkspaceBytes(tokens, k, experts_)));
  if (shared_) {
    bytes += static_cast<int64_t>(Arena::Reserved(tokens * experts_.hidden * sizeof(float))) +
             shared_->WorkspaceBytes(tokens);
  }
  return bytes;
}

absl::Status MoeBlock::Forward(Backend& backend, const Tensor& x, Arena& workspace,
                               Tensor& out) const {
  const int64_t tokens = x.dim(0);
  const int64_t k = routing_.top_k;
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor logits,
                              workspace.Take(DType::kF32, {tokens, routing_.num_experts}));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor ids, workspace.Take(DType::kI32, {tokens, k}));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor weights, workspace.Take(DType::kF32, {tokens, k}));
  SPARKSTACK_RETURN_IF_ERROR(backend.Linear(x, router_, logits));
  SPARKSTACK_RETURN_IF_ERROR(backend.MoeRoute(logits, bias_, routing_, ids, weights));
  SPARKSTACK_ASSIGN_OR_RETURN(
      Tensor scratch,
      workspace.Take(DType::kU8, {backend.MoeExpertsWorkspaceBytes(tokens, k, experts_)}));
  SPARKSTACK_RETURN_IF_ERROR(backend.MoeExperts(x, ids, weights, experts_, scratch, out));
  if (!shared_) return absl::OkStatus();
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor shared,
                              workspace.Take(DType::kF32, {tokens, experts_.hidden}));
  SPARKSTACK_RETURN_IF_ERROR(shared_->Forward(backend, x, workspace, shared));
  return backend.Add(out, shared);
}

}  // namespace sparkstack
