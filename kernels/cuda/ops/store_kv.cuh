// StoreKv kernel. Grid (tokens), 128 threads copying (and converting) the token's key row, then
// its value row, into the slot's rows of the pools.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_STORE_KV_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_STORE_KV_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kStoreKvThreads = 128;

template <typename C>
__global__ void __launch_bounds__(kStoreKvThreads)
    StoreKvKernel(const float* k, const float* v, int64_t k_row, int64_t v_row,
                  const int32_t* slot_mapping, C* k_cache, C* v_cache) {
  const int64_t t = blockIdx.x;
  const int64_t slot = slot_mapping[t];
  if (slot < 0) return;
  for (int64_t i = threadIdx.x; i < k_row; i += blockDim.x) {
    k_cache[slot * k_row + i] = FromFloat<C>(k[t * k_row + i]);
  }
  for (int64_t i = threadIdx.x; i < v_row; i += blockDim.x) {
    v_cache[slot * v_row + i] = FromFloat<C>(v[t * v_row + i]);
  }
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_STORE_KV_CUH_
