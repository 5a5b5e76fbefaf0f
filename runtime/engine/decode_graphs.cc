#include "runtime/engine/decode_graphs.h"

#include <algorithm>

#include "runtime/core/status_macros.h"

namespace sparkstack {

std::vector<int64_t> DecodeGraphs::DefaultBuckets(int64_t max_seqs) {
  std::vector<int64_t> buckets;
  for (int64_t b : {1, 2, 4, 8}) {
    if (b <= max_seqs) buckets.push_back(b);
  }
  for (int64_t b = 16; b <= max_seqs; b += 8) buckets.push_back(b);
  if (buckets.empty() || buckets.back() < max_seqs) buckets.push_back(max_seqs);
  return buckets;
}

DecodeGraphs::DecodeGraphs(StepGraphs* graphs, std::vector<int64_t> buckets, int64_t max_blocks)
    : graphs_(graphs), buckets_(std::move(buckets)), max_blocks_(std::max<int64_t>(max_blocks, 1)) {
  std::sort(buckets_.begin(), buckets_.end());
}

int64_t DecodeGraphs::BucketFor(const HostBatch& batch) const {
  const int64_t seqs = batch.num_seqs();
  if (!enabled() || seqs == 0 || batch.num_decodes != seqs || batch.num_tokens() != seqs ||
      std::ssize(batch.logits_rows) != seqs || batch.max_blocks > max_blocks_) {
    return 0;
  }
  for (int64_t b : buckets_) {
    if (b >= seqs) return b;
  }
  return 0;
}

void DecodeGraphs::Pad(HostBatch& batch, int64_t bucket) const {
  const int64_t seqs = batch.num_seqs();
  // Widen the block table to max_blocks_ columns.
  std::vector<int32_t> table(bucket * max_blocks_, 0);
  for (int64_t b = 0; b < seqs; ++b) {
    std::copy_n(batch.block_table.begin() + b * batch.max_blocks, batch.max_blocks,
                table.begin() + b * max_blocks_);
  }
  batch.block_table = std::move(table);
  batch.max_blocks = max_blocks_;
  for (int64_t b = seqs; b < bucket; ++b) {
    batch.token_ids.push_back(0);
    batch.positions.push_back(0);
    batch.slot_mapping.push_back(-1);
    batch.seq_lens.push_back(1);
    batch.query_start.push_back(static_cast<int32_t>(b + 1));
    batch.logits_rows.push_back(static_cast<int32_t>(b));
  }
  batch.num_decodes = bucket;
  batch.max_query_len = 1;
  batch.max_seq_len = std::max<int64_t>(batch.max_seq_len, 1);
}

absl::Status DecodeGraphs::Run(int64_t bucket, const std::function<absl::Status()>& forward) {
  if (!enabled() || bucket == 0) return forward();
  if (auto it = graph_.find(bucket); it != graph_.end()) {
    ++replays_;
    return graphs_->Replay(it->second);
  }
  if (seen_[bucket]++ == 0) return forward();  // warm-up run
  SPARKSTACK_RETURN_IF_ERROR(graphs_->BeginCapture());
  const absl::Status captured = forward();
  absl::StatusOr<int> graph = graphs_->EndCapture();
  SPARKSTACK_RETURN_IF_ERROR(captured);
  SPARKSTACK_RETURN_IF_ERROR(graph.status());
  graph_[bucket] = *graph;
  ++replays_;
  return graphs_->Replay(*graph);
}

}  // namespace sparkstack
