// Float64 references of the element-wise and row-copy launchers (elementwise.h, copy_rows.h).
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_ELEMENTWISE_REFERENCE_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_ELEMENTWISE_REFERENCE_H_

#include <cstdint>
#include <vector>

namespace sparkstack::kernels::cuda_ops {

// silu(gate) * up = gate / (1 + e^-gate) * up.
std::vector<double> ReferenceSwiGlu(const std::vector<double>& gate, const std::vector<double>& up);

// out[r, :] = x[rows[r], :] for x [*, width].
std::vector<double> ReferenceGatherRows(const std::vector<double>& x, int64_t width,
                                        const std::vector<int32_t>& rows);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_ELEMENTWISE_REFERENCE_H_
