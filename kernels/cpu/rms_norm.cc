#include "kernels/cpu/rms_norm.h"

#include "kernels/cpu/isa_kernels.h"
#include "kernels/cpu/parallel_columns.h"

namespace sparkstack::kernels {

void RmsNormF32(const float* x, int64_t rows, int64_t width, const void* weight, DType weight_dtype,
                float eps, float* out, ThreadPool& pool, CpuIsa isa) {
  const IsaKernels& kernels = KernelsFor(isa);
  ParallelRanges(pool, rows, rows * width, [&](int64_t begin, int64_t end) {
    // Without a delta the kernel only reads x.
    kernels.rms_norm_rows(const_cast<float*>(x) + begin * width, nullptr, end - begin, width,
                          weight, weight_dtype, eps, out + begin * width);
  });
}

void AddRmsNormF32(float* residual, const float* delta, int64_t rows, int64_t width,
                   const void* weight, DType weight_dtype, float eps, float* out, ThreadPool& pool,
                   CpuIsa isa) {
  const IsaKernels& kernels = KernelsFor(isa);
  ParallelRanges(pool, rows, 2 * rows * width, [&](int64_t begin, int64_t end) {
    kernels.rms_norm_rows(residual + begin * width, delta + begin * width, end - begin, width,
                          weight, weight_dtype, eps, out + begin * width);
  });
}

}  // namespace sparkstack::kernels
