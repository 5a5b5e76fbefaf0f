// NVFP4 weight-only (W4A16-style) linear on the CPU: y[M, N] = x[M, K] · dequant(W)^T with f32
// activations and f32 accumulation. The CPU backend's Linear calls this for WeightFormat::kNvfp4.
//
// Layouts (those of sparkstack::Weight / Nvfp4Parts and of ModelOpt checkpoints), all row-major
// and contiguous:
//   x             f32 [m, k]
//   codes         u8 [n, k/2]: element 2i of a row in the low nibble of byte i, 2i+1 in the high
//   block_scales  E4M3 bytes [n, k/16]: byte j scales elements [16j, 16j+16) of its row
//   y             f32 [m, n] (fully overwritten)
// dequant(W)[r][c] = e2m1(code) * e4m3(scale) * global_scale. k must be a multiple of 16. Pointers
// need no alignment (checkpoint mappings are unaligned).
//
// How: the packed weights are streamed once per call (what bounds decode, M small). The scalar and
// NEON paths decode each weight row, a stack chunk at a time, into e2m1 * block_scale values (exact
// in f32) reused for up to 8 rows of x; the AVX2 path decodes each 16-element block in registers (a
// byte shuffle table) and applies its block scale to the block's partial dot product, for up to
// four x rows at a time. The global scale multiplies the finished dot product. Accumulation order
// differs between the paths, so results agree to f32 rounding, not bitwise.
//
// Thread safety: pure function of its inputs; callers may run it concurrently on distinct outputs.
#ifndef SPARKSTACK_KERNELS_CPU_NVFP4_LINEAR_H_
#define SPARKSTACK_KERNELS_CPU_NVFP4_LINEAR_H_

#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace sparkstack::kernels {

enum class Nvfp4CpuPath : uint8_t { kScalar, kAvx2, kNeon };

// Runs `path` (the backend passes the one its start-up self-check verified) with the N output
// columns split over `pool`. Each row of x is computed the same way whatever M, so a row's result
// does not depend on the batch. Writes nothing if this build or CPU cannot run `path`.
void Nvfp4LinearF32(const float* x, int64_t m, int64_t k, const uint8_t* codes,
                    const uint8_t* block_scales, float global_scale, int64_t n, float* y,
                    ThreadPool& pool, Nvfp4CpuPath path);

// Legacy entry (a thread per call; for kernels not yet handed the backend's pool): dispatches at
// run time to AVX2+FMA when the CPU has them (x86-64), NEON on aarch64, else scalar, and splits the
// N output columns over up to `threads` threads (1: the calling thread only).
void Nvfp4LinearF32(const float* x, int64_t m, int64_t k, const uint8_t* codes,
                    const uint8_t* block_scales, float global_scale, int64_t n, float* y,
                    int threads = 1);

// The individual paths, for tests and benchmarks. Same contract as Nvfp4LinearF32, one thread.
// The best path this CPU supports (what Nvfp4LinearF32 uses).
Nvfp4CpuPath BestNvfp4CpuPath();
const char* Nvfp4CpuPathName(Nvfp4CpuPath path);
// Runs `path`; returns false (and writes nothing) if this build or CPU cannot run it.
bool Nvfp4LinearF32WithPath(Nvfp4CpuPath path, const float* x, int64_t m, int64_t k,
                            const uint8_t* codes, const uint8_t* block_scales, float global_scale,
                            int64_t n, float* y);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_NVFP4_LINEAR_H_
