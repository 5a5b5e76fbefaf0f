#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/add_bias.cuh"
#include "kernels/cuda/ops/add_bias.h"

namespace sparkstack::kernels::cuda_ops {
namespace {

template <typename T>
int Launch(float* x, int64_t rows, int64_t width, const void* bias, cudaStream_t stream) {
  return cuda::LaunchKernel(&detail::AddBiasKernel<T>, dim3(static_cast<unsigned>(rows)),
                            detail::kAddBiasThreads, 0, stream, x, width,
                            static_cast<const T*>(bias));
}

}  // namespace

int LaunchAddBias(float* x, int64_t rows, int64_t width, const void* bias, ElemType bias_type,
                  void* stream) {
  if (rows < 0 || width < 0 || rows > 0x7fffffff) return kInvalidValue;
  if (rows == 0 || width == 0) return 0;
  if (x == nullptr || bias == nullptr) return kInvalidValue;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (bias_type) {
    case ElemType::kF32:
      return Launch<float>(x, rows, width, bias, s);
    case ElemType::kBF16:
      return Launch<__nv_bfloat16>(x, rows, width, bias, s);
    case ElemType::kF16:
      return Launch<__half>(x, rows, width, bias, s);
  }
  return kInvalidValue;
}

}  // namespace sparkstack::kernels::cuda_ops
