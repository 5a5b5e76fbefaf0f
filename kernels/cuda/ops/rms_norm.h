// RMSNorm and the fused pre-norm residual step on the device (Backend::RmsNorm, AddRmsNorm):
//   out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight
// with the mean of squares accumulated in float64 and the scale rounded to f32 once, as the CPU
// kernel does (kernels/cpu/rms_norm.cc).
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_RMS_NORM_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_RMS_NORM_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

// x, out f32 [rows, width] (out may alias x); weight [width] of `weight_type`.
int LaunchRmsNorm(const float* x, int64_t rows, int64_t width, const void* weight,
                  ElemType weight_type, float eps, float* out, void* stream);

// residual += delta, then out = RmsNorm(residual); all f32 [rows, width]; out may alias delta
// (not residual).
int LaunchAddRmsNorm(float* residual, const float* delta, int64_t rows, int64_t width,
                     const void* weight, ElemType weight_type, float eps, float* out,
                     void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_RMS_NORM_H_
