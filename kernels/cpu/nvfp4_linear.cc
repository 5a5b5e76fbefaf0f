#include "kernels/cpu/nvfp4_linear.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/dense_linear.h"
#include "kernels/cpu/parallel_columns.h"
#include "runtime/core/float8.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SPARKSTACK_NVFP4_X86 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace sparkstack::kernels {
namespace {

constexpr int64_t kBlock = 16;

// All 256 E4M3 values, so decoding a scale is one load.
struct E4M3Table {
  float values[256];
  E4M3Table() {
    for (int i = 0; i < 256; ++i) values[i] = E4M3ToFloat(static_cast<uint8_t>(i));
  }
};
const E4M3Table& ScaleTable() {
  static const E4M3Table table;
  return table;
}

// Decodes row `r` of W into `row` as e2m1 * block_scale (exact in f32: 2 + 4 significant bits).
void DecodeRowScalar(const uint8_t* codes, const uint8_t* scales, int64_t k, float* row) {
  const float* table = ScaleTable().values;
  for (int64_t b = 0; b < k / kBlock; ++b) {
    const float s = table[scales[b]];
    const uint8_t* bytes = codes + b * (kBlock / 2);
    float* out = row + b * kBlock;
    for (int i = 0; i < kBlock / 2; ++i) {
      out[2 * i] = kE2M1Values[bytes[i] & 0xf] * s;
      out[2 * i + 1] = kE2M1Values[bytes[i] >> 4] * s;
    }
  }
}

// The scalar and NEON paths decode a weight row in chunks of kDecodeChunk elements into a stack
// buffer and accumulate the dot products of up to kRowGroup x rows over each chunk, carrying the
// partial sums across chunks (the chunk is a multiple of the partials' stride, so the summation
// order is that of one dot product over the whole row). No heap memory.
constexpr int64_t kDecodeChunk = 2048;
constexpr int64_t kRowGroup = 8;

void ColumnsScalar(const float* x, int64_t m, int64_t k, const uint8_t* codes,
                   const uint8_t* scales, float global_scale, int64_t n, int64_t n_begin,
                   int64_t n_end, float* y) {
  float chunk[kDecodeChunk];
  for (int64_t r = n_begin; r < n_end; ++r) {
    const uint8_t* row_codes = codes + r * (k / 2);
    const uint8_t* row_scales = scales + r * (k / kBlock);
    for (int64_t i0 = 0; i0 < m; i0 += kRowGroup) {
      const int64_t rows = std::min(kRowGroup, m - i0);
      float partial[kRowGroup][8] = {};
      for (int64_t c0 = 0; c0 < k; c0 += kDecodeChunk) {
        const int64_t width = std::min(kDecodeChunk, k - c0);
        DecodeRowScalar(row_codes + c0 / 2, row_scales + c0 / kBlock, width, chunk);
        for (int64_t i = 0; i < rows; ++i) {
          const float* xi = x + (i0 + i) * k + c0;
          for (int64_t c = 0; c < width; c += 8) {
            for (int j = 0; j < 8; ++j) partial[i][j] += xi[c + j] * chunk[c + j];
          }
        }
      }
      for (int64_t i = 0; i < rows; ++i) {
        const float* p = partial[i];
        const float sum = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
        y[(i0 + i) * n + r] = sum * global_scale;
      }
    }
  }
}

#if SPARKSTACK_NVFP4_X86
// 2 * e2m1 magnitude as signed bytes, indexed by code: exact integers, halved via the scale.
__attribute__((target("avx2,fma"))) inline __m128i TwiceE2M1Lut() {
  return _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
}

__attribute__((target("avx2,fma"))) float HorizontalSum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

// Decodes block `b` of a row into twice its e2m1 values (exact small integers), in element order.
__attribute__((target("avx2,fma"))) inline void DecodeBlockAvx2(const uint8_t* codes, __m128i lut,
                                                                __m256* v0, __m256* v1) {
  const __m128i low_mask = _mm_set1_epi8(0x0f);
  const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes));
  const __m128i lo = _mm_and_si128(bytes, low_mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_mask);
  const __m128i twice = _mm_shuffle_epi8(lut, _mm_unpacklo_epi8(lo, hi));
  *v0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(twice));
  *v1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(twice, 8)));
}

