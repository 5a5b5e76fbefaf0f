// Router kernel: grid (tokens), one warp per token. The lanes compute the scores and choice scores
// of the token's experts into shared memory; lane 0 then runs the selection serially exactly as
// kernels/cpu/moe_router.cc does (group scores from the two best choices per group, groups and
// experts taken in descending order with ties to the lower id by an insertion over increasing ids),
// and the softmax denominator and the top-k sum in increasing expert / slot order, so that ids
// match the CPU kernel and weights agree to the last bits of expf.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_MOE_ROUTE_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_MOE_ROUTE_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"
#include "kernels/cuda/ops/moe_route.h"
#include "kernels/cuda/shared_memory.h"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kMoeRouteThreads = 32;

struct MoeRouteShared {
  float scores[kMoeRouteMaxExperts];
  float choice[kMoeRouteMaxExperts];
  float group_score[kMoeRouteMaxGroups];
  uint8_t group_kept[kMoeRouteMaxGroups];
  float top_value[kMoeRouteMaxTopK];
  int32_t top_id[kMoeRouteMaxTopK];
};

__device__ __forceinline__ void RouteSelect(const MoeRouteArgs& a, MoeRouteShared& sh, int64_t t) {
  const int n = a.num_experts;
  const int k = a.top_k;
  const bool limited = a.n_group > 1 && a.topk_group < a.n_group;
  const int per_group = n / a.n_group;
  if (limited) {
    for (int g = 0; g < a.n_group; ++g) {
      float best1 = -INFINITY, best2 = -INFINITY;
      for (int e = g * per_group; e < (g + 1) * per_group; ++e) {
        const float v = sh.choice[e];
        if (v > best1) {
          best2 = best1;
          best1 = v;
        } else if (v > best2) {
          best2 = v;
        }
      }
      sh.group_score[g] = best1 + best2;
      sh.group_kept[g] = 0;
    }
    // The topk_group best groups; a stable descending order keeps the lower id on ties.
    for (int i = 0; i < a.topk_group; ++i) {
      int best = -1;
      for (int g = 0; g < a.n_group; ++g) {
        if (sh.group_kept[g]) continue;
        if (best < 0 || sh.group_score[g] > sh.group_score[best]) best = g;
      }
      sh.group_kept[best] = 1;
    }
  }
  int held = 0;
  for (int e = 0; e < n; ++e) {
    if (limited && !sh.group_kept[e / per_group]) continue;
    const float c = sh.choice[e];
    if (held == k && !(c > sh.top_value[k - 1])) continue;
    int pos = held < k ? held : k - 1;
    while (pos > 0 && c > sh.top_value[pos - 1]) {
      sh.top_value[pos] = sh.top_value[pos - 1];
      sh.top_id[pos] = sh.top_id[pos - 1];
      --pos;
    }
    sh.top_value[pos] = c;
    sh.top_id[pos] = e;
    if (held < k) ++held;
  }
  float sum = 0.0f;
  for (int j = 0; j < k; ++j) sum = AddRn(sum, sh.scores[sh.top_id[j]]);
  const float scale = a.norm_topk_prob ? DivRn(a.routed_scaling_factor, AddRn(sum, 1e-20f))
                                       : a.routed_scaling_factor;
  for (int j = 0; j < k; ++j) {
    a.ids[t * k + j] = sh.top_id[j];
    a.weights[t * k + j] = MulRn(sh.scores[sh.top_id[j]], scale);
  }
}

__global__ void __launch_bounds__(kMoeRouteThreads) MoeRouteKernel(MoeRouteArgs a) {
  SPARKSTACK_SHARED_ARRAY(MoeRouteShared, shared, 1);
  MoeRouteShared& sh = shared[0];
  const int64_t t = blockIdx.x;
  const int lane = threadIdx.x;
  const int n = a.num_experts;
  const float* l = a.logits + t * n;
  if (a.sigmoid) {
    for (int e = lane; e < n; e += kMoeRouteThreads) {
      sh.scores[e] = DivRn(1.0f, AddRn(1.0f, expf(-l[e])));
    }
  } else {
    float max = -INFINITY;
    for (int e = lane; e < n; e += kMoeRouteThreads) max = fmaxf(max, l[e]);
    max = WarpMax(max);
    for (int e = lane; e < n; e += kMoeRouteThreads) sh.scores[e] = expf(SubRn(l[e], max));
    __syncwarp();
    // The denominator in increasing expert order, as the CPU kernel sums it.
    float sum = 0.0f;
    if (lane == 0) {
      for (int e = 0; e < n; ++e) sum = AddRn(sum, sh.scores[e]);
    }
    const float inv = DivRn(1.0f, __shfl_sync(kFullMask, sum, 0));
    __syncwarp();
    for (int e = lane; e < n; e += kMoeRouteThreads) sh.scores[e] = MulRn(sh.scores[e], inv);
  }
  for (int e = lane; e < n; e += kMoeRouteThreads) {
    const float c = a.bias != nullptr ? AddRn(sh.scores[e], a.bias[e]) : sh.scores[e];
    sh.choice[e] = c != c ? -INFINITY : c;  // a NaN logit never wins
  }
  __syncwarp();
  if (lane == 0) RouteSelect(a, sh, t);
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_MOE_ROUTE_CUH_
