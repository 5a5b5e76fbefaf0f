// ldmatrix.sync.aligned.m8n8.x{kNum}{.trans}.shared.b16 (PTX ISA 9.7.14.5.15), for kernel code:
// the warp loads kNum 8x8 matrices of 16-bit elements from shared memory. Lane l supplies the
// address of row l % 8 of matrix l / 8 (lanes >= 8 * kNum supply nothing that is read); every row
// is 16 contiguous, 16-byte aligned bytes. Register m of lane l receives elements (row l / 4,
// columns 2 (l % 4), 2 (l % 4) + 1) of matrix m, the lower column in the low half; with kTrans the
// matrix is read column-major (rows 2 (l % 4), 2 (l % 4) + 1 of column l / 4). These are the
// operand fragments of mma.m16n8k16 (mma.h). Every lane of the warp must execute it.
#ifndef SPARKSTACK_KERNELS_CUDA_LDMATRIX_H_
#define SPARKSTACK_KERNELS_CUDA_LDMATRIX_H_

#include <cstdint>

#include "kernels/cuda/device.h"

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/tensor_core.h"
#endif

namespace sparkstack::cuda {

#if defined(SPARKSTACK_CUDA_EMULATION)

template <int kNum, bool kTrans = false>
inline void LdMatrix(uint32_t (&r)[kNum], const void* row,
                     const std::source_location& where = std::source_location::current()) {
  static_assert(kNum == 1 || kNum == 2 || kNum == 4);
  emu::LdMatrix(kNum, kTrans, r, row, where);
}

#else  // nvcc

template <int kNum, bool kTrans = false>
__device__ __forceinline__ void LdMatrix(uint32_t (&r)[kNum], const void* row) {
  static_assert(kNum == 1 || kNum == 2 || kNum == 4);
  const auto smem = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  if constexpr (kNum == 4 && !kTrans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem));
  } else if constexpr (kNum == 4) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem));
  } else if constexpr (kNum == 2 && !kTrans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(smem));
  } else if constexpr (kNum == 2) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(smem));
  } else if constexpr (!kTrans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"(smem));
  }
}

#endif

}  // namespace sparkstack::cuda

#endif  // SPARKSTACK_KERNELS_CUDA_LDMATRIX_H_
