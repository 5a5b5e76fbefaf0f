// Host-side float64 reference of the W4A4 GEMM that kPrefillFp4Mma computes, on a HostProblem:
// shared by the start-up self-check and the CUDA tests.
#ifndef SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_REFERENCE_H_
#define SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_REFERENCE_H_

#include <vector>

#include "kernels/nvfp4/host_problem.h"

namespace sparkstack::kernels::nvfp4 {

// The static activation scale a calibration on exactly this x would give: amax(|x|) / (6 * 448)
// (1.0 when x is all zero, so that the scale stays usable).
float CalibratedInputScale(const HostProblem& p);

// y[i * n + r] = sum_c dequant(quant(x))[i][c] * dequant(W)[r][c] in float64, where quant(x) is
// Nvfp4QuantizeActivationReference on the exact bf16 values of x with `input_scale`
// (Nvfp4W4A4GemmReference on the result).
std::vector<double> ReferenceW4A4Gemm(const HostProblem& p, float input_scale);

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_PREFILL_FP4_MMA_REFERENCE_H_
