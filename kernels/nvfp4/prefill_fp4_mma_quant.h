// The W4A4 activation quantizer of one 16-value block as the sm_121a FP4 MMA GEMM runs it while
// staging its activation tile (prefill_fp4_mma.cuh), as a __host__ __device__ function so that the
// host tests compare it with the float64 reference (Nvfp4QuantizeActivationReference) without a
// GPU. NVFP4.md "Activations": S = 1 / input_scale; s_b = e4m3(S * amax_b / 6) (RNE, satfinite);
// code = RNE_e2m1(x / (s_b / S)), all codes 0 when s_b is 0. Computed in float32 (full rate on
// the GPU): it can differ from the float64 reference only where a float32 rounding lands on a tie.
#ifndef SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_QUANT_H_
#define SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_QUANT_H_

#include <cmath>
#include <cstdint>

#include "kernels/cuda/numeric.h"
#include "kernels/nvfp4/prefill_fp4_mma_layout.h"

namespace sparkstack::kernels::nvfp4 {

// Exact value of a non-negative, non-NaN E4M3 byte (sign ignored: scales here are >= 0).
SPARKSTACK_FP4MMA_HD float Fp4E4M3Magnitude(uint32_t b) {
  const int e = static_cast<int>((b >> 3) & 0xf);
  const int m = static_cast<int>(b & 0x7);
  return e == 0 ? ldexpf(static_cast<float>(m), -9) : ldexpf(static_cast<float>(8 + m), e - 10);
}

// Quantizes v[0..15] with inv_scale = 1 / input_scale. Returns the ue4m3 scale byte; *lo holds
// the codes of v[0..7] and *hi those of v[8..15], value i in nibble i (lowest first), which is
// the byte layout of the codes in memory (element 2i in the low nibble of byte i, little endian).
SPARKSTACK_FP4MMA_HD uint32_t Fp4QuantizeBlock16(const float* v, float inv_scale, uint32_t* lo,
                                                 uint32_t* hi) {
  float amax = 0.0f;
  for (int i = 0; i < 16; ++i) amax = fmaxf(amax, fabsf(v[i]));
  const uint32_t sb = __nv_cvt_float_to_fp8(inv_scale * amax / 6.0f, __NV_SATFINITE, __NV_E4M3);
  const float sb_value = Fp4E4M3Magnitude(sb);
  // x / (s_b / S) = x * (S / s_b). A zero scale (a zero block, or one too small to encode) gives
  // zero codes, never 0x8.
  uint32_t l = 0, h = 0;
  if (sb_value > 0.0f) {
    const float mul = inv_scale / sb_value;
    for (int i = 0; i < 8; ++i) {
      l |= Fp4RoundE2M1(v[i] * mul) << (4 * i);
      h |= Fp4RoundE2M1(v[8 + i] * mul) << (4 * i);
    }
  }
  *lo = l;
  *hi = h;
  return sb;
}

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_QUANT_H_