// Up to four x rows at a time, weights decoded in registers block by block (no scratch row): each
// block's partial dot product is scaled by its block scale, and the global scale is applied at the
// end. Decoding is repeated per group of four x rows, which costs little next to the loads for the
// M <= 16 decode shapes this path is for. k is a multiple of 16: no tails.
template <int kRows>
__attribute__((target("avx2,fma"))) void RowGroupAvx2(const float* x, int64_t k,
                                                      const uint8_t* codes, const uint8_t* scales,
                                                      float global_scale, int64_t n, int64_t r,
                                                      float* y) {
  const float* table = ScaleTable().values;
  const __m128i lut = TwiceE2M1Lut();
  __m256 acc[kRows];
  for (int i = 0; i < kRows; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / kBlock; ++b) {
    __m256 v0, v1;
    DecodeBlockAvx2(codes + b * 8, lut, &v0, &v1);
    const __m256 s = _mm256_set1_ps(table[scales[b]] * 0.5f);  // exact: power-of-two factor
    const int64_t c = b * kBlock;
    for (int i = 0; i < kRows; ++i) {
      const float* xi = x + i * k + c;
      const __m256 partial =
          _mm256_fmadd_ps(_mm256_loadu_ps(xi), v0, _mm256_mul_ps(_mm256_loadu_ps(xi + 8), v1));
      acc[i] = _mm256_fmadd_ps(partial, s, acc[i]);
    }
  }
  for (int i = 0; i < kRows; ++i) y[i * n + r] = HorizontalSum(acc[i]) * global_scale;
}

__attribute__((target("avx2,fma"))) void ColumnsAvx2(const float* x, int64_t m, int64_t k,
                                                     const uint8_t* codes, const uint8_t* scales,
                                                     float global_scale, int64_t n, int64_t n_begin,
                                                     int64_t n_end, float* y) {
  for (int64_t r = n_begin; r < n_end; ++r) {
    const uint8_t* row_codes = codes + r * (k / 2);
    const uint8_t* row_scales = scales + r * (k / kBlock);
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
      RowGroupAvx2<4>(x + i * k, k, row_codes, row_scales, global_scale, n, r, y + i * n);
    }
    switch (m - i) {
      case 3:
        RowGroupAvx2<3>(x + i * k, k, row_codes, row_scales, global_scale, n, r, y + i * n);
        break;
      case 2:
        RowGroupAvx2<2>(x + i * k, k, row_codes, row_scales, global_scale, n, r, y + i * n);
        break;
      case 1:
        RowGroupAvx2<1>(x + i * k, k, row_codes, row_scales, global_scale, n, r, y + i * n);
        break;
      default:
        break;
    }
  }
}

bool CpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif  // SPARKSTACK_NVFP4_X86

#if defined(__aarch64__)
void DecodeRowNeon(const uint8_t* codes, const uint8_t* scales, int64_t k, float* row) {
  const float* table = ScaleTable().values;
  static const int8_t kTwice[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  const int8x16_t lut = vld1q_s8(kTwice);
  for (int64_t b = 0; b < k / kBlock; ++b) {
    const uint8x8_t bytes = vld1_u8(codes + b * 8);
    const uint8x8_t lo = vand_u8(bytes, vdup_n_u8(0x0f));
    const uint8x8_t hi = vshr_n_u8(bytes, 4);
    const uint8x8x2_t zipped = vzip_u8(lo, hi);
    const uint8x16_t ordered = vcombine_u8(zipped.val[0], zipped.val[1]);
    const int8x16_t twice = vqtbl1q_s8(lut, ordered);
    const int16x8_t h0 = vmovl_s8(vget_low_s8(twice));
    const int16x8_t h1 = vmovl_s8(vget_high_s8(twice));
    const float32x4_t s = vdupq_n_f32(table[scales[b]] * 0.5f);
    float* out = row + b * kBlock;
    vst1q_f32(out, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(h0))), s));
    vst1q_f32(out + 4, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(h0))), s));
    vst1q_f32(out + 8, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(h1))), s));
    vst1q_f32(out + 12, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(h1))), s));
  }
}

