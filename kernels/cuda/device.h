// The CUDA language for kernel code. Compiled by nvcc: the toolkit's headers (builtins, bf16, fp16,
// fp8, runtime). Compiled by the host compiler with SPARKSTACK_CUDA_EMULATION: the host emulation
// of the same names (kernels/emu), so that one kernel source builds for sm_80 / sm_90 / sm_121a and
// runs in host unit tests. Kernel code includes this instead of <cuda_runtime.h> & co; what plain
// CUDA C++ does not offer portably (shared memory declarations, inline PTX) comes from the other
// headers here, one per concern:
//   shared_memory.h  dynamic / static shared memory, release of a stage at a barrier
//   global_memory.h  streaming (non-allocating) global loads
//   cp_async.h       cp.async with zero fill, commit / wait groups
//   ldmatrix.h       ldmatrix.m8n8 b16
//   mma.h            mma.sync m16n8k16 bf16 and m16n8k64 block-scaled FP4
//   launch.h         kernel launch
//   runtime.h        host-side runtime API (also for plain .cc files)
#ifndef SPARKSTACK_KERNELS_CUDA_DEVICE_H_
#define SPARKSTACK_KERNELS_CUDA_DEVICE_H_

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/builtins.h"
#include "kernels/emu/numeric.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#endif

#endif  // SPARKSTACK_KERNELS_CUDA_DEVICE_H_
