// BatchState: one rank's copy of the sequences the engine is running, kept in step with rank 0 by
// applying each StepPlan's delta, and the host side of the step's ForwardBatch built from it.
// Every rank applies the same plans in the same order, so every rank holds the same state.
//
// The plan comes from the network: Apply validates it against this rank's state (unknown or
// duplicate ids, counts that disagree, tokens outside the vocabulary, positions past
// max_model_len, block tables too short) and fails with InvalidArgument rather than touching
// memory it should not.
#ifndef SPARKSTACK_RUNTIME_ENGINE_BATCH_STATE_H_
#define SPARKSTACK_RUNTIME_ENGINE_BATCH_STATE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "runtime/backend/sampling.h"
#include "runtime/engine/step_plan.h"

namespace sparkstack {

struct BatchStateLimits {
  int64_t vocab_size = 0;
  int64_t max_model_len = 0;
  int64_t block_size = 16;
  int64_t num_blocks = 0;
};

// The host arrays of one step (ForwardBatch's tensors before upload), in batch order.
struct HostBatch {
  std::vector<int32_t> token_ids;     // [T]
  std::vector<int32_t> positions;     // [T]
  std::vector<int32_t> query_start;   // [B + 1]
  std::vector<int32_t> seq_lens;      // [B]
  std::vector<int32_t> block_table;   // [B, max_blocks]
  std::vector<int32_t> slot_mapping;  // [T]
  std::vector<int32_t> logits_rows;   // [R]
  int64_t max_blocks = 0;             // columns of block_table
  int64_t num_decodes = 0;
  int64_t max_query_len = 0;
  int64_t max_seq_len = 0;

  // Per logits row: which sequence, and how to sample it.
  std::vector<uint64_t> sample_ids;
  std::vector<SamplingRow> sampling;
  std::vector<bool> return_logits;

  int64_t num_tokens() const { return std::ssize(token_ids); }
  int64_t num_seqs() const { return std::ssize(seq_lens); }
};

class BatchState {
 public:
  explicit BatchState(const BatchStateLimits& limits) : limits_(limits) {}

  // Applies the plan's delta (releases, new sequences, appended tokens and blocks) and builds the
  // step's HostBatch. Afterwards every scheduled sequence counts its scheduled tokens as
  // computed. On error the state is unspecified (the rank stops).
  absl::Status Apply(const StepPlan& plan, HostBatch& batch);

  int64_t size() const { return std::ssize(sequences_); }
  bool contains(uint64_t id) const { return sequences_.contains(id); }

 private:
  struct Sequence {
    std::vector<int32_t> tokens;  // prompt, then outputs known so far
    int64_t num_prompt_tokens = 0;
    int64_t num_computed = 0;
    std::vector<int32_t> block_table;
    SamplingParams sampling;
    int64_t min_tokens = 0;
    std::vector<int32_t> banned_until_min_tokens;
    uint64_t last_step = 0;  // the step that last scheduled it (catches duplicate entries)
  };

  absl::Status Admit(const PlannedSequence& planned, uint64_t step);
  absl::Status Extend(const PlannedSequence& planned, uint64_t step, Sequence& sequence);

  BatchStateLimits limits_;
  absl::flat_hash_map<uint64_t, Sequence> sequences_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_BATCH_STATE_H_
