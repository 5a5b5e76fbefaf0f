// RMSNorm over rows, alone or fused with the residual add that precedes it in a pre-norm block:
// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, weight f32, bf16 or f16. One pass reads x
// (and delta) and accumulates the squares with the fixed 64-wide tree of isa_kernels.h, a second
// pass over the row (in L1 by then) scales it. Rows are split over the pool. Nothing is allocated.
#ifndef SPARKSTACK_KERNELS_CPU_RMS_NORM_H_
#define SPARKSTACK_KERNELS_CPU_RMS_NORM_H_

#include <cstdint>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"
#include "runtime/core/dtype.h"

namespace sparkstack::kernels {

// out may alias x.
void RmsNormF32(const float* x, int64_t rows, int64_t width, const void* weight, DType weight_dtype,
                float eps, float* out, ThreadPool& pool, CpuIsa isa);

// residual += delta, then out = RmsNorm(residual). out may alias delta or residual.
void AddRmsNormF32(float* residual, const float* delta, int64_t rows, int64_t width,
                   const void* weight, DType weight_dtype, float eps, float* out, ThreadPool& pool,
                   CpuIsa isa);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_RMS_NORM_H_
