// NVFP4 weight quantization on the CPU with ModelOpt's math, bit for bit (NVFP4.md):
//   weight_scale_2 = amax(|W|) / (6 * 448)                               float32
//   block scale    = e4m3(clamp(amax_b / (6 * weight_scale_2), 2^-9, 448)), 1.0 for a zero block
//   codes          = RNE_e2m1(W / (float(block scale) * weight_scale_2))  float32 division
// with every step rounded to float32 in the order ModelOpt's torch code rounds it (current
// ModelOpt, `_cast_per_block_scale_to_fp8` with its [2^-9, 448] clamp), so the codes and scales
// equal ModelOpt's export of the same weights. kernels/cpu/nvfp4_reference.h holds the float64
// version of the formula; the two differ only where float32 rounding crosses a rounding boundary.
//
// Thread safety: pure functions.
#ifndef SPARKSTACK_RUNTIME_QUANT_NVFP4_QUANTIZER_H_
#define SPARKSTACK_RUNTIME_QUANT_NVFP4_QUANTIZER_H_

#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/tensor.h"
#include "runtime/core/weight.h"

namespace sparkstack {

// Quantizes `matrix`, a rank-2 f32/f16/bf16 CPU tensor [N, K] (any alignment; borrowed checkpoint
// tensors are fine), to an NVFP4 Weight with owned storage. `name` only labels errors.
// InvalidArgument (naming `name`) for another rank or dtype, K not a multiple of 16, or a non-finite
// element (its index is given). An all-zero matrix gives global scale 0, block scales 1.0 and
// zero codes, which dequantize to zeros (ModelOpt would compute 0/0 and store NaN scales there).
absl::StatusOr<Weight> QuantizeNvfp4(const Tensor& matrix, const std::string& name = "weight");

// Dequantizes an NVFP4 weight to an owned f32 tensor [N, K] (exact products rounded once to f32).
// InvalidArgument if `weight` is not NVFP4.
absl::StatusOr<Tensor> DequantizeNvfp4(const Weight& weight);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_QUANT_NVFP4_QUANTIZER_H_
