// Causal grouped-query attention over a paged KV cache, f32 (the layout of
// runtime/backend/attention_metadata.h and kernels/cpu/isa_kernels.h AttentionArgs).
//
// Work split: one task per (sequence, kv head, tile of the sequence's query tokens), a tile holding
// at most kAttentionTileRows (query token, query head) rows: every query head that reads the kv
// head, for as many tokens as fit. A task streams its kv head's keys and values once, in chunks of
// 16 positions, for all rows of the tile (a decode tile is the whole query group, so each kv head
// of a decoding sequence is read once per step), with an online softmax whose running output lives
// in `out` itself: no scratch memory, no allocation. Tasks are claimed from the pool largest first.
//
// Each row's result depends only on its query, its position and the cache (not on the tile, the
// batch, the thread or the ISA: see isa_kernels.h).
#ifndef SPARKSTACK_KERNELS_CPU_PAGED_ATTENTION_H_
#define SPARKSTACK_KERNELS_CPU_PAGED_ATTENTION_H_

#include <cstdint>
#include <span>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/isa_kernels.h"
#include "kernels/cpu/thread_pool.h"

namespace sparkstack::kernels {

// Sequences of a batch over a paged cache, for kernels that take raw pointers (the MLA attention
// of mla_attention.h). Query token i (of n) of sequence b sits at position seq_lens[b] - n + i.
struct PagedBatch {
  int64_t num_seqs = 0;
  const int32_t* query_start = nullptr;  // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;     // [num_seqs]
  const int32_t* block_table = nullptr;  // [num_seqs, max_blocks]
  int64_t max_blocks = 0;
};

// Query token i (of n) of sequence b sits at position seq_lens[b] - n + i and sees positions
// [0, that]. `tile_offsets` is caller-owned scratch of at least num_seqs + 1 entries (so the call
// allocates nothing). heads must be a multiple of kv_heads.
void PagedAttentionF32(const AttentionArgs& args, int64_t num_seqs, std::span<int64_t> tile_offsets,
                       ThreadPool& pool, CpuIsa isa);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_PAGED_ATTENTION_H_
