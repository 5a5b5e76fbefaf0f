// The gated MLP every dense decoder family shares: down(silu(gate(x)) * up(x)), gate/up
// column-parallel over the intermediate width, down row-parallel (the caller all-reduces).
#ifndef SPARKSTACK_RUNTIME_MODEL_MLP_BLOCK_H_
#define SPARKSTACK_RUNTIME_MODEL_MLP_BLOCK_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/arena.h"
#include "runtime/model/checkpoint.h"
#include "runtime/model/decoder_model.h"
#include "runtime/model/tensor_parallel.h"

namespace sparkstack {

class MlpBlock final : public FfnLayer {
 public:
  // Loads prefix + {gate,up,down}_proj ("model.layers.3.mlp."), full intermediate width
  // `intermediate`, keeping this rank's share (BalancedSplit over the tensor-parallel ranks).
  static absl::StatusOr<std::unique_ptr<MlpBlock>> Load(const Checkpoint& checkpoint,
                                                        const std::string& prefix, int64_t hidden,
                                                        int64_t intermediate,
                                                        const TensorParallel& tp,
                                                        Backend& backend);

  absl::Status Forward(Backend& backend, const Tensor& x, Arena& workspace,
                       Tensor& out) const override;
  int64_t WorkspaceBytes(int64_t tokens) const override;

 private:
  int64_t local_width_ = 0;
  Weight gate_, up_, down_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_MLP_BLOCK_H_
