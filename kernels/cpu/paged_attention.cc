#include "kernels/cpu/paged_attention.h"

#include <algorithm>

namespace sparkstack::kernels {

void PagedAttentionF32(const AttentionArgs& args, int64_t num_seqs, std::span<int64_t> tile_offsets,
                       ThreadPool& pool, CpuIsa isa) {
  const IsaKernels& kernels = KernelsFor(isa);
  const int64_t group = args.heads / args.kv_heads;
  const int64_t tile_tokens = std::max<int64_t>(1, kAttentionTileRows / group);
  // tile_offsets[b] = tiles of the sequences before b (per kv head).
  tile_offsets[0] = 0;
  for (int64_t b = 0; b < num_seqs; ++b) {
    const int64_t n = args.query_start[b + 1] - args.query_start[b];
    tile_offsets[b + 1] = tile_offsets[b] + (n + tile_tokens - 1) / tile_tokens;
  }
  const int64_t tiles = tile_offsets[num_seqs];
  const int64_t tasks = tiles * args.kv_heads;
  pool.ParallelFor(tasks, [&](int64_t task, int) {
    // Last tiles first: a batch ends with its prefill chunks, whose last tiles see the most
    // positions, and the decodes fill in behind them.
    const int64_t t = tasks - 1 - task;
    const int64_t tile = t / args.kv_heads;
    const int64_t kv_head = t % args.kv_heads;
    const int64_t seq =
        std::upper_bound(tile_offsets.begin(), tile_offsets.begin() + num_seqs + 1, tile) -
        tile_offsets.begin() - 1;
    const int64_t n = args.query_start[seq + 1] - args.query_start[seq];
    const int64_t first = (tile - tile_offsets[seq]) * tile_tokens;
    kernels.attention_tile(args, seq, kv_head, first, std::min(n, first + tile_tokens));
  });
}

}  // namespace sparkstack::kernels
