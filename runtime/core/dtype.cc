#include "runtime/core/dtype.h"

#include "absl/strings/str_cat.h"

namespace sparkstack {

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kF8E4M3: return "fp8_e4m3";
    case DType::kNvfp4: return "nvfp4";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kU8: return "u8";
  }
  return "unknown";
}

int DTypeBits(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 32;
    case DType::kF16: return 16;
    case DType::kBF16: return 16;
    case DType::kF8E4M3: return 8;
    case DType::kNvfp4: return 4;
    case DType::kI32: return 32;
    case DType::kI64: return 64;
    case DType::kU8: return 8;
  }
  return 0;
}

size_t DTypeByteSize(DType dtype, int64_t numel) {
  return (static_cast<size_t>(numel) * DTypeBits(dtype) + 7) / 8;
}

absl::StatusOr<DType> DTypeFromSafetensorsName(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  if (name == "F8_E4M3") return DType::kF8E4M3;
  if (name == "I32") return DType::kI32;
  if (name == "I64") return DType::kI64;
  if (name == "U8") return DType::kU8;
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported safetensors dtype '", std::string(name),
                   "' (expected one of F32, F16, BF16, F8_E4M3, I32, I64, U8)"));
}

std::string_view SafetensorsName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF8E4M3: return "F8_E4M3";
    case DType::kNvfp4: return "U8";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
    case DType::kU8: return "U8";
  }
  return "U8";
}

}  // namespace sparkstack
