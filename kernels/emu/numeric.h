// The CUDA number types and conversions kernel code uses (cuda_bf16.h, cuda_fp16.h, cuda_fp8.h
// subsets), for the host emulation. Written from the formats' definitions, not from this project's
// reference encoders (runtime/core/half.h, float8.h), so that tests comparing the two compare two
// implementations:
//   bf16  1|8|7 bits, f32's exponent; float -> bf16 rounds to nearest even, NaN stays NaN.
//   f16   1|5|10 bits, bias 15, subnormals.
//   e4m3  1|4|3 bits, bias 7, subnormals 2^-9 * m, no infinity, S.1111.111 is NaN, largest 448.
//         __NV_SATFINITE clamps finite values beyond 448 (after rounding) to +-448; __NV_NOSAT
//         makes them NaN. Rounding is to nearest, ties to even, from the exact input value.
#ifndef SPARKSTACK_KERNELS_EMU_NUMERIC_H_
#define SPARKSTACK_KERNELS_EMU_NUMERIC_H_

#include <cstdint>

#include "kernels/emu/guard.h"

struct alignas(2) __nv_bfloat16 {
  uint16_t __x;
};
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
struct alignas(2) __half {
  uint16_t __x;
};

float __bfloat162float(__nv_bfloat16 v);
__nv_bfloat16 __float2bfloat16_rn(float v);
__nv_bfloat162 __floats2bfloat162_rn(float lo, float hi);
float __half2float(__half v);
inline __half __ushort_as_half(unsigned short bits) { return __half{bits}; }
inline unsigned short __half_as_ushort(__half v) { return v.__x; }

typedef unsigned char __nv_fp8_storage_t;
enum __nv_saturation_t { __NV_NOSAT, __NV_SATFINITE };
enum __nv_fp8_interpretation_t { __NV_E4M3, __NV_E5M2 };

// E4M3 only (the emulation aborts on __NV_E5M2, which no kernel here uses).
__nv_fp8_storage_t __nv_cvt_double_to_fp8(double v, __nv_saturation_t saturate,
                                          __nv_fp8_interpretation_t format);
__nv_fp8_storage_t __nv_cvt_float_to_fp8(float v, __nv_saturation_t saturate,
                                         __nv_fp8_interpretation_t format);

#endif  // SPARKSTACK_KERNELS_EMU_NUMERIC_H_
