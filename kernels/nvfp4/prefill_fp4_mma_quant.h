// The W4A4 activation quantizer of one 16-value block as the sm_121a FP4 MMA GEMM runs it while
// staging its activation tile (prefill_fp4_mma.cuh), as a __host__ __device__ function so that the
// host tests compare it with the float64 reference (Nvfp4QuantizeActivationReference) without a
// GPU. NVFP4.md "Activations", with s = input_scale (S = 1 / s):
//   s_b  = e4m3(amax_b / (6 s))        RNE, satfinite
//   code = RNE_e2m1(x / (s_b s))       all codes 0 when s_b is 0
// The float64 reference computes these quotients within a few 2^-53 of their exact values, which
// decides every rounding the way the exact quotient does. Plain float32 arithmetic does not: with a
// calibrated s = amax / 2688, bf16 activations sit exactly on e2m1 ties of the exact quotient
// (x = amax / 8 is the tie 0.75 of the block holding amax), and the float32 rounding of 1 / s
// (about 2^-24) decides them at random: about 20 codes of the self-check's 19,040 flipped and its
// error was 5e-3 against a 1e-3 tolerance. So every decision is taken exactly, in float32 at full
// rate: "x / (p s) rounds above tie t" is "x > t p s", and since t p is exact (few significant
// bits) and fmaf rounds t p s - x once, the comparison against the float threshold
// FirstFloatAbove(t p, s) is exact (FMA-based error-free product). The block scale is found the
// same way around the candidate that cvt gives from an approximate quotient.
#ifndef SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_QUANT_H_
#define SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_QUANT_H_

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cuda/numeric.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"

namespace sparkstack::kernels::nvfp4 {

// Exact value of a non-negative, non-NaN E4M3 byte (sign ignored: scales here are >= 0).
SPARKSTACK_FP4MMA_HD float Fp4E4M3Magnitude(uint32_t b) {
  const int e = static_cast<int>((b >> 3) & 0xf);
  const int m = static_cast<int>(b & 0x7);
  return e == 0 ? ldexpf(static_cast<float>(m), -9) : ldexpf(static_cast<float>(8 + m), e - 10);
}

// The smallest float a >= 0 with a > p * s in exact arithmetic, or a >= p * s when `tie_up`
// (a tie rounds up), for positive finite p, s whose product is a normal float. hi + lo = p * s
// exactly (fmaf returns the product's rounding error), and a float compares with p * s as with hi
// when lo != 0 (no float lies strictly between p * s and hi).
SPARKSTACK_FP4MMA_HD float FirstFloatAbove(float p, float s, bool tie_up) {
  const float hi = p * s;
  const float lo = fmaf(p, s, -hi);
  if (lo < 0.0f || (lo == 0.0f && tie_up)) return hi;
  uint32_t bits;
  memcpy(&bits, &hi, sizeof(bits));
  ++bits;  // the next float above hi (> 0)
  float next;
  memcpy(&next, &bits, sizeof(next));
  return next;
}

// Quantizes v[0..15] with the static input_scale (> 0, finite). Returns the ue4m3 scale byte;
// *lo holds the codes of v[0..7] and *hi those of v[8..15], value i in nibble i (lowest first),
// which is the byte layout of the codes in memory (element 2i in the low nibble of byte i, little
// endian). Equal to Nvfp4QuantizeActivationReference bit for bit, except where the exact quotient
// is a tie that the reference's own float64 rounding (about 2^-53) breaks the other way: that
// needs an input_scale with few significant bits that is not a power of two.
SPARKSTACK_FP4MMA_HD uint32_t Fp4QuantizeBlock16(const float* v, float input_scale, uint32_t* lo,
                                                 uint32_t* hi) {
  float amax = 0.0f;
  for (int i = 0; i < 16; ++i) amax = fmaxf(amax, fabsf(v[i]));
  // Block scale: the candidate from the approximate quotient is off by at most one E4M3 step; the
  // midpoints m to its neighbours decide exactly (amax / (6 s) > m <=> amax > 6 m s; 6 m is exact).
  // A tie goes to the even encoding (E4M3 bytes are ordered like their values).
  uint32_t sb = __nv_cvt_float_to_fp8(amax / (6.0f * input_scale), __NV_SATFINITE, __NV_E4M3);
  if (sb < 0x7eu) {
    const float mid = 0.5f * (Fp4E4M3Magnitude(sb) + Fp4E4M3Magnitude(sb + 1));
    if (amax >= FirstFloatAbove(6.0f * mid, input_scale, (sb + 1) % 2 == 0)) ++sb;
  }
  if (sb > 0u && sb <= 0x7eu) {
    const float mid = 0.5f * (Fp4E4M3Magnitude(sb - 1) + Fp4E4M3Magnitude(sb));
    if (!(amax >= FirstFloatAbove(6.0f * mid, input_scale, sb % 2 == 0))) --sb;
  }
  const float sb_value = Fp4E4M3Magnitude(sb);
  uint32_t l = 0, h = 0;
  if (sb_value > 0.0f) {  // a zero scale (zero block, or too small to encode) gives zero codes
    // |x| / (s_b s) rounds above tie t_i <=> |x| >= above[i]. The e2m1 ties between codes i and
    // i + 1 are 0.25, 0.75, ..., 5; a tie goes to the even code (up for 0.75, 1.75 and 3.5).
    const float kTies[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    float above[7];
    for (int t = 0; t < 7; ++t) {
      above[t] = FirstFloatAbove(kTies[t] * sb_value, input_scale, t % 2 == 1);
    }
    for (int i = 0; i < 16; ++i) {
      const float a = fabsf(v[i]);
      uint32_t code = 0;
      for (int t = 0; t < 7; ++t) code += a >= above[t] ? 1u : 0u;
      if (a != a) {
        code = 7;  // NaN, as the reference encoder
      } else if (v[i] < 0.0f) {
        code |= 0x8u;  // negative values rounding to zero keep the sign
      }
      if (i < 8) {
        l |= code << (4 * i);
      } else {
        h |= code << (4 * (i - 8));
      }
    }
  }
  *lo = l;
  *hi = h;
  return sb;
}

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_QUANT_H_
