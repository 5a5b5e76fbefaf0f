#include "runtime/quant/nvfp4_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"

namespace sparkstack {
namespace {

// Row `r` of `matrix` widened to float (memcpy: the source may be unaligned).
void LoadRow(const Tensor& matrix, int64_t r, std::vector<float>& row) {
  const int64_t k = matrix.dim(1);
  const char* base = matrix.data_as<const char>();
  switch (matrix.dtype()) {
    case DType::kF32:
      std::memcpy(row.data(), base + r * k * 4, k * 4);
      return;
    case DType::kF16:
    case DType::kBF16: {
      std::vector<uint16_t> bits(k);
      std::memcpy(bits.data(), base + r * k * 2, k * 2);
      for (int64_t c = 0; c < k; ++c) {
        row[c] = matrix.dtype() == DType::kF16 ? F16ToFloat(bits[c]) : Bf16ToFloat(bits[c]);
      }
      return;
    }
    default:
      return;  // rejected by the caller
  }
}

}  // namespace

absl::StatusOr<Weight> QuantizeNvfp4(const Tensor& matrix, const std::string& name) {
  if (matrix.rank() != 2 || (matrix.dtype() != DType::kF32 && matrix.dtype() != DType::kF16 &&
                             matrix.dtype() != DType::kBF16)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot quantize ", name, " to nvfp4: expected a rank-2 f32, f16 or bf16 tensor, found ",
        matrix.DebugString()));
  }
  if (matrix.device() != Device::kCpu) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot quantize ", name, " to nvfp4: the tensor is not on the CPU"));
  }
  const int64_t n = matrix.dim(0);
  const int64_t k = matrix.dim(1);
  if (k % kNvfp4BlockSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot quantize ", name, " ",
                                                   matrix.DebugString(), " to nvfp4: K = ", k,
                                                   " is not a multiple of 16"));
  }
  // Pass 1: the tensor amax (exact: max of absolute values needs no rounding).
  std::vector<float> row(k);
  float amax = 0.0f;
  for (int64_t r = 0; r < n; ++r) {
    LoadRow(matrix, r, row);
    for (int64_t c = 0; c < k; ++c) {
      if (!std::isfinite(row[c])) {
        return absl::InvalidArgumentError(absl::StrCat("cannot quantize ", name,
                                                       " to nvfp4: element [", r, ", ", c,
                                                       "] is ", row[c]));
      }
      amax = std::max(amax, std::fabs(row[c]));
    }
  }
  // torch: amax.float() / (6.0 * 448.0): one float32 division by 2688.
  const float global = amax / 2688.0f;
  // torch: per_block_amax / (6.0 * weights_scaling_factor_2): the product is a float32 tensor op.
  const float six_global = 6.0f * global;

  Nvfp4Parts parts;
  parts.codes = Tensor::Zeros(DType::kU8, {n, k / 2});
  parts.block_scales = Tensor::Zeros(DType::kF8E4M3, {n, k / kNvfp4BlockSize});
  parts.global_scale = global;
  uint8_t* codes = parts.codes.data_as<uint8_t>();
  uint8_t* scales = parts.block_scales.data_as<uint8_t>();
  for (int64_t r = 0; r < n; ++r) {
    LoadRow(matrix, r, row);
    for (int64_t b = 0; b < k / kNvfp4BlockSize; ++b) {
      const float* block = row.data() + b * kNvfp4BlockSize;
      float block_amax = 0.0f;
      for (int i = 0; i < kNvfp4BlockSize; ++i) block_amax = std::max(block_amax, std::fabs(block[i]));
      // A zero quotient becomes 1.0 (for an all-zero tensor torch would get 0/0 = NaN here; we
      // take 1.0 as for any zero block). Then clamp to [2^-9, 448] and round to E4M3.
      float scale = block_amax == 0.0f ? 1.0f : block_amax / six_global;
      if (scale == 0.0f) scale = 1.0f;
      scale = std::clamp(scale, kE4M3MinSubnormal, kE4M3Max);
      const uint8_t scale_bits = FloatToE4M3(scale);
      scales[r * (k / kNvfp4BlockSize) + b] = scale_bits;
      // torch: input / (weights_scaling_factor.to(float32) * weights_scaling_factor_2).
      const float divisor = E4M3ToFloat(scale_bits) * global;
      uint8_t* out = codes + r * (k / 2) + b * (kNvfp4BlockSize / 2);
      for (int i = 0; i < kNvfp4BlockSize; i += 2) {
        // A zero tensor has divisor 0: its codes stay 0 (ModelOpt would divide 0 by 0 here).
        const uint8_t lo = divisor == 0.0f ? 0 : FloatToE2M1(block[i] / divisor);
        const uint8_t hi = divisor == 0.0f ? 0 : FloatToE2M1(block[i + 1] / divisor);
        out[i / 2] = static_cast<uint8_t>(lo | (hi << 4));
      }
    }
  }
  return Weight::Nvfp4(std::move(parts));
}

absl::StatusOr<Tensor> DequantizeNvfp4(const Weight& weight) {
  if (weight.format() != WeightFormat::kNvfp4) {
    return absl::InvalidArgumentError(
        absl::StrCat("DequantizeNvfp4 needs an nvfp4 weight, got ", weight.DebugString()));
  }
  const int64_t n = weight.rows();
  const int64_t k = weight.cols();
  Tensor out = Tensor::Zeros(DType::kF32, {n, k});
  const Nvfp4Parts& parts = weight.nvfp4();
  kernels::Nvfp4DequantizeReference(parts.codes.data_as<const uint8_t>(), k / 2,
                                    parts.block_scales.data_as<const uint8_t>(),
                                    k / kNvfp4BlockSize, parts.global_scale, n, k,
                                    out.data_as<float>(), k);
  return out;
}

}  // namespace sparkstack
