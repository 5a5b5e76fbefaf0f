// The AVX2 kernels: isa_kernels.inc over 8-float vectors, compiled for AVX2 + FMA + F16C by a
// target pragma (not by build flags) and called only when cpuid reports them (cpu_isa.cc).
#include "kernels/cpu/isa_kernels.h"

#if defined(__x86_64__)
// GCC 12 reports the intrinsics' deliberately undefined pass-through operands (`__Y = __Y`).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/cpu/simd_types.h"
#include "runtime/core/half.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace sparkstack::kernels {
namespace {

struct Avx2Simd {
  using V = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kMaxRows = 6;
  // At most 12 accumulators of the 16 registers: 1 x 64, 3 x 32 or 6 x 16 columns.
  static constexpr int ColumnVecs(int rows) { return rows == 1 ? 8 : rows <= 3 ? 4 : 2; }
  static V Zero() { return _mm256_setzero_ps(); }
  static V Set1(float x) { return _mm256_set1_ps(x); }
  static V Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V LoadW(const float* p) { return _mm256_loadu_ps(p); }
  static V LoadW(const Bf16* p) {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
  static V LoadW(const F16* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static V Add(V a, V b) { return _mm256_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V Div(V a, V b) { return _mm256_div_ps(a, b); }
  static V Min(V a, V b) { return _mm256_min_ps(a, b); }
  static V Max(V a, V b) { return _mm256_max_ps(a, b); }
  static V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V Round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V Pow2(V n) {
    const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23));
  }
  static float ReduceAdd(V v) {
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
  static float ReduceMax(V v) {
    const __m128 s4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_max_ss(s2, _mm_movehdup_ps(s2)));
  }
};

#include "kernels/cpu/isa_kernels.inc"

}  // namespace
}  // namespace sparkstack::kernels

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace sparkstack::kernels {
namespace {
#include "kernels/cpu/isa_kernels_table.inc"
}  // namespace

const IsaKernels* Avx2Kernels() {
  static const IsaKernels table = MakeIsaKernels<Avx2Simd>(CpuIsa::kAvx2);
  return &table;
}

}  // namespace sparkstack::kernels

#else  // !__x86_64__

namespace sparkstack::kernels {
const IsaKernels* Avx2Kernels() { return nullptr; }
}  // namespace sparkstack::kernels

#endif
