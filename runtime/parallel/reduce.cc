#include "runtime/parallel/reduce.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "runtime/core/half.h"

namespace sparkstack {
namespace {

struct F32Ops {
  using T = float;
  static float Load(T v) { return v; }
  static T Store(float v) { return v; }
};
struct Bf16Ops {
  using T = uint16_t;
  static float Load(T v) { return Bf16ToFloat(v); }
  static T Store(float v) { return FloatToBf16(v); }
};
struct F16Ops {
  using T = uint16_t;
  static float Load(T v) { return F16ToFloat(v); }
  static T Store(float v) { return FloatToF16(v); }
};

template <typename Ops>
void SumInOrderTyped(void* out, const void* const* inputs, int n, size_t count) {
  using T = typename Ops::T;
  T* o = static_cast<T*>(out);
  for (size_t i = 0; i < count; ++i) {
    float acc = Ops::Load(static_cast<const T*>(inputs[0])[i]);
    for (int k = 1; k < n; ++k) acc += Ops::Load(static_cast<const T*>(inputs[k])[i]);
    o[i] = Ops::Store(acc);
  }
}

void SumInOrderI32(void* out, const void* const* inputs, int n, size_t count) {
  // Unsigned arithmetic: wraps like two's complement without undefined behaviour.
  uint32_t* o = static_cast<uint32_t*>(out);
  for (size_t i = 0; i < count; ++i) {
    uint32_t acc = static_cast<const uint32_t*>(inputs[0])[i];
    for (int k = 1; k < n; ++k) acc += static_cast<const uint32_t*>(inputs[k])[i];
    o[i] = acc;
  }
}

// Two-input f32 case is the hot loop of the ring; keep it simple enough to vectorise.
void SumIntoF32(float* __restrict dst, const float* __restrict src, size_t count) {
  for (size_t i = 0; i < count; ++i) dst[i] += src[i];
}

}  // namespace

absl::Status CheckReducibleDType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kI32:
      return absl::OkStatus();
    case DType::kF8E4M3:
    case DType::kNvfp4:
    case DType::kI64:
    case DType::kU8:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("all-reduce: dtype ",
                                                 std::string(DTypeName(dtype)),
                                                 " is not supported (f32, f16, bf16, i32)"));
}

void SumInOrder(void* out, const void* const* inputs, int n, size_t count, DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return SumInOrderTyped<F32Ops>(out, inputs, n, count);
    case DType::kF16:
      return SumInOrderTyped<F16Ops>(out, inputs, n, count);
    case DType::kBF16:
      return SumInOrderTyped<Bf16Ops>(out, inputs, n, count);
    case DType::kI32:
      return SumInOrderI32(out, inputs, n, count);
    case DType::kF8E4M3:
    case DType::kNvfp4:
    case DType::kI64:
    case DType::kU8:
      return;  // rejected by CheckReducibleDType before any data moves
  }
}

void SumInto(void* dst, const void* src, size_t count, DType dtype) {
  if (dtype == DType::kF32) {
    return SumIntoF32(static_cast<float*>(dst), static_cast<const float*>(src), count);
  }
  const void* inputs[2] = {dst, src};
  SumInOrder(dst, inputs, 2, count, dtype);
}

}  // namespace sparkstack
