// The NEON kernels: isa_kernels.inc over 4-float Advanced SIMD vectors (part of the aarch64 base
// ISA, so no target pragma is needed).
#include "kernels/cpu/isa_kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/cpu/simd_types.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels {
namespace {

struct NeonSimd {
  using V = float32x4_t;
  static constexpr int kLanes = 4;
  static constexpr int kMaxRows = 6;
  // At most 24 accumulators of the 32 registers: 1 x 32, 3 x 16 or 6 x 16 columns.
  static constexpr int ColumnVecs(int rows) { return rows == 1 ? 8 : 4; }
  static V Zero() { return vdupq_n_f32(0.0f); }
  static V Set1(float x) { return vdupq_n_f32(x); }
  static V Load(const float* p) { return vld1q_f32(p); }
  static void Store(float* p, V v) { vst1q_f32(p, v); }
  static V LoadW(const float* p) { return vld1q_f32(p); }
  static V LoadW(const Bf16* p) {
    const uint16x4_t bits = vld1_u16(reinterpret_cast<const uint16_t*>(p));
    return vreinterpretq_f32_u32(vshll_n_u16(bits, 16));
  }
  static V LoadW(const F16* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p))));
  }
  static V Add(V a, V b) { return vaddq_f32(a, b); }
  static V Sub(V a, V b) { return vsubq_f32(a, b); }
  static V Mul(V a, V b) { return vmulq_f32(a, b); }
  static V Div(V a, V b) { return vdivq_f32(a, b); }
  static V Min(V a, V b) { return vminq_f32(a, b); }
  static V Max(V a, V b) { return vmaxq_f32(a, b); }
  static V Fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static V Round(V a) { return vrndnq_f32(a); }
  static V Pow2(V n) {
    const int32x4_t biased = vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(biased, 23));
  }
  static float ReduceAdd(V v) {
    const float32x2_t s2 = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
  }
  static float ReduceMax(V v) { return vmaxvq_f32(v); }
};

#include "kernels/cpu/isa_kernels.inc"
#include "kernels/cpu/isa_kernels_table.inc"

}  // namespace

const IsaKernels* NeonKernels() {
  static const IsaKernels table = MakeIsaKernels<NeonSimd>(CpuIsa::kNeon);
  return &table;
}

}  // namespace sparkstack::kernels

#else  // !__aarch64__

namespace sparkstack::kernels {
const IsaKernels* NeonKernels() { return nullptr; }
}  // namespace sparkstack::kernels

#endif
