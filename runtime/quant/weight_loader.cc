#include "runtime/quant/weight_loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/core/float8.h"
#include "runtime/core/status_macros.h"
#include "runtime/quant/fp8_block.h"

namespace sparkstack {
namespace {

std::string Where(const Checkpoint& checkpoint, const std::string& name) {
  return absl::StrCat("tensor ", name, " in ", checkpoint.dir());
}

std::string ShapeOf(const SafetensorsEntry& entry) {
  return absl::StrCat(std::string(DTypeName(entry.dtype)), ShapeToString(entry.shape));
}

// The scalar f32 `name`: 0-dim or [1]. NotFound if absent and required.
absl::StatusOr<std::optional<float>> ReadScalar(const Checkpoint& checkpoint,
                                                const std::string& name, bool required) {
  const SafetensorsEntry* entry = checkpoint.Find(name);
  if (entry == nullptr) {
    if (!required) return std::optional<float>();
    return absl::NotFoundError(absl::StrCat("missing scale: ", Where(checkpoint, name),
                                            " is required for an NVFP4 layer"));
  }
  if (entry->dtype != DType::kF32 || NumElements(entry->shape) != 1 || entry->shape.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(Where(checkpoint, name),
                                                   ": expected an f32 scalar ([] or [1]), found ",
                                                   ShapeOf(*entry)));
  }
  auto tensor = checkpoint.Get(name);
  if (!tensor.ok()) return tensor.status();
  float value;
  std::memcpy(&value, tensor->data(), sizeof(value));  // the mapping may be unaligned
  return std::optional<float>(value);
}

absl::Status ExpectShape(const Checkpoint& checkpoint, const SafetensorsEntry& entry, DType dtype,
                         int64_t rows, int64_t cols) {
  if (entry.dtype != dtype || entry.shape.size() != 2 || entry.shape[0] != rows ||
      entry.shape[1] != cols) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(checkpoint, entry.name), ": expected ", std::string(DTypeName(dtype)), "[", rows, ", ", cols,
        "], found ", ShapeOf(entry)));
  }
  return absl::OkStatus();
}

// Loads codes + block scales: `codes_name` u8 [N, K/2] and P.weight_scale e4m3 [N, K/16].
absl::StatusOr<Nvfp4Parts> LoadPackedParts(const Checkpoint& checkpoint,
                                           const std::string& codes_name,
                                           const std::string& prefix) {
  const SafetensorsEntry* codes = checkpoint.Find(codes_name);
  if (codes->shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(Where(checkpoint, codes_name),
                                                   ": expected u8[N, K/2], found ",
                                                   ShapeOf(*codes)));
  }
  const int64_t n = codes->shape[0];
  const int64_t k = codes->shape[1] * 2;
  if (k % kNvfp4BlockSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat(Where(checkpoint, codes_name), ": K = ", k,
                                                   " (2 x ", codes->shape[1],
                                                   ") is not a multiple of the group size 16"));
  }
  const std::string scale_name = prefix + ".weight_scale";
  const SafetensorsEntry* scale = checkpoint.Find(scale_name);
  if (scale == nullptr) {
    return absl::NotFoundError(absl::StrCat("missing scale: ", Where(checkpoint, scale_name),
                                            " is required for the NVFP4 weight ", codes_name));
  }
  SPARKSTACK_RETURN_IF_ERROR(ExpectShape(checkpoint, *scale, DType::kF8E4M3, n, k / kNvfp4BlockSize));
  Nvfp4Parts parts;
  auto codes_tensor = checkpoint.Get(codes_name);
  if (!codes_tensor.ok()) return codes_tensor.status();
  auto scale_tensor = checkpoint.Get(scale_name);
  if (!scale_tensor.ok()) return scale_tensor.status();
  parts.codes = *std::move(codes_tensor);
  parts.block_scales = *std::move(scale_tensor);
  return parts;
}

}  // namespace

