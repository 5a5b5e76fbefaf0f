// Widening element loads shared by the CPU kernels.
#ifndef SPARKSTACK_KERNELS_CPU_CONVERT_H_
#define SPARKSTACK_KERNELS_CPU_CONVERT_H_

#include <cstdint>
#include <cstring>

#include "runtime/core/dtype.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels {

// dst[i] = float(src[offset + i]) for i < count, src of dtype f32, f16 or bf16. Reads through
// memcpy-sized loads so unaligned (mmapped) sources are fine.
inline void LoadAsFloat(const void* src, DType dtype, int64_t offset, int64_t count, float* dst) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, static_cast<const float*>(src) + offset, count * sizeof(float));
      return;
    case DType::kBF16: {
      const auto* p = static_cast<const unsigned char*>(src) + offset * 2;
      for (int64_t i = 0; i < count; ++i) {
        uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        dst[i] = Bf16ToFloat(bits);
      }
      return;
    }
    case DType::kF16: {
      const auto* p = static_cast<const unsigned char*>(src) + offset * 2;
      for (int64_t i = 0; i < count; ++i) {
        uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        dst[i] = F16ToFloat(bits);
      }
      return;
    }
    default:
      for (int64_t i = 0; i < count; ++i) dst[i] = 0.0f;  // callers validate dtypes first
  }
}

// True for the dtypes LoadAsFloat reads.
inline bool IsFloatDType(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16;
}

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_CONVERT_H_
