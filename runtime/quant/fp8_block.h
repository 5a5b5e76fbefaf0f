// DeepSeek-style FP8 weights: e4m3 values with one float32 scale per 128 x 128 block
// (`P.weight` f8_e4m3 [N, K] and `P.weight_scale_inv` f32/bf16 [ceil(N/128), ceil(K/128)];
// config.json quantization_config {"quant_method": "fp8", "fmt": "e4m3",
// "weight_block_size": [128, 128]}). DeepSeek-V3/R1, Kimi K2 and MiniMax-M2 ship this way.
// Despite the name, weight_scale_inv multiplies: w = e4m3(q) * weight_scale_inv[r / 128][c / 128].
//
// sparkstack converts these weights to NVFP4 at load instead of running FP8 kernels: the only
// FP8 models are DeepSeek-V3-class (671B: 671 GB in FP8 does not fit four Sparks' ~408 GiB of
// allocatable memory, 377 GB in NVFP4 does) and MiniMax-M2 (230 GB: two Sparks hold it only in
// NVFP4 with room for a KV cache), so NVFP4 is where they must end up, and one weight format means
// one set of kernels. The conversion dequantizes each block exactly in float32 (an e4m3 value
// times a float32 scale is exact in float32 unless it underflows) and quantizes the result with
// ModelOpt's NVFP4 math (nvfp4_quantizer.h), so an FP8 checkpoint loads exactly as its bf16
// dequantization quantized by ModelOpt would. Accuracy against the bf16 dequantization is that of
// NVFP4 itself (docs/moe.md gives the measured figures).
#ifndef SPARKSTACK_RUNTIME_QUANT_FP8_BLOCK_H_
#define SPARKSTACK_RUNTIME_QUANT_FP8_BLOCK_H_

#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/tensor.h"
#include "runtime/core/weight.h"
#include "runtime/model/checkpoint.h"

namespace sparkstack {

inline constexpr int64_t kFp8BlockSize = 128;

// w [N, K] as f32 from `codes` f8_e4m3 [N, K] and `scale_inv` f32 or bf16 [ceil(N/128),
// ceil(K/128)]. `name` labels errors. InvalidArgument (naming `name`, expected vs found) for
// other dtypes or shapes, or a scale that is not finite and positive; an e4m3 NaN code (0x7f,
// 0xff) is InvalidArgument too, with its position.
absl::StatusOr<Tensor> DequantizeFp8Block(const Tensor& codes, const Tensor& scale_inv,
                                          const std::string& name);

// True if the checkpoint holds `prefix`.weight as f8_e4m3 (with or without its scale).
bool IsFp8BlockLinear(const Checkpoint& checkpoint, const std::string& prefix);

// Loads `prefix`.weight and `prefix`.weight_scale_inv and converts them to an NVFP4 Weight with
// owned storage (DequantizeFp8Block, then QuantizeNvfp4); a K that is not a multiple of 16 keeps
// the exact dequantized values as a dense f32 weight instead. NotFound naming the tensor and the
// directory for a missing scale; the errors above otherwise.
absl::StatusOr<Weight> LoadFp8BlockLinearAsNvfp4(const Checkpoint& checkpoint,
                                                 const std::string& prefix);

// DeepSeek's weight quantization, for writing test checkpoints: per 128 x 128 block (partial at
// the edges), scale = amax / 448 (1 for an all-zero block), code = e4m3(w / scale) (RNE,
// saturating). w is f32/bf16 [N, K]; returns {codes f8_e4m3 [N, K], scale_inv f32 [ceil(N/128),
// ceil(K/128)]}.
struct Fp8BlockParts {
  Tensor codes;
  Tensor scale_inv;
};
absl::StatusOr<Fp8BlockParts> QuantizeFp8Block(const Tensor& w);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_QUANT_FP8_BLOCK_H_
