// Causal multi-head latent attention (DeepSeek MLA, absorbed form) over a paged latent pool on the
// device (Backend::PagedLatentAttention; the batch layout of runtime/backend/attention_metadata.h):
// every query head attends to the same one row per position. Query token i of sequence b (of n)
// sits at position seq_lens[b] - n + i and sees positions [0, that];
//   score(h, s) = scale * q[t, h, :] . row(s)
//   out[t, h, :] = sum_s softmax_s(score(h, s)) * row(s)[value_offset, value_offset + value_width)
// f32 throughout (CUDA cores), online softmax. One kernel serves decode and prefill tokens alike:
// a block takes one query token and up to kLatentHeadsPerBlock of its heads, and walks the
// token's visible rows in tiles staged once in shared memory for all of those heads
// (latent_attention.cuh). Rows are written by LaunchStoreKv (store_kv.h) with v_row 0.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_LATENT_ATTENTION_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_LATENT_ATTENTION_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

struct LatentAttentionArgs {
  const float* q = nullptr;      // [T, heads, width]
  float* out = nullptr;          // [T, heads, value_width]
  const float* cache = nullptr;  // [slots, width] f32 (the pool [blocks, block_size, 1, width])
  int64_t tokens = 0;            // T
  int64_t heads = 0;
  int64_t width = 0;
  int64_t value_offset = 0;
  int64_t value_width = 0;
  int64_t num_seqs = 0;
  int64_t block_size = 0;                // slots per block
  const int32_t* query_start = nullptr;  // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;     // [num_seqs]
  const int32_t* block_table = nullptr;  // [num_seqs, max_blocks]
  int64_t max_blocks = 0;                // row stride of block_table
  float scale = 1.0f;
};

// Widest row (DeepSeek-V3: 512 latent + 64 rope) and value the kernel handles.
inline constexpr int64_t kLatentMaxWidth = 576;
inline constexpr int64_t kLatentMaxValueWidth = 512;
// Query heads of one token that share every row a block stages.
inline constexpr int64_t kLatentHeadsPerBlock = 16;
// Rows per staged tile.
inline constexpr int64_t kLatentKeysPerTile = 16;
inline constexpr int kLatentThreads = 128;

// Dynamic shared memory of the kernel: the query rows of its heads [16][577] and the row tile
// [16][577] (both padded by one float so that rows read at one column fall in distinct banks),
// the tile's probabilities [16][16] and the heads' rescale factors and sums.
constexpr int LatentAttentionSmemBytes() {
  return static_cast<int>(((kLatentHeadsPerBlock + kLatentKeysPerTile) * (kLatentMaxWidth + 1) +
                           kLatentHeadsPerBlock * kLatentKeysPerTile + 2 * kLatentHeadsPerBlock) *
                          4);
}
static_assert(LatentAttentionSmemBytes() <= 101376, "GB10's shared memory per block");

// nullptr when `a` is usable (sizes within the limits above, values inside the row, pointers),
// else the broken rule, naming the shape.
const char* ValidateLatentAttentionArgs(const LatentAttentionArgs& a);

// Enqueues the kernel for every token of the batch (grid tokens x ceil(heads / 16)).
// `smem_limit`: the device's shared memory per block (the launch refuses a kernel above it).
int LaunchPagedLatentAttention(const LatentAttentionArgs& a, int smem_limit, void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_LATENT_ATTENTION_H_
