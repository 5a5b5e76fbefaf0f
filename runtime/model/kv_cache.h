// The paged KV cache of one model shard: for every layer the shard holds, a key pool and a value
// pool of `num_blocks` blocks of `block_size` token slots. Which block belongs to which sequence is
// the engine's business (BlockManager); the model only reads and writes slots through the
// ForwardBatch's block tables and slot mapping.
#ifndef SPARKSTACK_RUNTIME_MODEL_KV_CACHE_H_
#define SPARKSTACK_RUNTIME_MODEL_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/backend.h"
#include "runtime/core/tensor.h"

namespace sparkstack {

// Tokens per KV block (vLLM's default; DESIGN.md).
inline constexpr int64_t kKvBlockSize = 16;

// What one shard needs per token: per layer, kv_heads x head_dim keys and kv_heads x v_head_dim
// values (v_head_dim 0: a single latent pool, as MLA caches).
struct KvCacheSpec {
  int64_t num_layers = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t v_head_dim = 0;
  DType dtype = DType::kF32;

  int64_t BytesPerToken() const;
};

struct KvCache {
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  std::vector<Tensor> k;  // per layer [num_blocks, block_size, kv_heads, head_dim]
  std::vector<Tensor> v;  // per layer [num_blocks, block_size, kv_heads, v_head_dim] (or empty)
};

// Allocates the pools on `backend`. InvalidArgument for non-positive sizes; ResourceExhausted
// (with the bytes asked and available) when the device cannot hold them.
absl::StatusOr<KvCache> AllocateKvCache(Backend& backend, const KvCacheSpec& spec,
                                        int64_t num_blocks, int64_t block_size = kKvBlockSize);

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_KV_CACHE_H_
