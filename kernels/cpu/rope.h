// Rotary position embedding from precomputed cos/sin tables (runtime/backend/rope_tables.h).
#ifndef SPARKSTACK_KERNELS_CPU_ROPE_H_
#define SPARKSTACK_KERNELS_CPU_ROPE_H_

#include <cstdint>

namespace sparkstack::kernels {

// x [tokens, heads, head_dim] in place. cos/sin are [max_positions, rotary_dim / 2]; token t uses
// row positions[t]. Pair i (i < rotary_dim / 2) is (i, i + rotary_dim / 2) with rotate-half, or
// (2i, 2i + 1) when interleaved; it turns by the angle whose cos/sin the row holds. Elements from
// rotary_dim on are left as they are.
void RopeF32(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const int32_t* positions,
             const float* cos, const float* sin, int64_t rotary_dim, bool interleaved);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_ROPE_H_
