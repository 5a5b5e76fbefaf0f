// Shared memory for kernel code.
//   DynamicSharedMemory<T>()   the block's dynamic shared memory (extern __shared__, 16-byte
//                              aligned), sized by the launch.
//   SPARKSTACK_SHARED_ARRAY(type, name, count);
//                              declares a static shared array `name` (__shared__ type name[count])
//                              at function scope; `name` is an array on the device and a pointer in
//                              the emulation, so do not take its sizeof.
//   ReleaseSharedAtNextBarrier(p, bytes)
//                              declares that no thread reads [p, p + bytes) after the next
//                              __syncthreads until it is written again (a pipeline stage is
//                              released). Nothing on the device; the emulation poisons the range
//                              when that barrier completes, so a stale read shows up in the test.
// In the emulation every array is its own allocation and starts poisoned (kernels/emu/
// shared_memory.h), and exceeding the device's shared memory fails the launch.
#ifndef SPARKSTACK_KERNELS_CUDA_SHARED_MEMORY_H_
#define SPARKSTACK_KERNELS_CUDA_SHARED_MEMORY_H_

#include <cstddef>

#include "kernels/cuda/device.h"

namespace sparkstack::cuda {

#if defined(SPARKSTACK_CUDA_EMULATION)

template <typename T>
inline T* DynamicSharedMemory() {
  return reinterpret_cast<T*>(emu::BlockSharedMemory().dynamic_base());
}

inline void ReleaseSharedAtNextBarrier(
    const void* p, size_t bytes,
    const std::source_location& where = std::source_location::current()) {
  emu::ReleaseSharedAtNextBarrier(p, bytes, where);
}

template <typename T>
T* StaticSharedArray(const void* site, size_t count) {
  void* p = emu::BlockSharedMemory().StaticArray(site, sizeof(T) * count);
  if (p == nullptr) {
    emu::FailKernel(cudaErrorLaunchOutOfResources,
                    "static + dynamic shared memory exceed the device's limit per block");
  }
  return static_cast<T*>(p);
}

#define SPARKSTACK_SHARED_ARRAY(type, name, count) \
  static const char name##_shared_site = 0;        \
  type* const name = ::sparkstack::cuda::StaticSharedArray<type>(&name##_shared_site, (count))

#else  // nvcc

template <typename T>
__device__ __forceinline__ T* DynamicSharedMemory() {
  extern __shared__ __align__(16) unsigned char sparkstack_dynamic_smem[];
  return reinterpret_cast<T*>(sparkstack_dynamic_smem);
}

__device__ __forceinline__ void ReleaseSharedAtNextBarrier(const void*, size_t) {}

#define SPARKSTACK_SHARED_ARRAY(type, name, count) __shared__ type name[count]

#endif

}  // namespace sparkstack::cuda

#endif  // SPARKSTACK_KERNELS_CUDA_SHARED_MEMORY_H_
