// Asynchronous global -> shared copies (PTX ISA 9.7.9.25.3, sm_80+), for kernel code.
//   CpAsync<kBytes>(dst, src, src_bytes)  copies src_bytes (0..kBytes) from global `src` to shared
//       `dst` and zero-fills the rest of the kBytes (4, 8 or 16); both aligned to kBytes. 16-byte
//       copies bypass L1 (.cg), smaller ones may not (.ca is the only form PTX allows for them).
//   CpAsyncCommitGroup()   closes the copies issued since the last commit into a group.
//   CpAsyncWaitGroup<N>()  waits until at most the N most recent groups are pending; the data of
//       completed groups is then visible to the issuing thread only (a __syncthreads makes it
//       visible to the block).
// The emulation poisons the destination at issue and writes it at the covering wait
// (kernels/emu/cp_async_queue.h), and a thread may not exit with copies outstanding.
#ifndef SPARKSTACK_KERNELS_CUDA_CP_ASYNC_H_
#define SPARKSTACK_KERNELS_CUDA_CP_ASYNC_H_

#include <cstdint>

#include "kernels/cuda/device.h"

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/async_copy.h"
#endif

namespace sparkstack::cuda {

#if defined(SPARKSTACK_CUDA_EMULATION)

template <int kBytes>
inline void CpAsync(void* dst, const void* src, int src_bytes,
                    const std::source_location& where = std::source_location::current()) {
  static_assert(kBytes == 4 || kBytes == 8 || kBytes == 16);
  emu::CpAsync(dst, src, kBytes, src_bytes, where);
}

inline void CpAsyncCommitGroup() { emu::CpAsyncCommitGroup(); }

template <int N>
inline void CpAsyncWaitGroup() {
  emu::CpAsyncWaitGroup(N);
}

#else  // nvcc

template <int kBytes>
__device__ __forceinline__ void CpAsync(void* dst, const void* src, int src_bytes) {
  static_assert(kBytes == 4 || kBytes == 8 || kBytes == 16);
  const auto smem = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  if constexpr (kBytes == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(src),
                 "r"(src_bytes));
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(smem), "l"(src),
                 "n"(kBytes), "r"(src_bytes));
  }
}

__device__ __forceinline__ void CpAsyncCommitGroup() {
  asm volatile("cp.async.commit_group;\n" ::);
}

template <int N>
__device__ __forceinline__ void CpAsyncWaitGroup() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

#endif

}  // namespace sparkstack::cuda

#endif  // SPARKSTACK_KERNELS_CUDA_CP_ASYNC_H_
