// NOTE FOR THE MODEL CODE (committed, in use): runtime/model/linear_loader.cc's LoadLinear calls
// LoadLinearWeight(checkpoint, ReadQuantScheme(checkpoint.dir()), prefix); library sparkstack_quant.
// FuseRows (below) is available for fused qkv / gate_up weights.
//
// Loading one linear layer's weight from a checkpoint in whatever format it is stored: dense
// (f32/f16/bf16), ModelOpt NVFP4 or compressed-tensors NVFP4. The model code calls this for every
// linear layer and never looks at quantization tensors itself.
//
// Tensor names, for module prefix P ("model.layers.0.self_attn.q_proj"):
//   dense               P.weight                   f32/f16/bf16 [N, K]
//   ModelOpt NVFP4      P.weight                   u8 [N, K/2]
//                       P.weight_scale             f8_e4m3 [N, K/16]
//                       P.weight_scale_2           f32 scalar (0-dim or [1])
//                       P.input_scale              f32 scalar, optional (W4A4)
//   compressed-tensors  P.weight_packed            u8 [N, K/2]
//                       P.weight_scale             f8_e4m3 [N, K/16]
//                       P.weight_global_scale      f32 [1], INVERTED: global = 1 / value
//                       P.input_global_scale       f32 [1], optional, inverted likewise
// The format is decided by the tensors present (a u8 P.weight or a P.weight_packed means NVFP4),
// so layers a scheme excludes simply load dense; a scheme that says a layer is NVFP4 while the
// checkpoint holds it dense loads it dense too (ModelOpt exclude lists are not always complete).
//
// The returned Weight borrows the checkpoint's mapping (zero copy; it keeps the files mapped).
// For compressed-tensors the stored reciprocal is inverted once in float32, so dequantized values
// may differ from e2m1 * s / global by one float32 rounding.
#ifndef SPARKSTACK_RUNTIME_QUANT_WEIGHT_LOADER_H_
#define SPARKSTACK_RUNTIME_QUANT_WEIGHT_LOADER_H_

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/weight.h"
#include "runtime/model/checkpoint.h"
#include "runtime/quant/quant_scheme.h"

namespace sparkstack {

// Loads the weight of module `prefix`. Errors (each names the tensor and the checkpoint dir):
//   NotFound         — neither P.weight nor P.weight_packed exists; an NVFP4 layer without its
//                      P.weight_scale or global scale ("missing scale").
//   InvalidArgument  — wrong dtype or shape of any part (expected vs found), a global scale that
//                      is not a finite non-negative number (or, inverted, not finite positive),
//                      K not a multiple of 16, a MIXED_PRECISION layer whose quant_algo is not
//                      NVFP4 (named), an FP8 P.weight with bad block scales (fp8_block.h).
// An f8_e4m3 P.weight with P.weight_scale_inv (DeepSeek FP8) loads converted to NVFP4, owned.
absl::StatusOr<Weight> LoadLinearWeight(const Checkpoint& checkpoint, const QuantScheme& scheme,
                                        const std::string& prefix);

// Concatenates weights along N (q/k/v -> qkv, gate/up -> gate_up), in order. All parts must have
// the same format and K (dense: the same dtype). NVFP4 parts with different global scales are
// reconciled: the fused global scale is the largest, gs_max, and every block of a part with
// gs_i < gs_max gets the block scale e4m3(clamp(s * gs_i / gs_max, 2^-9, 448)) (RNE) and its codes
// re-rounded against that new scale from the exact dequantized values:
// code' = RNE_e2m1(e2m1(code) * s * gs_i / (s' * gs_max)). Taking gs_max while keeping the old
// block scales (vLLM's bug) would scale the whole part by gs_max / gs_i. Parts whose global scale
// already equals gs_max are copied unchanged. The input scales (W4A4) must be present on all parts
// or none; the fused one is their maximum (the parts read the same activation). The result owns
// its memory. InvalidArgument for an empty list, mixed formats/dtypes, or different K.
absl::StatusOr<Weight> FuseRows(std::span<const Weight> parts);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_QUANT_WEIGHT_LOADER_H_
