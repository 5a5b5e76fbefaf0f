#include "runtime/model/kv_cache.h"

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"

namespace sparkstack {

int64_t KvCacheSpec::BytesPerToken() const {
  const int64_t values = num_layers * kv_heads * (head_dim + v_head_dim);
  return static_cast<int64_t>(DTypeByteSize(dtype, values));
}

absl::StatusOr<KvCache> AllocateKvCache(Backend& backend, const KvCacheSpec& spec,
                                        int64_t num_blocks, int64_t block_size) {
  if (num_blocks <= 0 || block_size <= 0 || spec.kv_heads <= 0 || spec.head_dim <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kv cache of ", num_blocks, " blocks of ", block_size, " tokens, ", spec.kv_heads,
        " kv heads of width ", spec.head_dim, ": every size must be positive"));
  }
  const int64_t bytes = spec.BytesPerToken() * num_blocks * block_size;
  if (bytes > backend.AvailableMemory()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "kv cache of ", num_blocks, " blocks needs ", bytes, " bytes; ", std::string(backend.name()),
        " has ", backend.AvailableMemory(), " available"));
  }
  KvCache cache;
  cache.num_blocks = num_blocks;
  cache.block_size = block_size;
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    SPARKSTACK_ASSIGN_OR_RETURN(
        Tensor k, backend.Allocate(spec.dtype, {num_blocks, block_size, spec.kv_heads, spec.head_dim}));
    cache.k.push_back(std::move(k));
    if (spec.v_head_dim > 0) {
      SPARKSTACK_ASSIGN_OR_RETURN(Tensor v, backend.Allocate(spec.dtype, {num_blocks, block_size,
                                                                          spec.kv_heads,
                                                                          spec.v_head_dim}));
      cache.v.push_back(std::move(v));
    }
  }
  return cache;
}

}  // namespace sparkstack
