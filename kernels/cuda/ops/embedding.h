// Vocabulary-parallel embedding lookup on the device (Backend::Embedding): out[t, :] = table[ids[t]
// - first_id, :] as f32 when this shard's table holds the id, zeros otherwise.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_EMBEDDING_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_EMBEDDING_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

// table [rows, hidden] of `type`, ids i32 [tokens], out f32 [tokens, hidden] (types.h for the
// rules). InvalidValue for negative sizes or null pointers with work to do.
int LaunchEmbedding(const void* table, ElemType type, int64_t rows, int64_t hidden,
                    const int32_t* ids, int64_t tokens, int64_t first_id, float* out,
                    void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_EMBEDDING_H_
