#include "kernels/emu/numeric.h"

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>

float __bfloat162float(__nv_bfloat16 v) { return std::bit_cast<float>(uint32_t{v.__x} << 16); }

__nv_bfloat16 __float2bfloat16_rn(float v) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  if (std::isnan(v)) return {static_cast<uint16_t>((bits >> 16) | 0x40u)};  // stays a (quiet) NaN
  // Round to nearest even on the 16 dropped bits; a carry into the exponent is the right answer
  // (up to infinity for values that round past the largest bf16).
  const uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
  return {static_cast<uint16_t>(rounded >> 16)};
}

__nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
  return {__float2bfloat16_rn(lo), __float2bfloat16_rn(hi)};
}

float __half2float(__half v) {
  const uint32_t sign = (v.__x >> 15) & 1u;
  const int exponent = (v.__x >> 10) & 0x1f;
  const uint32_t mantissa = v.__x & 0x3ffu;
  float magnitude;
  if (exponent == 0x1f) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // subnormal: m * 2^-24
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), exponent - 25);
  }
  return sign != 0 ? -magnitude : magnitude;
}

__nv_fp8_storage_t __nv_cvt_double_to_fp8(double v, __nv_saturation_t saturate,
                                          __nv_fp8_interpretation_t format) {
  if (format != __NV_E4M3) {
    std::fprintf(stderr, "sparkstack emu: __nv_cvt_*_to_fp8 emulates E4M3 only\n");
    std::abort();
  }
  const uint8_t sign = std::signbit(v) ? 0x80 : 0x00;
  if (std::isnan(v)) return static_cast<uint8_t>(sign | 0x7f);
  const double a = std::fabs(v);
  // Quantum of the binade holding a: 2^(e - 3) for normals (e >= -6), 2^-9 for subnormals. The
  // scaled value a / quantum is exact in double; nearbyint rounds it to nearest even.
  int e = a > 0.0 && !std::isinf(a) ? std::ilogb(a) : -7;
  if (e < -6) e = -6;
  const double quantum = std::ldexp(1.0, e - 3);
  double q = std::nearbyint(a / quantum);  // 0..16 (16 carries into the next binade)
  uint32_t code;
  if (std::isinf(a)) {
    code = 0x7f;  // beyond the range
  } else if (e == -6 && q < 8.0) {
    code = static_cast<uint32_t>(q);  // subnormal (or zero)
  } else {
    if (q == 16.0) {
      ++e;
      q = 8.0;
    }
    code = (static_cast<uint32_t>(e + 7) << 3) | (static_cast<uint32_t>(q) - 8u);
  }
  if (code > 0x7e) {  // rounds past 448: the next value would be the NaN encoding
    code = saturate == __NV_SATFINITE ? 0x7e : 0x7f;
  }
  return static_cast<uint8_t>(sign | code);
}

__nv_fp8_storage_t __nv_cvt_float_to_fp8(float v, __nv_saturation_t saturate,
                                         __nv_fp8_interpretation_t format) {
  return __nv_cvt_double_to_fp8(static_cast<double>(v), saturate, format);
}
