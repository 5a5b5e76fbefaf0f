// RMSNorm over rows: out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight. Mean accumulated in
// double so long rows do not lose precision; out may alias x.
#ifndef SPARKSTACK_KERNELS_CPU_RMS_NORM_H_
#define SPARKSTACK_KERNELS_CPU_RMS_NORM_H_

#include <cstdint>

#include "runtime/core/dtype.h"

namespace sparkstack::kernels {

void RmsNormF32(const float* x, int64_t rows, int64_t width, const void* weight,
                DType weight_dtype, float eps, float* out);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_RMS_NORM_H_