void ColumnsNeon(const float* x, int64_t m, int64_t k, const uint8_t* codes, const uint8_t* scales,
                 float global_scale, int64_t n, int64_t n_begin, int64_t n_end, float* y) {
  float chunk[kDecodeChunk];
  for (int64_t r = n_begin; r < n_end; ++r) {
    const uint8_t* row_codes = codes + r * (k / 2);
    const uint8_t* row_scales = scales + r * (k / kBlock);
    for (int64_t i0 = 0; i0 < m; i0 += kRowGroup) {
      const int64_t rows = std::min(kRowGroup, m - i0);
      float32x4_t acc[kRowGroup][4];
      for (auto& row_acc : acc) {
        for (float32x4_t& a : row_acc) a = vdupq_n_f32(0);
      }
      for (int64_t c0 = 0; c0 < k; c0 += kDecodeChunk) {
        const int64_t width = std::min(kDecodeChunk, k - c0);
        DecodeRowNeon(row_codes + c0 / 2, row_scales + c0 / kBlock, width, chunk);
        for (int64_t i = 0; i < rows; ++i) {
          const float* xi = x + (i0 + i) * k + c0;
          for (int64_t c = 0; c < width; c += 16) {
            for (int j = 0; j < 4; ++j) {
              acc[i][j] =
                  vfmaq_f32(acc[i][j], vld1q_f32(xi + c + 4 * j), vld1q_f32(chunk + c + 4 * j));
            }
          }
        }
      }
      for (int64_t i = 0; i < rows; ++i) {
        const float32x4_t sum =
            vaddq_f32(vaddq_f32(acc[i][0], acc[i][1]), vaddq_f32(acc[i][2], acc[i][3]));
        y[(i0 + i) * n + r] = vaddvq_f32(sum) * global_scale;
      }
    }
  }
}
#endif  // __aarch64__

using ColumnsFn = void (*)(const float*, int64_t, int64_t, const uint8_t*, const uint8_t*, float,
                           int64_t, int64_t, int64_t, float*);

ColumnsFn ColumnsFor(Nvfp4CpuPath path) {
  switch (path) {
    case Nvfp4CpuPath::kScalar:
      return ColumnsScalar;
    case Nvfp4CpuPath::kAvx2:
#if SPARKSTACK_NVFP4_X86
      if (CpuHasAvx2()) return ColumnsAvx2;
#endif
      return nullptr;
    case Nvfp4CpuPath::kNeon:
#if defined(__aarch64__)
      return ColumnsNeon;
#else
      return nullptr;
#endif
  }
  return nullptr;
}

}  // namespace

Nvfp4CpuPath BestNvfp4CpuPath() {
  if (ColumnsFor(Nvfp4CpuPath::kAvx2) != nullptr) return Nvfp4CpuPath::kAvx2;
  if (ColumnsFor(Nvfp4CpuPath::kNeon) != nullptr) return Nvfp4CpuPath::kNeon;
  return Nvfp4CpuPath::kScalar;
}

const char* Nvfp4CpuPathName(Nvfp4CpuPath path) {
  switch (path) {
    case Nvfp4CpuPath::kScalar:
      return "scalar";
    case Nvfp4CpuPath::kAvx2:
      return "avx2";
    case Nvfp4CpuPath::kNeon:
      return "neon";
  }
  return "unknown";
}

bool Nvfp4LinearF32WithPath(Nvfp4CpuPath path, const float* x, int64_t m, int64_t k,
                            const uint8_t* codes, const uint8_t* block_scales, float global_scale,
                            int64_t n, float* y) {
  const ColumnsFn fn = ColumnsFor(path);
  if (fn == nullptr) return false;
  fn(x, m, k, codes, block_scales, global_scale, n, 0, n, y);
  return true;
}

void Nvfp4LinearF32(const float* x, int64_t m, int64_t k, const uint8_t* codes,
                    const uint8_t* block_scales, float global_scale, int64_t n, float* y,
                    ThreadPool& pool, Nvfp4CpuPath path) {
  const ColumnsFn fn = ColumnsFor(path);
  if (fn == nullptr) return;
  ParallelRanges(pool, n, m * n * k, [&](int64_t begin, int64_t end) {
    fn(x, m, k, codes, block_scales, global_scale, n, begin, end, y);
  });
}

void Nvfp4LinearF32(const float* x, int64_t m, int64_t k, const uint8_t* codes,
                    const uint8_t* block_scales, float global_scale, int64_t n, float* y,
                    int threads) {
  static const ColumnsFn fn = ColumnsFor(BestNvfp4CpuPath());
  ForEachColumnRange(n, m * n * k, threads, [&](int64_t begin, int64_t end) {
    fn(x, m, k, codes, block_scales, global_scale, n, begin, end, y);
  });
}

}  // namespace sparkstack::kernels
