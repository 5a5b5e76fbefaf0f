// Mixture-of-experts router (Backend::MoeRoute) on the GPU: the rule of kernels/cpu/moe_router.h
// (softmax or sigmoid scores, the correction bias for the choice only, group-limited top-k, ties to
// the lower expert id, norm_topk_prob, routed_scaling_factor), one warp per token.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_MOE_ROUTE_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_MOE_ROUTE_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

// Limits of the kernel's static shared memory (DeepSeek-V3 and MiniMax-M2 have 256 experts).
inline constexpr int kMoeRouteMaxExperts = 512;
inline constexpr int kMoeRouteMaxTopK = 32;
inline constexpr int kMoeRouteMaxGroups = 64;

struct MoeRouteArgs {
  const float* logits = nullptr;  // [tokens, num_experts]
  const float* bias = nullptr;    // [num_experts] or nullptr
  int32_t* ids = nullptr;         // [tokens, top_k]
  float* weights = nullptr;       // [tokens, top_k]
  int64_t tokens = 0;
  int num_experts = 0;
  int top_k = 0;
  bool sigmoid = false;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
  int n_group = 1;
  int topk_group = 1;
};

// The parameters must satisfy kernels::MoeRouterParamsError (the backend checks) and the limits
// above; InvalidValue otherwise.
int LaunchMoeRoute(const MoeRouteArgs& a, void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_MOE_ROUTE_H_
