#include "kernels/cuda/ops/rms_norm.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/rms_norm.cuh"

namespace sparkstack::kernels::cuda_ops {
namespace {

int ThreadsFor(int64_t width) {
  const int64_t warps = (width + 31) / 32;
  return static_cast<int>(warps >= detail::kRmsNormMaxThreads / 32 ? detail::kRmsNormMaxThreads
                                                                   : warps * 32);
}

template <bool kAdd>
int Launch(float* x, const float* delta, int64_t rows, int64_t width, const void* weight,
           ElemType weight_type, float eps, float* out, void* stream) {
  if (rows < 0 || width < 0 || rows > 0x7fffffff) return kInvalidValue;
  if (rows == 0 || width == 0) return 0;
  if (x == nullptr || out == nullptr || weight == nullptr || (kAdd && delta == nullptr)) {
    return kInvalidValue;
  }
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid(static_cast<unsigned>(rows));
  const dim3 block(ThreadsFor(width));
  switch (weight_type) {
    case ElemType::kF32:
      return cuda::LaunchKernel(&detail::RmsNormKernel<float, kAdd>, grid, block, 0, s, x, delta,
                                width, static_cast<const float*>(weight), eps, out);
    case ElemType::kBF16:
      return cuda::LaunchKernel(&detail::RmsNormKernel<__nv_bfloat16, kAdd>, grid, block, 0, s, x,
                                delta, width, static_cast<const __nv_bfloat16*>(weight), eps, out);
    case ElemType::kF16:
      return cuda::LaunchKernel(&detail::RmsNormKernel<__half, kAdd>, grid, block, 0, s, x, delta,
                                width, static_cast<const __half*>(weight), eps, out);
  }
  return kInvalidValue;
}

}  // namespace

int LaunchRmsNorm(const float* x, int64_t rows, int64_t width, const void* weight,
                  ElemType weight_type, float eps, float* out, void* stream) {
  // The kernel writes x only when adding; const_cast keeps one kernel for both forms.
  return Launch<false>(const_cast<float*>(x), nullptr, rows, width, weight, weight_type, eps, out,
                       stream);
}

int LaunchAddRmsNorm(float* residual, const float* delta, int64_t rows, int64_t width,
                     const void* weight, ElemType weight_type, float eps, float* out,
                     void* stream) {
  return Launch<true>(residual, delta, rows, width, weight, weight_type, eps, out, stream);
}

}  // namespace sparkstack::kernels::cuda_ops
