// Global-memory loads beyond plain C++ for kernel code: streaming loads through the non-coherent
// path that do not allocate in L1 (ld.global.nc.L1::no_allocate), for data read exactly once
// (weights) so that it does not evict data read many times. The pointer must be aligned to the
// load size and the memory read-only for the kernel's lifetime; the emulation checks the alignment.
#ifndef SPARKSTACK_KERNELS_CUDA_GLOBAL_MEMORY_H_
#define SPARKSTACK_KERNELS_CUDA_GLOBAL_MEMORY_H_

#include <cstdint>

#include "kernels/cuda/device.h"

namespace sparkstack::cuda {

#if defined(SPARKSTACK_CUDA_EMULATION)

inline void CheckGlobalAlignment(const void* p, int bytes, const std::source_location& where) {
  if (reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes) != 0) {
    emu::FailKernel(cudaErrorMisalignedAddress, std::to_string(bytes) + "-byte global load at " +
                                                    emu::DescribeSite(where) +
                                                    " from a misaligned address");
  }
}

inline uint4 LoadGlobalStreaming16(
    const void* p, const std::source_location& where = std::source_location::current()) {
  CheckGlobalAlignment(p, 16, where);
  return *static_cast<const uint4*>(p);
}

inline uint2 LoadGlobalStreaming8(
    const void* p, const std::source_location& where = std::source_location::current()) {
  CheckGlobalAlignment(p, 8, where);
  return *static_cast<const uint2*>(p);
}

#else  // nvcc

__device__ __forceinline__ uint4 LoadGlobalStreaming16(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

__device__ __forceinline__ uint2 LoadGlobalStreaming8(const void* p) {
  uint2 v;
  asm("ld.global.nc.L1::no_allocate.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}

#endif

}  // namespace sparkstack::cuda

#endif  // SPARKSTACK_KERNELS_CUDA_GLOBAL_MEMORY_H_
