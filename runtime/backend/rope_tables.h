// RopeTables: rotary position embedding as cos/sin tables computed once at load (in float64, then
// rounded), so that a step only looks angles up, and every scaling scheme (llama3, YaRN with its
// attention factor) is only a different table.
#ifndef SPARKSTACK_RUNTIME_BACKEND_ROPE_TABLES_H_
#define SPARKSTACK_RUNTIME_BACKEND_ROPE_TABLES_H_

#include <cstdint>

#include "runtime/core/tensor.h"

namespace sparkstack {

struct RopeTables {
  // f32 [max_positions, rotary_dim / 2] on the backend's device: cos / sin of position p times
  // inverse frequency i (YaRN's attention factor already multiplied in).
  Tensor cos;
  Tensor sin;
  // The first rotary_dim elements of each head rotate (partial rotary: the rest pass through).
  int64_t rotary_dim = 0;
  // false: Hugging Face rotate-half, element i pairs with i + rotary_dim / 2 (Llama, Qwen, GLM,
  // MiniMax); true: adjacent pairs (2i, 2i + 1) (GPT-J style; DeepSeek's rope_interleave).
  bool interleaved = false;

  int64_t max_positions() const { return cos.defined() && cos.rank() == 2 ? cos.dim(0) : 0; }
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_ROPE_TABLES_H_
