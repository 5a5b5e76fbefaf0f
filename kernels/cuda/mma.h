// Warp-level tensor-core MMAs (mma.sync, PTX ISA 9.7.14.5), for kernel code. All 32 lanes of the
// warp execute each call with their fragments (groupID g = lane / 4, t = lane % 4):
//
// MmaM16N8K16Bf16(d, a, b): d[16x8] += A[16x16] . B[16x8], bf16 inputs, f32 accumulate (sm_80+).
//   a[r] holds bf16 elements 2r (low half) and 2r+1: a0 = (row g, k 2t..2t+1), a1 = (row g+8,
//   same k), a2 = (row g, k 2t+8..), a3 = (row g+8, k 2t+8..); b[r]: b0 = (k 2t..2t+1, column g),
//   b1 = (k 2t+8.., column g); d0, d1 = (row g, columns 2t, 2t+1), d2, d3 = (row g+8, same).
//   ldmatrix.x4 of A's four 8x8 quadrants (rows 0-7/8-15 x k 0-7/8-15) yields a0..a3, and of B
//   stored as rows n with k contiguous yields b0, b1 per 8 columns.
//
// MmaM16N8K64Fp4BlockScaled<kThreadIdA, kThreadIdB>(d, a, b, sfa, sfb): block-scaled FP4,
//   d[16x8] += (A[16x64] * SF_A) . (B[64x8] * SF_B), A and B e2m1 (8 per register, lowest k in the
//   lowest nibble), SF ue4m3, one per 16 k (kind::mxf4nvf4, scale_vec::4X; sm_120a / sm_121a).
//   a0 = (row g, k 8t..8t+7), a1 = (row g+8, same k), a2 = (row g, k 32+8t..), a3 = (row g+8,
//   k 32+8t..); b0 = (k 8t..8t+7, column g), b1 = (k 32+8t.., column g); d as above.
//   sfa byte j scales k in [16j, 16j+16) of one A row: the lanes with t = 2 kThreadIdA and
//   2 kThreadIdA + 1 provide rows g and g+8 (9.7.14.3, Figure 43); sfb byte j scales k in
//   [16j, 16j+16) of column g, provided by the lane with t = kThreadIdB. Other lanes' scale
//   registers are ignored. Exists where SPARKSTACK_HAS_FP4_MMA is defined.
#ifndef SPARKSTACK_KERNELS_CUDA_MMA_H_
#define SPARKSTACK_KERNELS_CUDA_MMA_H_

#include <cstdint>

#include "kernels/cuda/device.h"

#if defined(SPARKSTACK_CUDA_EMULATION)
#include "kernels/emu/tensor_core.h"
#endif

// Block-scaled FP4 mma.sync exists on arch-specific sm_120a / sm_121a targets only.
#if defined(SPARKSTACK_CUDA_EMULATION) || defined(__CUDA_ARCH_FEAT_SM121_ALL) || \
    defined(__CUDA_ARCH_FEAT_SM120_ALL)
#define SPARKSTACK_HAS_FP4_MMA 1
#endif

namespace sparkstack::cuda {

#if defined(SPARKSTACK_CUDA_EMULATION)

inline void MmaM16N8K16Bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                            const std::source_location& where = std::source_location::current()) {
  emu::MmaM16N8K16Bf16(d, a, b, where);
}

template <int kThreadIdA = 0, int kThreadIdB = 0>
inline void MmaM16N8K64Fp4BlockScaled(
    float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], uint32_t sfa, uint32_t sfb,
    const std::source_location& where = std::source_location::current()) {
  emu::MmaM16N8K64Mxf4Nvf4(d, a, b, sfa, 0, kThreadIdA, sfb, 0, kThreadIdB, where);
}

#else  // nvcc

__device__ __forceinline__ void MmaM16N8K16Bf16(float (&d)[4], const uint32_t (&a)[4],
                                                const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

#if defined(SPARKSTACK_HAS_FP4_MMA)
template <int kThreadIdA = 0, int kThreadIdB = 0>
__device__ __forceinline__ void MmaM16N8K64Fp4BlockScaled(float (&d)[4], const uint32_t (&a)[4],
                                                          const uint32_t (&b)[2], uint32_t sfa,
                                                          uint32_t sfb) {
  static_assert(kThreadIdA >= 0 && kThreadIdA <= 1 && kThreadIdB >= 0 && kThreadIdB <= 3);
  const uint16_t byte_id = 0;  // scale_vec::4X uses all four bytes
  const uint16_t thread_id_a = kThreadIdA;
  const uint16_t thread_id_b = kThreadIdB;
  asm volatile(
      "mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X"
      ".f32.e2m1.e2m1.f32.ue4m3 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3}, "
      "%10, {%11, %12}, %13, {%14, %15};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(sfa), "h"(byte_id),
        "h"(thread_id_a), "r"(sfb), "h"(byte_id), "h"(thread_id_b));
}
#endif

#endif

}  // namespace sparkstack::cuda

#endif  // SPARKSTACK_KERNELS_CUDA_MMA_H_
