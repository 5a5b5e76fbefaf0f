// The AVX-512 kernels: isa_kernels.inc over 16-float vectors, compiled for AVX-512F by a target
// pragma (not by build flags) and called only when cpuid reports AVX-512F (cpu_isa.cc).
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
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")
#endif

namespace sparkstack::kernels {
namespace {

struct Avx512Simd {
  using V = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kMaxRows = 6;
  // 6 x 64 tile: 24 accumulators + 4 weight vectors + 1 broadcast of the 32 registers.
  static constexpr int ColumnVecs(int rows) { return 4; }
  static V Zero() { return _mm512_setzero_ps(); }
  static V Set1(float x) { return _mm512_set1_ps(x); }
  static V Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V LoadW(const float* p) { return _mm512_loadu_ps(p); }
  static V LoadW(const Bf16* p) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
  }
  static V LoadW(const F16* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static V Add(V a, V b) { return _mm512_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V Div(V a, V b) { return _mm512_div_ps(a, b); }
  static V Min(V a, V b) { return _mm512_min_ps(a, b); }
  static V Max(V a, V b) { return _mm512_max_ps(a, b); }
  static V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V Round(V a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static V Pow2(V n) {
    const __m512i biased = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(biased, 23));
  }
  static float ReduceAdd(V v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 s8 = _mm256_add_ps(lo, hi);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
  static float ReduceMax(V v) { return _mm512_reduce_max_ps(v); }
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

const IsaKernels* Avx512Kernels() {
  static const IsaKernels table = MakeIsaKernels<Avx512Simd>(CpuIsa::kAvx512);
  return &table;
}

}  // namespace sparkstack::kernels

#else  // !__x86_64__

namespace sparkstack::kernels {
const IsaKernels* Avx512Kernels() { return nullptr; }
}  // namespace sparkstack::kernels

#endif
