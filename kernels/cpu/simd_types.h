// Element types the SIMD kernels widen to f32 (raw bits, so overloads can tell them apart).
#ifndef SPARKSTACK_KERNELS_CPU_SIMD_TYPES_H_
#define SPARKSTACK_KERNELS_CPU_SIMD_TYPES_H_

#include <cstdint>

namespace sparkstack::kernels {

struct Bf16 {
  uint16_t bits;
};
struct F16 {
  uint16_t bits;
};
static_assert(sizeof(Bf16) == 2 && sizeof(F16) == 2);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_SIMD_TYPES_H_
