// Causal grouped-query attention over the paged KV cache on the device (Backend::PagedAttention;
// the batch layout of runtime/backend/attention_metadata.h): query token i of sequence b (of n)
// sits at position seq_lens[b] - n + i and attends to cache positions [0, that]; query head h
// reads kv head h / (heads / kv_heads); scores are q.k * scale; softmax in f32.
//
// Two kernels:
//   decode   (LaunchPagedAttentionDecode) for the sequences [0, num_decodes), one query token each:
//            CUDA cores, f32 throughout. A sequence of L keys is split into
//            DecodeSplits(L) <= kDecodeMaxSplits parts of DecodeSplitLength(L) keys, each part a
//            thread block; a second kernel combines the parts' (max, sum, weighted values). The
//            split depends only on the sequence's own length, so its result does not depend on
//            the rest of the batch.
//   prefill  (LaunchPagedAttentionPrefill) for the sequences [first_seq, num_seqs): flash-style on
//            mma.sync m16n8k16 bf16 tensor cores (q, k, v and the probabilities rounded to bf16,
//            scores and the output accumulated in f32), 64 queries per block, within 99 KiB of
//            shared memory.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

struct PagedAttentionArgs {
  const float* q = nullptr;  // [T, heads, head_dim]
  float* out = nullptr;      // [T, heads, v_head_dim]
  int64_t heads = 0;
  int64_t kv_heads = 0;  // divides heads
  int64_t head_dim = 0;
  int64_t v_head_dim = 0;
  const void* k_cache = nullptr;  // [slots, kv_heads, head_dim] of cache_type
  const void* v_cache = nullptr;  // [slots, kv_heads, v_head_dim]
  ElemType cache_type = ElemType::kF32;
  int64_t block_size = 0;                // slots per KV block
  const int32_t* query_start = nullptr;  // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;     // [num_seqs]
  const int32_t* block_table = nullptr;  // [num_seqs, max_blocks]
  int64_t max_blocks = 0;                // row stride of block_table
  float scale = 1.0f;
};

// Largest head_dim / v_head_dim the kernels handle.
inline constexpr int64_t kAttentionMaxHeadDim = 256;
// Query heads a decode block handles together (larger GQA groups take several blocks).
inline constexpr int64_t kDecodeHeadsPerBlock = 8;
inline constexpr int64_t kDecodeMaxSplits = 16;
inline constexpr int64_t kDecodeMinSplitLength = 256;

// Keys per split of a sequence of `len` keys: kDecodeMinSplitLength, or more (a multiple of 32)
// so that at most kDecodeMaxSplits splits cover it.
constexpr int64_t DecodeSplitLength(int64_t len) {
  const int64_t even = (len + kDecodeMaxSplits - 1) / kDecodeMaxSplits;
  const int64_t rounded = (even + 31) / 32 * 32;
  return rounded > kDecodeMinSplitLength ? rounded : kDecodeMinSplitLength;
}
constexpr int64_t DecodeSplits(int64_t len) {
  return len <= 0 ? 0 : (len + DecodeSplitLength(len) - 1) / DecodeSplitLength(len);
}

// f32 elements of scratch the decode kernel needs for `num_decodes` tokens when sequences may be
// `max_context` keys long (0 when no sequence needs more than one split).
constexpr int64_t DecodeScratchFloats(int64_t num_decodes, int64_t heads, int64_t v_head_dim,
                                      int64_t max_context) {
  const int64_t splits = max_context <= 0 ? 1 : DecodeSplits(max_context);
  return splits <= 1 ? 0 : num_decodes * heads * splits * (v_head_dim + 2);
}

// nullptr when `a` is usable (sizes, divisibility, head dims <= kAttentionMaxHeadDim, pointers),
// else the broken rule.
const char* ValidatePagedAttentionArgs(const PagedAttentionArgs& a);

// Decode sequences [0, num_decodes). `max_context` bounds every seq_lens[b] of them (the grid is
// sized from it, so a graph captured with the pool's capacity serves every later step);
// `scratch` holds DecodeScratchFloats(num_decodes, heads, v_head_dim, max_context) floats.
int LaunchPagedAttentionDecode(const PagedAttentionArgs& a, int64_t num_decodes,
                               int64_t max_context, float* scratch, void* stream);

// Sequences [first_seq, num_seqs) with up to max_query_len query tokens each (the grid covers
// (num_seqs - first_seq) x ceil(max_query_len / 64) query tiles; tiles past a sequence's tokens
// exit at once).
int LaunchPagedAttentionPrefill(const PagedAttentionArgs& a, int64_t first_seq, int64_t num_seqs,
                                int64_t max_query_len, int smem_limit, void* stream);

// The prefill kernel's tile: 64 queries, and keys per tile by padded head dimension.
constexpr int PrefillKeysPerTile(int padded_dim) { return padded_dim > 128 ? 32 : 64; }
// Padded head dimension of the prefill kernel instance serving `head_dim`.
constexpr int PrefillPaddedDim(int64_t head_dim) {
  return head_dim <= 32 ? 32 : head_dim <= 64 ? 64 : head_dim <= 128 ? 128 : 256;
}
// Dynamic shared memory of the prefill kernel instance for a padded dimension: Q, K and V tiles
// of bf16 rows padded by 8 elements.
constexpr int PrefillSmemBytesFor(int padded_dim) {
  return (64 + 2 * PrefillKeysPerTile(padded_dim)) * (padded_dim + 8) * 2;
}
// The same for a head dimension (the larger of head_dim and v_head_dim), for the build's budget
// check and the launcher; at most 101,376 bytes.
constexpr int PrefillAttentionSmemBytes(int64_t head_dim) {
  return PrefillSmemBytesFor(PrefillPaddedDim(head_dim));
}
static_assert(PrefillAttentionSmemBytes(256) <= 101376, "GB10's shared memory per block");

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_PAGED_ATTENTION_H_
