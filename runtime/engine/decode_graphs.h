// DecodeGraphs: the runner's seam for CUDA graphs. A decode-only step (every sequence one token,
// every one sampled) is padded to a batch-size bucket; the first step of a bucket runs eagerly
// (warm-up: kernel attributes, lazy loading), the second is captured into a graph, and every later
// step of that bucket replays it. The step's inputs live in the runner's device buffers at fixed
// addresses and are uploaded before the replay; the shapes a captured launch bakes in (batch =
// bucket, block-table width = the largest a sequence can need) are fixed by Pad, and the kernels
// size everything else from device data (paged_attention.h: the decode grid covers the block
// table's capacity while capturing). Backends without graphs (the CPU) run every step eagerly.
//
// Padded rows are inert: token 0 at position 0 with a one-token context in block 0, no KV store
// (slot -1), logits computed but never sampled. Rows never influence each other, so the real
// rows' results equal an unpadded run's.
#ifndef SPARKSTACK_RUNTIME_ENGINE_DECODE_GRAPHS_H_
#define SPARKSTACK_RUNTIME_ENGINE_DECODE_GRAPHS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "absl/status/status.h"
#include "runtime/backend/step_graphs.h"
#include "runtime/engine/batch_state.h"

namespace sparkstack {

class DecodeGraphs {
 public:
  // 1, 2, 4, 8, then multiples of 8 up to max_seqs (vLLM's capture sizes, coarser).
  static std::vector<int64_t> DefaultBuckets(int64_t max_seqs);

  // `graphs` may be null (no graphs: Run always runs eagerly). `max_blocks`: the block-table
  // width every padded step gets (blocks of the longest sequence).
  DecodeGraphs(StepGraphs* graphs, std::vector<int64_t> buckets, int64_t max_blocks);

  bool enabled() const { return graphs_ != nullptr && !buckets_.empty(); }

  // The bucket for `batch`: the smallest bucket >= its sequence count when it is a decode-only
  // step with one logits row per sequence; 0 when it must run eagerly.
  int64_t BucketFor(const HostBatch& batch) const;

  // Pads `batch` to `bucket` sequences (inert rows) and widens its block table to max_blocks.
  // The sampling rows (batch.sampling) are left as they are: only the real rows are sampled.
  void Pad(HostBatch& batch, int64_t bucket) const;

  // Runs `forward` (which enqueues the step's device work and must not copy to or from the
  // host) for a step of `bucket`, eagerly, captured or replayed as described above.
  absl::Status Run(int64_t bucket, const std::function<absl::Status()>& forward);

  // Steps of each bucket so far, and how many were replays (tests, metrics).
  int64_t replays() const { return replays_; }

 private:
  StepGraphs* graphs_;
  std::vector<int64_t> buckets_;
  int64_t max_blocks_;
  std::map<int64_t, int> seen_;   // bucket -> eager runs so far
  std::map<int64_t, int> graph_;  // bucket -> captured graph
  int64_t replays_ = 0;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_DECODE_GRAPHS_H_
