// The types of the Backend's mixture-of-experts and multi-head-latent-attention ops (backend.h).
#ifndef SPARKSTACK_RUNTIME_BACKEND_MOE_OPS_H_
#define SPARKSTACK_RUNTIME_BACKEND_MOE_OPS_H_

#include <cstdint>
#include <vector>

#include "runtime/core/weight.h"

namespace sparkstack {

// How a router turns logits into each token's top-k experts and weights (the rule is spelled out
// in kernels/cpu/moe_router.h).
struct MoeRouting {
  int64_t num_experts = 0;
  int64_t top_k = 0;
  bool sigmoid = false;  // scores: sigmoid(logits) instead of softmax over all experts
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
  int64_t n_group = 1;
  int64_t topk_group = 1;
};

// One expert: a SwiGLU MLP down(silu(gate x) * up x), weights prepared for the backend.
struct ExpertMlp {
  Weight gate;  // [width, hidden]
  Weight up;    // [width, hidden]
  Weight down;  // [hidden, width]
};

// The experts one rank holds: global ids [first, first + experts.size()) of a layer. With
// tensor-parallel experts (ep < tp) each holds a slice of its width; the widths may differ.
struct ExpertSet {
  int64_t first = 0;
  int64_t hidden = 0;
  int64_t max_width = 0;  // the widest expert
  std::vector<ExpertMlp> experts;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_MOE_OPS_H_
