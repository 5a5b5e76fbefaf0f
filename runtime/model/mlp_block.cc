#include "runtime/model/mlp_block.h"

#include "runtime/core/status_macros.h"
#include "runtime/model/linear_loader.h"
#include "runtime/model/sharding.h"

namespace sparkstack {

absl::StatusOr<std::unique_ptr<MlpBlock>> MlpBlock::Load(const Checkpoint& checkpoint,
                                                         const std::string& prefix, int64_t hidden,
                                                         int64_t intermediate,
                                                         const TensorParallel& tp,
                                                         Backend& backend) {
  auto owned = std::make_unique<MlpBlock>();
  MlpBlock& block = *owned;
  const Range local = BalancedSplit(intermediate, tp.size, tp.rank);
  const Range all_hidden = {0, hidden};
  block.local_width_ = local.size();
  SPARKSTACK_ASSIGN_OR_RETURN(block.gate_,
                              LoadShardedLinear(checkpoint, prefix + "gate_proj", intermediate,
                                                hidden, local, all_hidden, backend));
  SPARKSTACK_ASSIGN_OR_RETURN(block.up_, LoadShardedLinear(checkpoint, prefix + "up_proj",
                                                           intermediate, hidden, local,
                                                           all_hidden, backend));
  SPARKSTACK_ASSIGN_OR_RETURN(block.down_,
                              LoadShardedLinear(checkpoint, prefix + "down_proj", hidden,
                                                intermediate, all_hidden, local, backend));
  return owned;
}

int64_t MlpBlock::WorkspaceBytes(int64_t tokens) const {
  return static_cast<int64_t>(2 * Arena::Reserved(tokens * local_width_ * sizeof(float)));
}

absl::Status MlpBlock::Forward(Backend& backend, const Tensor& x, Arena& workspace,
                               Tensor& out) const {
  const int64_t tokens = x.dim(0);
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor gate, workspace.Take(DType::kF32, {tokens, local_width_}));
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor up, workspace.Take(DType::kF32, {tokens, local_width_}));
  SPARKSTACK_RETURN_IF_ERROR(backend.Linear(x, gate_, gate));
  SPARKSTACK_RETURN_IF_ERROR(backend.Linear(x, up_, up));
  SPARKSTACK_RETURN_IF_ERROR(backend.SwiGlu(gate, up, gate));
  return backend.Linear(gate, down_, out);
}

}  // namespace sparkstack
