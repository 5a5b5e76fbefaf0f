// Row and column copies of f32 matrices (Backend::GatherRows, Backend::CopyColumns), grouped: both
// move contiguous f32 runs between rows.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_COPY_ROWS_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_COPY_ROWS_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

// out[r, :] = x[rows[r], :] for r < num_rows; x [*, width], out [num_rows, width]; rows trusted.
int LaunchGatherRows(const float* x, int64_t width, const int32_t* rows, int64_t num_rows,
                     float* out, void* stream);

// dst[r, dst_column + j] = src[r, src_column + j] for r < num_rows, j < width; src and dst are
// row-major with ld_src / ld_dst elements per row.
int LaunchCopyColumns(const float* src, int64_t ld_src, int64_t src_column, float* dst,
                      int64_t ld_dst, int64_t dst_column, int64_t num_rows, int64_t width,
                      void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_COPY_ROWS_H_