absl::StatusOr<Weight> LoadLinearWeight(const Checkpoint& checkpoint, const QuantScheme& scheme,
                                        const std::string& prefix) {
  if (scheme.mixed_precision) {
    auto it = scheme.quantized_layers.find(prefix);
    if (it != scheme.quantized_layers.end() && it->second != "NVFP4") {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", prefix, " in ", checkpoint.dir(), ": quant_algo \"", it->second,
          "\" (", scheme.source, ") is not supported; only NVFP4 layers are implemented"));
    }
  }
  const std::string weight_name = prefix + ".weight";
  const std::string packed_name = prefix + ".weight_packed";

  if (checkpoint.Find(packed_name) != nullptr) {  // compressed-tensors
    const SafetensorsEntry* entry = checkpoint.Find(packed_name);
    if (entry->dtype != DType::kU8) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(checkpoint, packed_name), ": expected u8[N, K/2], found ", ShapeOf(*entry)));
    }
    auto parts = LoadPackedParts(checkpoint, packed_name, prefix);
    if (!parts.ok()) return parts.status();
    const std::string global_name = prefix + ".weight_global_scale";
    auto global = ReadScalar(checkpoint, global_name, /*required=*/true);
    if (!global.ok()) return global.status();
    if (!std::isfinite(**global) || !(**global > 0.0f)) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(checkpoint, global_name), ": the (inverted) global scale must be finite and "
          "positive, found ", **global));
    }
    parts->global_scale = 1.0f / **global;
    auto input = ReadScalar(checkpoint, prefix + ".input_global_scale", /*required=*/false);
    if (!input.ok()) return input.status();
    if (input->has_value()) {
      if (!std::isfinite(**input) || !(**input > 0.0f)) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(checkpoint, prefix + ".input_global_scale"),
            ": the (inverted) input scale must be finite and positive, found ", **input));
      }
      parts->input_scale = 1.0f / **input;
    }
    return Weight::Nvfp4(*std::move(parts));
  }

  const SafetensorsEntry* entry = checkpoint.Find(weight_name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("no weight for layer ", prefix, " in ",
                                            checkpoint.dir(), ": neither ", weight_name, " nor ",
                                            packed_name, " exists"));
  }
  switch (entry->dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16: {
      auto tensor = checkpoint.Get(weight_name);
      if (!tensor.ok()) return tensor.status();
      auto weight = Weight::Dense(*std::move(tensor));
      if (!weight.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(checkpoint, weight_name), ": ", weight.status().message()));
      }
      return weight;
    }
    case DType::kU8: {  // ModelOpt NVFP4
      auto parts = LoadPackedParts(checkpoint, weight_name, prefix);
      if (!parts.ok()) return parts.status();
      const std::string global_name = prefix + ".weight_scale_2";
      auto global = ReadScalar(checkpoint, global_name, /*required=*/true);
      if (!global.ok()) return global.status();
      if (!std::isfinite(**global) || **global < 0.0f) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(checkpoint, global_name), ": the global scale must be finite and non-negative, "
            "found ", **global));
      }
      parts->global_scale = **global;
      auto input = ReadScalar(checkpoint, prefix + ".input_scale", /*required=*/false);
      if (!input.ok()) return input.status();
      if (input->has_value()) {
        if (!std::isfinite(**input) || !(**input > 0.0f)) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(checkpoint, prefix + ".input_scale"),
                           ": the input scale must be finite and positive, found ", **input));
        }
        parts->input_scale = **input;
      }
      return Weight::Nvfp4(*std::move(parts));
    }
    case DType::kF8E4M3:
      // DeepSeek FP8 with 128x128 block scales, converted to NVFP4 (fp8_block.h says why).
      return LoadFp8BlockLinearAsNvfp4(checkpoint, prefix);
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          Where(checkpoint, weight_name), ": expected f32/f16/bf16 [N, K] or u8 [N, K/2] "
          "(NVFP4), found ", ShapeOf(*entry)));
  }
}

