// Random NVFP4 GEMM problems on the host, with their float64 reference result: shared by the
// start-up self-check, the CUDA unit tests and the benchmark.
#ifndef SPARKSTACK_KERNELS_NVFP4_HOST_PROBLEM_H_
#define SPARKSTACK_KERNELS_NVFP4_HOST_PROBLEM_H_

#include <cstdint>
#include <vector>

#include "kernels/nvfp4/launch_config.h"

namespace sparkstack::kernels::nvfp4 {

struct HostProblem {
  int64_t m = 0, n = 0, k = 0;
  int64_t ldx = 0;  // elements
  int64_t ldw = 0;  // bytes of codes per row
  int64_t lds = 0;  // bytes of scales per row
  std::vector<uint16_t> x;      // bf16 bits [m, ldx]
  std::vector<uint8_t> codes;   // [n, ldw]
  std::vector<uint8_t> scales;  // [n, lds]
  float global_scale = 0.0f;
};

// x uniform in [-1, 1) rounded to bf16; every code byte uniform (all 16 codes, -0 included);
// block scales random finite E4M3 values in [2^-6, 2^4] (never NaN); global scale 1/(6*448)
// times a random factor in [0.5, 2). Row strides are padded by `ldw_pad` / `ldx_pad` (padding
// filled with garbage that a correct kernel never reads: 0xff codes/scales, NaN x).
HostProblem MakeRandomProblem(int64_t m, int64_t n, int64_t k, uint32_t seed, int64_t ldw_pad = 0,
                              int64_t ldx_pad = 0);

// y[i * n + r] = sum_c x[i][c] * dequant(W)[r][c] in float64 (Nvfp4GemmReference on the exact
// bf16 values of x).
std::vector<double> ReferenceGemm(const HostProblem& p);

// Launch arguments for `p` with its operands already on the device at x, codes, scales and the
// output y [m, ldy]. input_scale matters only to the W4A4 variant.
GemmArgs ArgsFor(const HostProblem& p, const void* x, const void* codes, const void* scales,
                 void* y, int64_t ldy, OutType out_type, float input_scale = 0.0f);

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_HOST_PROBLEM_H_
