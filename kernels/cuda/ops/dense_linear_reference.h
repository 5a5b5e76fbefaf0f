// Float64 reference of the dense linear launchers (dense_linear.h), for tests.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_DENSE_LINEAR_REFERENCE_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_DENSE_LINEAR_REFERENCE_H_

#include <cstdint>
#include <vector>

namespace sparkstack::kernels::cuda_ops {

// y [m, n] = x [m, k] . w [n, k]^T.
std::vector<double> ReferenceLinear(const std::vector<double>& x, const std::vector<double>& w,
                                    int64_t m, int64_t n, int64_t k);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_DENSE_LINEAR_REFERENCE_H_
