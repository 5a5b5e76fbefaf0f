// Float64 reference of LaunchRope (rope.h), computing the angles itself: position p, pair i has
// angle p * inv_freq[i]; rotate-half pairs (i, i + rotary_dim / 2), interleaved pairs (2i, 2i + 1).
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_ROPE_REFERENCE_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_ROPE_REFERENCE_H_

#include <cstdint>
#include <vector>

namespace sparkstack::kernels::cuda_ops {

// x [tokens, heads, head_dim] rotated; inv_freq [rotary_dim / 2].
std::vector<double> ReferenceRope(const std::vector<double>& x, int64_t tokens, int64_t heads,
                                  int64_t head_dim, const std::vector<int32_t>& positions,
                                  const std::vector<double>& inv_freq, int64_t rotary_dim,
                                  bool interleaved);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_ROPE_REFERENCE_H_
