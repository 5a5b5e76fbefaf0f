// y[M, N] = x[M, K] · W^T for a row-major dense W [N, K] in f32, f16 or bf16; f32 accumulation.
// A plain loop for weights nobody packed (MoE expert slices); the CPU backend's Linear uses the
// packed GEMM of packed_dense.h.
#ifndef SPARKSTACK_KERNELS_CPU_DENSE_LINEAR_H_
#define SPARKSTACK_KERNELS_CPU_DENSE_LINEAR_H_

#include <cstdint>

#include "runtime/core/dtype.h"

namespace sparkstack::kernels {

// Splits the N output columns over up to `threads` threads (1: the calling thread only).
void DenseLinearF32(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n,
                    float* y, int threads = 1);

// The dot product the linear kernels share: eight independent partial sums so the compiler can
// vectorize without reassociation flags.
float DotF32(const float* a, const float* b, int64_t count);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_DENSE_LINEAR_H_
