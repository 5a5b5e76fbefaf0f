#include "kernels/cuda/ops/elementwise.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/elementwise.cuh"

namespace sparkstack::kernels::cuda_ops {
namespace {

dim3 GridFor(int64_t count) {
  const int64_t blocks = (count + detail::kElementwiseThreads - 1) / detail::kElementwiseThreads;
  return dim3(static_cast<unsigned>(blocks < detail::kElementwiseMaxBlocks
                                        ? blocks
                                        : detail::kElementwiseMaxBlocks));
}

}  // namespace

int LaunchAdd(float* x, const float* y, int64_t count, void* stream) {
  if (count < 0) return kInvalidValue;
  if (count == 0) return 0;
  if (x == nullptr || y == nullptr) return kInvalidValue;
  return cuda::LaunchKernel(&detail::AddKernel, GridFor(count), detail::kElementwiseThreads, 0,
                            static_cast<cudaStream_t>(stream), x, y, count);
}

int LaunchSwiGlu(const float* gate, const float* up, int64_t count, float* out, void* stream) {
  if (count < 0) return kInvalidValue;
  if (count == 0) return 0;
  if (gate == nullptr || up == nullptr || out == nullptr) return kInvalidValue;
  return cuda::LaunchKernel(&detail::SwiGluKernel, GridFor(count), detail::kElementwiseThreads, 0,
                            static_cast<cudaStream_t>(stream), gate, up, count, out);
}

int LaunchConvertToBf16(const float* x, int64_t rows, int64_t cols, uint16_t* out, int64_t ldo,
                        void* stream) {
  if (rows < 0 || cols < 0 || ldo < cols) return kInvalidValue;
  if (rows == 0 || ldo == 0) return 0;
  if (out == nullptr || (cols > 0 && x == nullptr)) return kInvalidValue;
  return cuda::LaunchKernel(&detail::ConvertToBf16Kernel, GridFor(rows * ldo),
                            detail::kElementwiseThreads, 0, static_cast<cudaStream_t>(stream), x,
                            rows, cols, reinterpret_cast<__nv_bfloat16*>(out), ldo);
}

}  // namespace sparkstack::kernels::cuda_ops
