// Integer halves of the dequantization tricks of dequant.cuh, as plain constexpr functions so that
// the host tests can check them exhaustively against runtime/core/float8.h without a GPU.
//   * E2M1PairAsHalfBits<J>(q): two fp16 bit patterns (low half: element J, high half: element
//     J + 4 of the 8 nibbles of q) whose values are exactly code * 2^-14.
//   * E4M3AsHalfBits(b): the fp16 bit pattern of e4m3(b) * 2^-8 (exact for every non-NaN byte).
#ifndef SPARKSTACK_KERNELS_NVFP4_BIT_TRICKS_H_
#define SPARKSTACK_KERNELS_NVFP4_BIT_TRICKS_H_

#include <cstdint>

#if defined(__CUDACC__)
#define SPARKSTACK_NVFP4_HD __host__ __device__ __forceinline__
#else
#define SPARKSTACK_NVFP4_HD inline
#endif

namespace sparkstack::kernels::nvfp4 {

template <int J>
SPARKSTACK_NVFP4_HD constexpr uint32_t E2M1PairAsHalfBits(uint32_t q) {
  static_assert(J >= 0 && J < 4);
  // Element J moves to bits 12..15 and element J + 4 to bits 28..31: the sign bits land on the
  // fp16 sign bits (15, 31); exponent and mantissa (bits 12..14, 28..30) shift down by 3 onto the
  // low two exponent bits and the top mantissa bit (9..11, 25..27).
  const uint32_t t = q << (12 - 4 * J);
  return (t & 0x80008000u) | ((t & 0x70007000u) >> 3);
}

SPARKSTACK_NVFP4_HD constexpr uint32_t E4M3AsHalfBits(uint32_t b) {
  // Sign to bit 15; the 4 exponent and 3 mantissa bits to bits 13..7 (fp16 exponent bias 15 vs 7).
  return ((b & 0x80u) << 8) | ((b & 0x7fu) << 7);
}

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_BIT_TRICKS_H_
