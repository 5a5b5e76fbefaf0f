// Rotary position embedding from cos/sin tables on the device (Backend::Rope; RopeTables in
// runtime/backend/rope_tables.h): rotates in place the first rotary_dim elements of every head of
// x [tokens, heads, head_dim], token t by position positions[t]. Pairs are (i, i + rotary_dim / 2)
// (rotate-half) or (2i, 2i + 1) (interleaved); a' = a cos - b sin, b' = b cos + a sin, each
// product rounded separately as on the host.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_ROPE_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_ROPE_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

// cos, sin f32 [max_positions, rotary_dim / 2]; positions i32 [tokens], each < max_positions
// (trusted). InvalidValue unless 0 < rotary_dim <= head_dim and rotary_dim is even.
int LaunchRope(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
               const int32_t* positions, const float* cos, const float* sin, int64_t rotary_dim,
               bool interleaved, void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_ROPE_H_
