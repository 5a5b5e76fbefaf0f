// Float64 reference of the RMSNorm launchers (rms_norm.h), for tests.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_RMS_NORM_REFERENCE_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_RMS_NORM_REFERENCE_H_

#include <cstdint>
#include <vector>

namespace sparkstack::kernels::cuda_ops {

// x [rows, width] -> x / sqrt(mean(x^2) + eps) * weight.
std::vector<double> ReferenceRmsNorm(const std::vector<double>& x, int64_t rows, int64_t width,
                                     const std::vector<double>& weight, double eps);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_RMS_NORM_REFERENCE_H_
