// Rotary position embedding, Hugging Face rotate-half convention: within each head, element i
// pairs with element i + head_dim/2 and the pair turns by angle position * inv_freq[i].
#ifndef SPARKSTACK_KERNELS_CPU_ROPE_H_
#define SPARKSTACK_KERNELS_CPU_ROPE_H_

#include <cstdint>

namespace sparkstack::kernels {

// x [tokens, heads, head_dim] in place; inv_freq has head_dim / 2 entries.
void RopeRotateHalfF32(float* x, int64_t tokens, int64_t heads, int64_t head_dim,
                       const int32_t* positions, const float* inv_freq);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_ROPE_H_
