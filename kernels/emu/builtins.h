// The CUDA language surface kernel code uses, for the host compiler: the function qualifiers as
// no-ops, threadIdx / blockIdx / blockDim / gridDim of the emulated thread running now, barriers,
// warp shuffles and votes (warp.h), read-only loads, bit casts, atomics and __trap. Blocks of a
// launch run one after the other and the threads of a block are fibers on one OS thread
// (thread_block.h), so a plain read-modify-write is an atomic here. __shared__ is deliberately not
// defined: kernels reach shared memory through kernels/cuda/shared_memory.h.
#ifndef SPARKSTACK_KERNELS_EMU_BUILTINS_H_
#define SPARKSTACK_KERNELS_EMU_BUILTINS_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <source_location>

#include "kernels/emu/error.h"
#include "kernels/emu/guard.h"
#include "kernels/emu/thread_block.h"
#include "kernels/emu/vector_types.h"
#include "kernels/emu/warp.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

#define threadIdx (::sparkstack::emu::CurrentThread().thread_idx)
#define blockIdx (::sparkstack::emu::CurrentThread().block_idx)
#define blockDim (::sparkstack::emu::CurrentThread().block_dim)
#define gridDim (::sparkstack::emu::CurrentThread().grid_dim)
inline constexpr int warpSize = 32;

inline void __syncthreads(const std::source_location& where = std::source_location::current()) {
  sparkstack::emu::SyncThreads(where);
}

template <typename T>
inline T __ldg(const T* p) {
  return *p;
}

[[noreturn]] inline void __trap() {
  sparkstack::emu::FailKernel(cudaErrorLaunchFailure, "__trap()");
}

inline float __uint_as_float(unsigned int v) { return std::bit_cast<float>(v); }
inline unsigned int __float_as_uint(float v) { return std::bit_cast<unsigned int>(v); }
inline float __int_as_float(int v) { return std::bit_cast<float>(v); }
inline int __float_as_int(float v) { return std::bit_cast<int>(v); }

template <typename T>
inline T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
template <typename T>
inline T atomicMax(T* address, T value) {
  const T old = *address;
  if (value > old) *address = value;
  return old;
}
template <typename T>
inline T atomicMin(T* address, T value) {
  const T old = *address;
  if (value < old) *address = value;
  return old;
}
template <typename T>
inline T atomicExch(T* address, T value) {
  const T old = *address;
  *address = value;
  return old;
}
template <typename T>
inline T atomicCAS(T* address, T compare, T value) {
  const T old = *address;
  if (old == compare) *address = value;
  return old;
}

#endif  // SPARKSTACK_KERNELS_EMU_BUILTINS_H_
