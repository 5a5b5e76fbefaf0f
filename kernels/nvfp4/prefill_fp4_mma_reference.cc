#include "kernels/nvfp4/prefill_fp4_mma_reference.h"

#include <cmath>
#include <cstdint>

#include "kernels/cpu/nvfp4_reference.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels::nvfp4 {

float CalibratedInputScale(const HostProblem& p) {
  float amax = 0.0f;
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t c = 0; c < p.k; ++c) amax = std::fmax(amax, std::fabs(Bf16ToFloat(p.x[i * p.ldx + c])));
  }
  return amax > 0.0f ? amax / (6.0f * 448.0f) : 1.0f;
}

std::vector<double> ReferenceW4A4Gemm(const HostProblem& p, float input_scale) {
  std::vector<float> xf(static_cast<size_t>(p.m * p.k));
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t c = 0; c < p.k; ++c) xf[i * p.k + c] = Bf16ToFloat(p.x[i * p.ldx + c]);
  }
  std::vector<uint8_t> codes(static_cast<size_t>(p.m * p.k / 2));
  std::vector<uint8_t> scales(static_cast<size_t>(p.m * p.k / 16));
  Nvfp4QuantizeActivationReference(xf.data(), p.m, p.k, p.k, input_scale, codes.data(), p.k / 2,
                                   scales.data(), p.k / 16);
  std::vector<double> y(static_cast<size_t>(p.m * p.n));
  Nvfp4W4A4GemmReference(codes.data(), p.k / 2, scales.data(), p.k / 16, input_scale, p.m, p.k,
                         p.codes.data(), p.ldw, p.scales.data(), p.lds, p.global_scale, p.n,
                         y.data(), p.n);
  return y;
}

}  // namespace sparkstack::kernels::nvfp4
