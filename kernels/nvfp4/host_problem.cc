#include "kernels/nvfp4/host_problem.h"

#include <cmath>
#include <limits>
#include <random>

#include "kernels/cpu/nvfp4_reference.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels::nvfp4 {

HostProblem MakeRandomProblem(int64_t m, int64_t n, int64_t k, uint32_t seed, int64_t ldw_pad,
                              int64_t ldx_pad) {
  HostProblem p;
  p.m = m;
  p.n = n;
  p.k = k;
  p.ldx = k + ldx_pad;
  p.ldw = k / 2 + ldw_pad;
  p.lds = k / 16 + ldw_pad;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  p.x.assign(static_cast<size_t>(m * p.ldx), FloatToBf16(std::numeric_limits<float>::quiet_NaN()));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t c = 0; c < k; ++c) p.x[i * p.ldx + c] = FloatToBf16(unit(rng));
  }
  p.codes.assign(static_cast<size_t>(n * p.ldw), 0xff);
  p.scales.assign(static_cast<size_t>(n * p.lds), 0xff);
  std::uniform_int_distribution<int> byte(0, 255);
  // E4M3 bytes 0x18 (2^-6) .. 0x58 (2^4), sign bit clear: finite, normal, varied mantissas.
  std::uniform_int_distribution<int> scale_byte(0x18, 0x58);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k / 2; ++c) p.codes[r * p.ldw + c] = static_cast<uint8_t>(byte(rng));
    for (int64_t b = 0; b < k / 16; ++b) {
      p.scales[r * p.lds + b] = static_cast<uint8_t>(scale_byte(rng));
    }
  }
  std::uniform_real_distribution<float> factor(0.5f, 2.0f);
  p.global_scale = factor(rng) / (6.0f * 448.0f);
  return p;
}

std::vector<double> ReferenceGemm(const HostProblem& p) {
  std::vector<float> xf(static_cast<size_t>(p.m * p.k));
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t c = 0; c < p.k; ++c) xf[i * p.k + c] = Bf16ToFloat(p.x[i * p.ldx + c]);
  }
  std::vector<double> y(static_cast<size_t>(p.m * p.n));
  kernels::Nvfp4GemmReference(xf.data(), p.m, p.k, p.k, p.codes.data(), p.ldw, p.scales.data(),
                              p.lds, p.global_scale, p.n, y.data(), p.n);
  return y;
}

GemmArgs ArgsFor(const HostProblem& p, const void* x, const void* codes, const void* scales,
                 void* y, int64_t ldy, OutType out_type, float input_scale) {
  GemmArgs a;
  a.x = x;
  a.ldx = p.ldx;
  a.codes = static_cast<const uint8_t*>(codes);
  a.ldw = p.ldw;
  a.scales = static_cast<const uint8_t*>(scales);
  a.lds = p.lds;
  a.global_scale = p.global_scale;
  a.y = y;
  a.ldy = ldy;
  a.out_type = out_type;
  a.m = p.m;
  a.n = p.n;
  a.k = p.k;
  a.input_scale = input_scale;
  return a;
}

}  // namespace sparkstack::kernels::nvfp4
