// Embedding kernel. Grid (tokens), 128 threads: block t converts row ids[t] of the table (or
// writes zeros when another shard holds it), threads striding over the hidden width.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_EMBEDDING_CUH_
#define SPARKSTACK_KERNELS_CUDA_OPS_EMBEDDING_CUH_

#include <cstdint>

#include "kernels/cuda/ops/common.cuh"

namespace sparkstack::kernels::cuda_ops::detail {

inline constexpr int kEmbeddingThreads = 128;

template <typename T>
__global__ void __launch_bounds__(kEmbeddingThreads)
    EmbeddingKernel(const T* table, int64_t rows, int64_t hidden, const int32_t* ids,
                    int64_t first_id, float* out) {
  const int64_t t = blockIdx.x;
  const int64_t local = static_cast<int64_t>(ids[t]) - first_id;
  float* row = out + t * hidden;
  if (local < 0 || local >= rows) {
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) row[i] = 0.0f;
    return;
  }
  const T* src = table + local * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) row[i] = ToFloat(src[i]);
}

}  // namespace sparkstack::kernels::cuda_ops::detail

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_EMBEDDING_CUH_
