#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/moe_route.cuh"
#include "kernels/cuda/ops/moe_route.h"

namespace sparkstack::kernels::cuda_ops {

int LaunchMoeRoute(const MoeRouteArgs& a, void* stream) {
  if (a.tokens < 0 || a.tokens > 0x7fffffff || a.num_experts < 1 ||
      a.num_experts > kMoeRouteMaxExperts || a.top_k < 1 || a.top_k > a.num_experts ||
      a.top_k > kMoeRouteMaxTopK || a.n_group < 1 || a.n_group > kMoeRouteMaxGroups ||
      a.num_experts % a.n_group != 0 || a.topk_group < 1 || a.topk_group > a.n_group) {
    return kInvalidValue;
  }
  if (a.tokens == 0) return 0;
  if (a.logits == nullptr || a.ids == nullptr || a.weights == nullptr) return kInvalidValue;
  return cuda::LaunchKernel(&detail::MoeRouteKernel, dim3(static_cast<unsigned>(a.tokens)),
                            detail::kMoeRouteThreads, 0, static_cast<cudaStream_t>(stream), a);
}

}  // namespace sparkstack::kernels::cuda_ops
