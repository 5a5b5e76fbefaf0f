#include "kernels/cuda/ops/copy_rows.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/copy_rows.cuh"

namespace sparkstack::kernels::cuda_ops {

int LaunchGatherRows(const float* x, int64_t width, const int32_t* rows, int64_t num_rows,
                     float* out, void* stream) {
  if (width < 0 || num_rows < 0 || num_rows > 0x7fffffff) return kInvalidValue;
  if (width == 0 || num_rows == 0) return 0;
  if (x == nullptr || rows == nullptr || out == nullptr) return kInvalidValue;
  return cuda::LaunchKernel(&detail::GatherRowsKernel, dim3(static_cast<unsigned>(num_rows)),
                            detail::kCopyRowsThreads, 0, static_cast<cudaStream_t>(stream), x,
                            width, rows, out);
}

int LaunchCopyColumns(const float* src, int64_t ld_src, int64_t src_column, float* dst,
                      int64_t ld_dst, int64_t dst_column, int64_t num_rows, int64_t width,
                      void* stream) {
  if (width < 0 || num_rows < 0 || num_rows > 0x7fffffff || src_column < 0 || dst_column < 0 ||
      src_column + width > ld_src || dst_column + width > ld_dst) {
    return kInvalidValue;
  }
  if (width == 0 || num_rows == 0) return 0;
  if (src == nullptr || dst == nullptr) return kInvalidValue;
  return cuda::LaunchKernel(&detail::CopyColumnsKernel, dim3(static_cast<unsigned>(num_rows)),
                            detail::kCopyRowsThreads, 0, static_cast<cudaStream_t>(stream),
                            src + src_column, ld_src, dst + dst_column, ld_dst, width);
}

}  // namespace sparkstack::kernels::cuda_ops
