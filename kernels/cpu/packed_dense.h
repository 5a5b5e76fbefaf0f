// Dense linear layers on packed weights: y[M, N] = x[M, K] · W^T for W [N, K] in f32, bf16 or
// f16, f32 activations and accumulation.
//
// Layout: the CPU backend packs each dense weight once at load (Backend::PrepareWeight) into
// column groups (isa_kernels.h, kPackedGroupColumns): a decode step streams each group front to
// back, and a prefill tile of rows reuses a cache-resident block of it. Half-precision weights keep
// their dtype (memory and bandwidth stay those of the checkpoint) and are widened to f32 in
// registers, or once per cache block when many rows reuse it.
//
// Batch invariance: y[i, c] is one chain of fused multiply-adds over k = 0 .. K-1 in order, so a
// row's result does not depend on M, the other rows, the tiling, the thread split or the ISA (every
// ISA gives the same bits as the scalar path).
#ifndef SPARKSTACK_KERNELS_CPU_PACKED_DENSE_H_
#define SPARKSTACK_KERNELS_CPU_PACKED_DENSE_H_

#include <cstdint>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"
#include "runtime/core/dtype.h"

namespace sparkstack::kernels {

// Elements of the packed form of an [n, k] weight (n rounded up to whole column groups).
int64_t PackedDenseElements(int64_t n, int64_t k);

// Packs row-major `w` [n, k] (dtype f32, bf16 or f16; any alignment) into `packed`, which holds
// PackedDenseElements(n, k) elements of the same dtype. Groups are packed in parallel on `pool`.
void PackDense(const void* w, DType dtype, int64_t n, int64_t k, void* packed, ThreadPool& pool);

// y [m, n] (row stride n) = x [m, k] (row stride k) · W^T for a weight packed by PackDense. Splits
// column groups (and, for many rows, row blocks) over `pool`; `isa` picks the kernels.
void PackedDenseLinear(const float* x, int64_t m, int64_t k, const void* packed, DType dtype,
                       int64_t n, float* y, ThreadPool& pool, CpuIsa isa);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_PACKED_DENSE_H_
