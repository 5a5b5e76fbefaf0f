#include "kernels/cpu/nvfp4_reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/core/float8.h"

namespace sparkstack::kernels {
namespace {

constexpr int64_t kBlock = 16;

// Exact value of element (r, c) in float64 (e2m1 * e4m3 * f32 has at most 2 + 4 + 24 significant
// bits, so the product is exact in double).
double DequantElement(const uint8_t* codes, int64_t ldc, const uint8_t* block_scales, int64_t lds,
                      double global_scale, int64_t r, int64_t c) {
  const uint8_t byte = codes[r * ldc + c / 2];
  const uint8_t code = (c % 2 == 0) ? (byte & 0xf) : (byte >> 4);
  const double scale = E4M3ToFloat(block_scales[r * lds + c / kBlock]);
  return static_cast<double>(kE2M1Values[code]) * scale * global_scale;
}

void SetCode(uint8_t* row, int64_t c, uint8_t code) {
  uint8_t& byte = row[c / 2];
  if (c % 2 == 0) {
    byte = static_cast<uint8_t>((byte & 0xf0) | code);
  } else {
    byte = static_cast<uint8_t>((byte & 0x0f) | (code << 4));
  }
}

}  // namespace

void Nvfp4DequantizeReference(const uint8_t* codes, int64_t ldc, const uint8_t* block_scales,
                              int64_t lds, float global_scale, int64_t n, int64_t k, float* out,
                              int64_t ldo) {
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      out[r * ldo + c] =
          static_cast<float>(DequantElement(codes, ldc, block_scales, lds, global_scale, r, c));
    }
  }
}

void Nvfp4QuantizeWeightReference(const float* w, int64_t n, int64_t k, int64_t ldw,
                                  uint8_t* codes, int64_t ldc, uint8_t* block_scales, int64_t lds,
                                  float* global_scale) {
  double amax = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(double{w[r * ldw + c]}));
  }
  const float global = static_cast<float>(amax / (6.0 * 448.0));
  *global_scale = global;
  for (int64_t r = 0; r < n; ++r) {
    uint8_t* code_row = codes + r * ldc;
    for (int64_t b = 0; b < k / kBlock; ++b) {
      const float* block = w + r * ldw + b * kBlock;
      double block_amax = 0.0;
      for (int64_t i = 0; i < kBlock; ++i) block_amax = std::max(block_amax, std::fabs(double{block[i]}));
      uint8_t scale_bits;
      if (block_amax == 0.0 || global == 0.0f) {
        scale_bits = ToE4M3(1.0);
      } else {
        const double s = block_amax / (6.0 * double{global});
        scale_bits = ToE4M3(std::clamp(s, 1.0 / 512.0, 448.0));
      }
      block_scales[r * lds + b] = scale_bits;
      const double divisor = double{E4M3ToFloat(scale_bits)} * double{global};
      for (int64_t i = 0; i < kBlock; ++i) {
        const uint8_t code = divisor == 0.0 ? 0 : ToE2M1(double{block[i]} / divisor);
        SetCode(code_row, b * kBlock + i, code);
      }
    }
  }
}

void Nvfp4GemmReference(const float* x, int64_t m, int64_t k, int64_t ldx, const uint8_t* codes,
                        int64_t ldc, const uint8_t* block_scales, int64_t lds, float global_scale,
                        int64_t n, double* y, int64_t ldy) {
  std::vector<double> row(k);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      row[c] = DequantElement(codes, ldc, block_scales, lds, global_scale, r, c);
    }
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int64_t c = 0; c < k; ++c) sum += double{x[i * ldx + c]} * row[c];
      y[i * ldy + r] = sum;
    }
  }
}

void Nvfp4QuantizeActivationReference(const float* x, int64_t m, int64_t k, int64_t ldx,
                                      float input_scale, uint8_t* codes, int64_t ldc,
                                      uint8_t* block_scales, int64_t lds) {
  const double inv = 1.0 / double{input_scale};  // S
  for (int64_t r = 0; r < m; ++r) {
    uint8_t* code_row = codes + r * ldc;
    for (int64_t b = 0; b < k / kBlock; ++b) {
      const float* block = x + r * ldx + b * kBlock;
      double block_amax = 0.0;
      for (int64_t i = 0; i < kBlock; ++i) block_amax = std::max(block_amax, std::fabs(double{block[i]}));
      const uint8_t scale_bits = ToE4M3(inv * block_amax / 6.0);
      block_scales[r * lds + b] = scale_bits;
      const double scale = E4M3ToFloat(scale_bits);
      for (int64_t i = 0; i < kBlock; ++i) {
        const double v = scale == 0.0 ? double{block[i]} * 0.0 : double{block[i]} / (scale / inv);
        SetCode(code_row, b * kBlock + i, ToE2M1(v));
      }
    }
  }
}

void Nvfp4W4A4GemmReference(const uint8_t* a_codes, int64_t lda_c, const uint8_t* a_scales,
                            int64_t lda_s, float input_scale, int64_t m, int64_t k,
                            const uint8_t* w_codes, int64_t ldw_c, const uint8_t* w_scales,
                            int64_t ldw_s, float weight_global_scale, int64_t n, double* y,
                            int64_t ldy) {
  std::vector<double> a(m * k);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t c = 0; c < k; ++c) {
      a[i * k + c] = DequantElement(a_codes, lda_c, a_scales, lda_s, input_scale, i, c);
    }
  }
  std::vector<double> row(k);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      row[c] = DequantElement(w_codes, ldw_c, w_scales, ldw_s, weight_global_scale, r, c);
    }
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int64_t c = 0; c < k; ++c) sum += a[i * k + c] * row[c];
      y[i * ldy + r] = sum;
    }
  }
}

}  // namespace sparkstack::kernels