absl::StatusOr<Weight> FuseRows(std::span<const Weight> parts) {
  if (parts.empty()) return absl::InvalidArgumentError("FuseRows: no weights to fuse");
  const Weight& first = parts[0];
  int64_t total_rows = 0;
  for (const Weight& part : parts) {
    const bool same_kind =
        part.format() == first.format() &&
        (part.format() == WeightFormat::kNvfp4 || part.dense().dtype() == first.dense().dtype());
    if (!same_kind || part.cols() != first.cols()) {
      return absl::InvalidArgumentError(absl::StrCat("FuseRows: cannot fuse ",
                                                     first.DebugString(), " with ",
                                                     part.DebugString()));
    }
    total_rows += part.rows();
  }
  const int64_t k = first.cols();
  if (first.format() == WeightFormat::kDense) {
    Tensor out = Tensor::Zeros(first.dense().dtype(), {total_rows, k});
    char* dst = out.data_as<char>();
    for (const Weight& part : parts) {
      const size_t bytes = part.dense().nbytes();
      std::memcpy(dst, part.dense().data(), bytes);
      dst += bytes;
    }
    return Weight::Dense(std::move(out));
  }

  float gs_max = 0.0f;
  int with_input = 0;
  float input_max = 0.0f;
  for (const Weight& part : parts) {
    gs_max = std::max(gs_max, part.nvfp4().global_scale);
    if (part.nvfp4().input_scale.has_value()) {
      ++with_input;
      input_max = std::max(input_max, *part.nvfp4().input_scale);
    }
  }
  if (with_input != 0 && with_input != static_cast<int>(parts.size())) {
    return absl::InvalidArgumentError(
        "FuseRows: some parts have an input_scale (W4A4) and others do not");
  }
  const int64_t code_cols = k / 2;
  const int64_t scale_cols = k / kNvfp4BlockSize;
  Nvfp4Parts fused;
  fused.codes = Tensor::Zeros(DType::kU8, {total_rows, code_cols});
  fused.block_scales = Tensor::Zeros(DType::kF8E4M3, {total_rows, scale_cols});
  fused.global_scale = gs_max;
  if (with_input != 0) fused.input_scale = input_max;
  uint8_t* codes_out = fused.codes.data_as<uint8_t>();
  uint8_t* scales_out = fused.block_scales.data_as<uint8_t>();
  for (const Weight& part : parts) {
    const Nvfp4Parts& p = part.nvfp4();
    const size_t code_bytes = static_cast<size_t>(part.rows() * code_cols);
    const size_t scale_bytes = static_cast<size_t>(part.rows() * scale_cols);
    std::memcpy(codes_out, p.codes.data(), code_bytes);
    std::memcpy(scales_out, p.block_scales.data(), scale_bytes);
    if (p.global_scale != gs_max) {
      const double ratio = static_cast<double>(p.global_scale) / static_cast<double>(gs_max);
      for (int64_t r = 0; r < part.rows(); ++r) {
        for (int64_t b = 0; b < scale_cols; ++b) {
          uint8_t& scale_byte = scales_out[r * scale_cols + b];
          const double old_scale = E4M3ToFloat(scale_byte);
          if (old_scale == 0.0) continue;  // an all-zero block stays all zero
          const uint8_t new_byte = ToE4M3(std::clamp(old_scale * ratio, 1.0 / 512.0, 448.0));
          const double divisor = static_cast<double>(E4M3ToFloat(new_byte));
          scale_byte = new_byte;
          uint8_t* bytes = codes_out + r * code_cols + b * (kNvfp4BlockSize / 2);
          for (int i = 0; i < kNvfp4BlockSize / 2; ++i) {
            // e2m1 * old_scale * ratio is the exact value relative to gs_max.
            const double lo = kE2M1Values[bytes[i] & 0xf] * old_scale * ratio / divisor;
            const double hi = kE2M1Values[bytes[i] >> 4] * old_scale * ratio / divisor;
            bytes[i] = static_cast<uint8_t>(ToE2M1(lo) | (ToE2M1(hi) << 4));
          }
        }
      }
    }
    codes_out += code_bytes;
    scales_out += scale_bytes;
  }
  return Weight::Nvfp4(std::move(fused));
}

}  // namespace sparkstack
