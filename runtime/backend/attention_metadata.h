// AttentionMetadata: where each sequence of a step sits in the batch and in the paged KV cache.
//
// A step's batch holds B sequences; sequence b contributes the query tokens
// [query_start[b], query_start[b + 1]) of the batch, which are its last tokens: with
// n = query_start[b + 1] - query_start[b] and L = seq_lens[b], they sit at positions [L - n, L),
// and the cache holds (after StoreKv) positions [0, L). Position p of sequence b is slot
// block_table[b, p / block_size] * block_size + p % block_size of the KV pool. Decodes (n == 1)
// come first: sequences [0, num_decodes).
//
// The tensors live on the backend's device and are written once per step by the runner; the host
// scalars are what kernel launches need. All indices are int32.
#ifndef SPARKSTACK_RUNTIME_BACKEND_ATTENTION_METADATA_H_
#define SPARKSTACK_RUNTIME_BACKEND_ATTENTION_METADATA_H_

#include <cstdint>

#include "runtime/core/tensor.h"

namespace sparkstack {

struct AttentionMetadata {
  int64_t num_seqs = 0;       // B
  int64_t num_decodes = 0;    // sequences [0, num_decodes) have one query token each
  int64_t num_tokens = 0;     // T == query_start[B]
  int64_t max_query_len = 0;  // max over b of the query length
  int64_t max_seq_len = 0;    // max over b of seq_lens[b]
  int64_t block_size = 0;     // tokens per KV block

  Tensor query_start;   // i32 [B + 1], query_start[0] == 0, non-decreasing
  Tensor seq_lens;      // i32 [B], seq_lens[b] >= query length of b
  Tensor block_table;   // i32 [B, max_blocks_per_seq]; entries past a sequence's blocks unused
  Tensor slot_mapping;  // i32 [T]: the KV pool slot that receives token t's key and value
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_ATTENTION_METADATA_H_
