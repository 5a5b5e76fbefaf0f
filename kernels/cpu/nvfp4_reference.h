// Plain, slow, float64 reference implementations of NVFP4 (see /work/shared/NVFP4.md). They exist
// to check the optimized CPU kernels, the CUDA kernels and the quantizer against; nothing on a hot
// path calls them. Raw pointers, sizes and strides (in elements), no allocation, no errors: callers
// pass valid sizes (k a multiple of 16) and buffers of the documented extents.
//
// Layouts (shared with the checkpoints and sparkstack::Weight):
//   codes         u8 [n, k/2], row stride ldc bytes: element 2i of a row in the low nibble of byte
//                 i, element 2i+1 in the high nibble; e2m1 code values in runtime/core/float8.h.
//   block_scales  E4M3 bytes [n, k/16], row stride lds bytes: byte j scales elements [16j, 16j+16).
//   global_scale  f32: dequant(w)[r][c] = e2m1(code) * e4m3(block_scale) * global_scale.
//
// Thread safety: all functions are pure (they only write their output arguments).
#ifndef SPARKSTACK_KERNELS_CPU_NVFP4_REFERENCE_H_
#define SPARKSTACK_KERNELS_CPU_NVFP4_REFERENCE_H_

#include <cstdint>

namespace sparkstack::kernels {

// out[r * ldo + c] = dequantized element (r, c) for r < n, c < k, computed exactly in float64 and
// rounded once to float.
void Nvfp4DequantizeReference(const uint8_t* codes, int64_t ldc, const uint8_t* block_scales,
                              int64_t lds, float global_scale, int64_t n, int64_t k, float* out,
                              int64_t ldo);

// ModelOpt's weight quantization done in float64 (the formula of NVFP4.md), for w [n, k] with row
// stride ldw:
//   *global_scale = float32(amax(|w|) / (6 * 448))   (stored as float32, so the rest of the math
//                                                      uses that stored value; 0 if w is all zero)
//   block scale   = e4m3(max(amax_b / (6 * global), 2^-9)), or e4m3(1.0) when amax_b == 0,
//                   RNE and satfinite at 448 (current ModelOpt's clamp to [2^-9, 448])
//   code          = RNE_e2m1(w / (e4m3_value(block scale) * global)), 0x8 for negative values
//                   rounding to zero; saturated at +-6.
// When w is all zero the global scale is 0 and every code is 0 (dequantization gives zeros).
// Non-finite inputs are not meaningful (the quantizer rejects them before getting here).
void Nvfp4QuantizeWeightReference(const float* w, int64_t n, int64_t k, int64_t ldw,
                                  uint8_t* codes, int64_t ldc, uint8_t* block_scales, int64_t lds,
                                  float* global_scale);

// y[i * ldy + r] = sum_c x[i * ldx + c] * dequant(W)[r][c] for i < m, r < n, accumulated in
// float64 over exactly dequantized weights (W4A16 semantics: activations used as given).
void Nvfp4GemmReference(const float* x, int64_t m, int64_t k, int64_t ldx, const uint8_t* codes,
                        int64_t ldc, const uint8_t* block_scales, int64_t lds, float global_scale,
                        int64_t n, double* y, int64_t ldy);

// W4A4 dynamic activation quantization of x [m, k] (row stride ldx) with the static per-tensor
// input_scale = amax_calib / (6 * 448), in float64 (NVFP4.md "Activations"):
//   S = 1 / input_scale;  s_b = e4m3(S * amax_b / 6) (RNE, satfinite);
//   code = RNE_e2m1(x / (s_b / S)), or the code of x * 0 (so 0x0) when s_b rounds to zero.
// Dequantization is Nvfp4DequantizeReference(codes, ..., block_scales, ..., input_scale, ...):
// e2m1 * s_b * input_scale. Outputs use the weight layout with m rows.
void Nvfp4QuantizeActivationReference(const float* x, int64_t m, int64_t k, int64_t ldx,
                                      float input_scale, uint8_t* codes, int64_t ldc,
                                      uint8_t* block_scales, int64_t lds);

// W4A4 GEMM on quantized operands: y[i][r] = sum_c dequant(A)[i][c] * dequant(W)[r][c] in float64,
// where dequant(A) uses `input_scale` as its global scale and dequant(W) `weight_global_scale`
// (equivalently alpha = input_scale * weight_global_scale times the product of e2m1 values and
// block scales, as the block-scaled tensor-core path computes it).
void Nvfp4W4A4GemmReference(const uint8_t* a_codes, int64_t lda_c, const uint8_t* a_scales,
                            int64_t lda_s, float input_scale, int64_t m, int64_t k,
                            const uint8_t* w_codes, int64_t ldw_c, const uint8_t* w_scales,
                            int64_t ldw_s, float weight_global_scale, int64_t n, double* y,
                            int64_t ldy);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_NVFP4_REFERENCE_H_
