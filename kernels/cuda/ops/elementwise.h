// Element-wise ops on f32 activations (Backend::Add, Backend::SwiGlu) and the f32 -> bf16
// conversion of activations for the kernels that read bf16 (the NVFP4 GEMMs, the dense bf16
// tensor-core GEMM). Grouped in one file: each is a one-line kernel body.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_ELEMENTWISE_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_ELEMENTWISE_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

// x[i] += y[i] for i < count.
int LaunchAdd(float* x, const float* y, int64_t count, void* stream);

// out[i] = silu(gate[i]) * up[i] = gate / (1 + exp(-gate)) * up; out may alias gate or up.
int LaunchSwiGlu(const float* gate, const float* up, int64_t count, float* out, void* stream);

// out[r, c] = bf16(x[r, c]) for c < cols (round to nearest even), and 0 for cols <= c < ldo:
// x f32 [rows, cols] contiguous, out bf16 (as uint16 bits) [rows, ldo], ldo >= cols.
int LaunchConvertToBf16(const float* x, int64_t rows, int64_t cols, uint16_t* out, int64_t ldo,
                        void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_ELEMENTWISE_H_
