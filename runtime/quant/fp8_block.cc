#include "runtime/quant/fp8_block.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/convert.h"
#include "runtime/core/float8.h"
#include "runtime/core/status_macros.h"
#include "runtime/quant/nvfp4_quantizer.h"

namespace sparkstack {
namespace {

int64_t Blocks(int64_t n) { return (n + kFp8BlockSize - 1) / kFp8BlockSize; }

}  // namespace

absl::StatusOr<Tensor> DequantizeFp8Block(const Tensor& codes, const Tensor& scale_inv,
                                          const std::string& name) {
  if (codes.rank() != 2 || codes.dtype() != DType::kF8E4M3) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": FP8 weight must be f8_e4m3 [N, K], got ", codes.DebugString()));
  }
  const int64_t n = codes.dim(0);
  const int64_t k = codes.dim(1);
  if (scale_inv.rank() != 2 || scale_inv.dim(0) != Blocks(n) || scale_inv.dim(1) != Blocks(k) ||
      !kernels::IsFloatDType(scale_inv.dtype())) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": weight_scale_inv must be f32 or bf16 [", Blocks(n), ", ", Blocks(k),
        "] (one scale per 128x128 block of [", n, ", ", k, "]), got ", scale_inv.DebugString()));
  }
  std::vector<float> scales(scale_inv.numel());
  kernels::LoadAsFloat(scale_inv.data(), scale_inv.dtype(), 0, scale_inv.numel(), scales.data());
  for (size_t i = 0; i < scales.size(); ++i) {
    if (!(scales[i] > 0.0f) || !std::isfinite(scales[i])) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": weight_scale_inv[", i / Blocks(k),
                                                     "][", i % Blocks(k), "] is ", scales[i],
                                                     "; block scales must be finite and positive"));
    }
  }
  Tensor out = Tensor::Zeros(DType::kF32, {n, k});
  const auto* q = static_cast<const uint8_t*>(codes.data());
  float* w = out.data_as<float>();
  for (int64_t r = 0; r < n; ++r) {
    const float* row_scales = scales.data() + (r / kFp8BlockSize) * Blocks(k);
    for (int64_t c = 0; c < k; ++c) {
      const uint8_t bits = q[r * k + c];
      if ((bits & 0x7f) == kE4M3NaN) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": FP8 element [", r, ", ", c,
                                                       "] is NaN (0x", absl::Hex(bits), ")"));
      }
      w[r * k + c] = E4M3ToFloat(bits) * row_scales[c / kFp8BlockSize];
    }
  }
  return out;
}

bool IsFp8BlockLinear(const Checkpoint& checkpoint, const std::string& prefix) {
  const SafetensorsEntry* entry = checkpoint.Find(prefix + ".weight");
  return entry != nullptr && entry->dtype == DType::kF8E4M3;
}

absl::StatusOr<Weight> LoadFp8BlockLinearAsNvfp4(const Checkpoint& checkpoint,
                                                 const std::string& prefix) {
  const std::string weight_name = prefix + ".weight";
  const std::string scale_name = prefix + ".weight_scale_inv";
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor codes, checkpoint.Get(weight_name));
  if (!checkpoint.Contains(scale_name)) {
    return absl::NotFoundError(absl::StrCat("FP8 weight '", weight_name, "' in ", checkpoint.dir(),
                                            " has no block scales: missing '", scale_name, "'"));
  }
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor scale_inv, checkpoint.Get(scale_name));
  const std::string label = absl::StrCat("'", weight_name, "' in ", checkpoint.dir());
  SPARKSTACK_ASSIGN_OR_RETURN(Tensor dense, DequantizeFp8Block(codes, scale_inv, label));
  // NVFP4 needs whole 16-element blocks along K; other widths stay exact in f32 (no real FP8
  // release has one: their widths are multiples of the 128-wide FP8 blocks).
  if (dense.dim(1) % kNvfp4BlockSize != 0) return Weight::Dense(std::move(dense));
  return QuantizeNvfp4(dense, label);
}

absl::StatusOr<Fp8BlockParts> QuantizeFp8Block(const Tensor& w) {
  if (w.rank() != 2 || !kernels::IsFloatDType(w.dtype())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FP8 block quantization needs an f32/f16/bf16 [N, K] matrix, got ", w.DebugString()));
  }
  const int64_t n = w.dim(0);
  const int64_t k = w.dim(1);
  std::vector<float> x(n * k);
  kernels::LoadAsFloat(w.data(), w.dtype(), 0, n * k, x.data());
  Fp8BlockParts parts{Tensor::Zeros(DType::kF8E4M3, {n, k}),
                      Tensor::Zeros(DType::kF32, {Blocks(n), Blocks(k)})};
  float* scales = parts.scale_inv.data_as<float>();
  auto* codes = static_cast<uint8_t*>(parts.codes.data());
  for (int64_t br = 0; br < Blocks(n); ++br) {
    for (int64_t bc = 0; bc < Blocks(k); ++bc) {
      const int64_t r_end = std::min(n, (br + 1) * kFp8BlockSize);
      const int64_t c_end = std::min(k, (bc + 1) * kFp8BlockSize);
      float amax = 0.0f;
      for (int64_t r = br * kFp8BlockSize; r < r_end; ++r) {
        for (int64_t c = bc * kFp8BlockSize; c < c_end; ++c) {
          amax = std::max(amax, std::fabs(x[r * k + c]));
        }
      }
      const float scale = amax > 0.0f ? amax / kE4M3Max : 1.0f;
      scales[br * Blocks(k) + bc] = scale;
      for (int64_t r = br * kFp8BlockSize; r < r_end; ++r) {
        for (int64_t c = bc * kFp8BlockSize; c < c_end; ++c) {
          codes[r * k + c] = FloatToE4M3(x[r * k + c] / scale);
        }
      }
    }
  }
  return parts;
}

}  // namespace sparkstack
