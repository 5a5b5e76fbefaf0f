// Element-wise ops of the CPU backend, vectorized (isa_kernels.h) and split over the pool:
// SwiGLU out = silu(gate) * up with silu(x) = x / (1 + exp(-x)) (exp to ~1 ulp), and x += y.
// Every element goes through the same vector code (tails through a padded vector), so a value's
// result does not depend on where it sits in the tensor.
#ifndef SPARKSTACK_KERNELS_CPU_SWIGLU_H_
#define SPARKSTACK_KERNELS_CPU_SWIGLU_H_

#include <cstdint>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/isa_kernels.h"
#include "kernels/cpu/parallel_columns.h"
#include "kernels/cpu/thread_pool.h"

namespace sparkstack::kernels {

// out may alias gate or up.
inline void SwiGluF32(const float* gate, const float* up, int64_t count, float* out,
                      ThreadPool& pool, CpuIsa isa) {
  const IsaKernels& kernels = KernelsFor(isa);
  constexpr int64_t kBlock = 1024;  // ranges start at multiples of the vector width
  ParallelRanges(pool, (count + kBlock - 1) / kBlock, 8 * count, [&](int64_t begin, int64_t end) {
    const int64_t last = std::min(count, end * kBlock);
    kernels.swiglu(gate + begin * kBlock, up + begin * kBlock, last - begin * kBlock,
                   out + begin * kBlock);
  });
}

// On the calling thread with the best ISA of this CPU (the MoE experts kernel, which splits its
// own work over threads).
inline void SwiGluF32(const float* gate, const float* up, int64_t count, float* out) {
  KernelsFor(BestCpuIsa()).swiglu(gate, up, count, out);
}

// x += y.
inline void AddF32(float* x, const float* y, int64_t count, ThreadPool& pool, CpuIsa isa) {
  const IsaKernels& kernels = KernelsFor(isa);
  constexpr int64_t kBlock = 4096;
  ParallelRanges(pool, (count + kBlock - 1) / kBlock, count / 4, [&](int64_t begin, int64_t end) {
    const int64_t last = std::min(count, end * kBlock);
    kernels.add(x + begin * kBlock, y + begin * kBlock, last - begin * kBlock);
  });
}

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_SWIGLU_H_
