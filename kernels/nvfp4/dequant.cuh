// Device helpers shared by the NVFP4 kernels: exact e2m1 / e4m3 decoding and output stores.
//
// Decoding is done with bit tricks instead of lookup tables (no shared-memory bank conflicts, no
// local-memory arrays):
//   * e2m1: a nibble s|e1 e0|m placed at bits 15|11 10|9 of an fp16 is exactly code * 2^-14
//     (exponent field = e, bias 15 instead of 1; e = 0 lands on fp16 subnormals, which give
//     0 and 0.5 * 2^-14 exactly). Two nibbles 16 bits apart (elements j and j+4 of a 32-bit word
//     of 8 codes) decode into one half2 with one shift and one masked or.
//   * e4m3: bits s|eeee|mmm placed at bits 15|13..10|9..7 of an fp16 give scale * 2^-8 exactly
//     (exponent bias 15 instead of 7; e4m3 subnormals map to fp16 subnormals).
// Both scalings are powers of two, folded into the final alpha (kDequantCorrection).
#ifndef SPARKSTACK_KERNELS_NVFP4_DEQUANT_CUH_
#define SPARKSTACK_KERNELS_NVFP4_DEQUANT_CUH_

#include <cstdint>

#include "kernels/cuda/device.h"
#include "kernels/nvfp4/bit_tricks.h"

namespace sparkstack::kernels::nvfp4::detail {

// code * 2^-14 (e2m1 via fp16) times scale * 2^-8 (e4m3 via fp16): multiply by 2^22 to undo.
inline constexpr float kDequantCorrection = 4194304.0f;

// Elements J and J+4 of the 8 codes in `q` (element i in bits 4i..4i+3), as code * 2^-14.
template <int J>
__device__ __forceinline__ float2 DecodePairTimes2m14(uint32_t q) {
  static_assert(J >= 0 && J < 4);
  const uint32_t h = E2M1PairAsHalfBits<J>(q);
  float2 f;
  f.x = __half2float(__ushort_as_half(static_cast<unsigned short>(h & 0xffffu)));
  f.y = __half2float(__ushort_as_half(static_cast<unsigned short>(h >> 16)));
  return f;
}

// Decodes the 8 codes of `q` into v[0..7] = code * 2^-14, in element order.
__device__ __forceinline__ void DecodeWordTimes2m14(uint32_t q, float (&v)[8]) {
  float2 p;
  p = DecodePairTimes2m14<0>(q);
  v[0] = p.x;
  v[4] = p.y;
  p = DecodePairTimes2m14<1>(q);
  v[1] = p.x;
  v[5] = p.y;
  p = DecodePairTimes2m14<2>(q);
  v[2] = p.x;
  v[6] = p.y;
  p = DecodePairTimes2m14<3>(q);
  v[3] = p.x;
  v[7] = p.y;
}

// An E4M3 byte as value * 2^-8 (exact). NaN encodings are not meaningful scales and decode to a
// finite number.
__device__ __forceinline__ float DecodeScaleTimes2m8(uint32_t b) {
  const uint32_t h = E4M3AsHalfBits(b);
  return __half2float(__ushort_as_half(static_cast<unsigned short>(h)));
}

// Two bf16 values packed in a word (element 2i low, 2i+1 high) as floats.
__device__ __forceinline__ float Bf16Lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float Bf16Hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

template <typename OutT>
__device__ __forceinline__ void StoreOut(OutT* p, float v);
template <>
__device__ __forceinline__ void StoreOut<float>(float* p, float v) {
  *p = v;
}
template <>
__device__ __forceinline__ void StoreOut<__nv_bfloat16>(__nv_bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}

}  // namespace sparkstack::kernels::nvfp4::detail

#endif  // SPARKSTACK_KERNELS_NVFP4_DEQUANT_CUH_
