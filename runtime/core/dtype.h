// Element types of tensors and weights.
#ifndef SPARKSTACK_RUNTIME_CORE_DTYPE_H_
#define SPARKSTACK_RUNTIME_CORE_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace sparkstack {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kF8E4M3,  // float8_e4m3fn: no infinities, 0x7f/0xff are NaN, max 448.
  kNvfp4,   // e2m1 codes, two per byte: element 2i in the low nibble, 2i+1 in the high nibble.
  kI32,
  kI64,
  kU8,
};

// Lower-case name for messages ("bf16").
std::string_view DTypeName(DType dtype);

// Size of one element in bits (4 for nvfp4, 8 * bytes otherwise).
int DTypeBits(DType dtype);

// Bytes that `numel` elements occupy; nvfp4 packs two per byte, rounding up.
size_t DTypeByteSize(DType dtype, int64_t numel);

// Parses a safetensors dtype string ("F32", "BF16", "F8_E4M3", ...). Unknown names give
// InvalidArgument naming the string. nvfp4 has no safetensors name (it is stored as U8).
absl::StatusOr<DType> DTypeFromSafetensorsName(std::string_view name);

// The safetensors dtype string for `dtype`; nvfp4 maps to "U8".
std::string_view SafetensorsName(DType dtype);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_CORE_DTYPE_H_
