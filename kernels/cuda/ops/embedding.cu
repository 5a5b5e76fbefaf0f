#include "kernels/cuda/ops/embedding.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/embedding.cuh"

namespace sparkstack::kernels::cuda_ops {

int LaunchEmbedding(const void* table, ElemType type, int64_t rows, int64_t hidden,
                    const int32_t* ids, int64_t tokens, int64_t first_id, float* out,
                    void* stream) {
  if (rows < 0 || hidden < 0 || tokens < 0 || tokens > 0x7fffffff) return kInvalidValue;
  if (tokens == 0 || hidden == 0) return 0;
  if (ids == nullptr || out == nullptr || (rows > 0 && table == nullptr)) return kInvalidValue;
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid(static_cast<unsigned>(tokens));
  switch (type) {
    case ElemType::kF32:
      return cuda::LaunchKernel(&detail::EmbeddingKernel<float>, grid, detail::kEmbeddingThreads,
                                0, s, static_cast<const float*>(table), rows, hidden, ids,
                                first_id, out);
    case ElemType::kBF16:
      return cuda::LaunchKernel(&detail::EmbeddingKernel<__nv_bfloat16>, grid,
                                detail::kEmbeddingThreads, 0, s,
                                static_cast<const __nv_bfloat16*>(table), rows, hidden, ids,
                                first_id, out);
    case ElemType::kF16:
      return cuda::LaunchKernel(&detail::EmbeddingKernel<__half>, grid, detail::kEmbeddingThreads,
                                0, s, static_cast<const __half*>(table), rows, hidden, ids,
                                first_id, out);
  }
  return kInvalidValue;
}

}  // namespace sparkstack::kernels::cuda_ops
