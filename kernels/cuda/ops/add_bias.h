// Projection biases (Backend::AddBias): x[r, :] += bias for every row of an f32 matrix.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_ADD_BIAS_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_ADD_BIAS_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

// x f32 [rows, width] (contiguous), bias [width] of bias_type. Each element is one f32 add of the
// bias widened to f32, as the CPU backend computes it.
int LaunchAddBias(float* x, int64_t rows, int64_t width, const void* bias, ElemType bias_type,
                  void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_ADD_BIAS_H_
