#include "kernels/cuda/ops/store_kv.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/store_kv.cuh"

namespace sparkstack::kernels::cuda_ops {

int LaunchStoreKv(const float* k, const float* v, int64_t tokens, int64_t k_row, int64_t v_row,
                  const int32_t* slot_mapping, void* k_cache, void* v_cache, ElemType cache_type,
                  void* stream) {
  if (tokens < 0 || k_row < 0 || v_row < 0 || tokens > 0x7fffffff) return kInvalidValue;
  if (tokens == 0) return 0;
  if (k == nullptr || slot_mapping == nullptr || k_cache == nullptr ||
      (v_row > 0 && (v == nullptr || v_cache == nullptr))) {
    return kInvalidValue;
  }
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid(static_cast<unsigned>(tokens));
  switch (cache_type) {
    case ElemType::kF32:
      return cuda::LaunchKernel(&detail::StoreKvKernel<float>, grid, detail::kStoreKvThreads, 0, s,
                                k, v, k_row, v_row, slot_mapping, static_cast<float*>(k_cache),
                                static_cast<float*>(v_cache));
    case ElemType::kBF16:
      return cuda::LaunchKernel(&detail::StoreKvKernel<__nv_bfloat16>, grid,
                                detail::kStoreKvThreads, 0, s, k, v, k_row, v_row, slot_mapping,
                                static_cast<__nv_bfloat16*>(k_cache),
                                static_cast<__nv_bfloat16*>(v_cache));
    case ElemType::kF16:
      break;  // no f16 caches
  }
  return kInvalidValue;
}

}  // namespace sparkstack::kernels::cuda_ops
