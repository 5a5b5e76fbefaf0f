// SwiGLU activation: out = silu(gate) * up, silu(x) = x / (1 + exp(-x)). out may alias gate.
#ifndef SPARKSTACK_KERNELS_CPU_SWIGLU_H_
#define SPARKSTACK_KERNELS_CPU_SWIGLU_H_

#include <cmath>
#include <cstdint>

namespace sparkstack::kernels {

inline void SwiGluF32(const float* gate, const float* up, int64_t count, float* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_SWIGLU_H_
