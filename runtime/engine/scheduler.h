// Scheduler: decides what every engine step computes (continuous batching; DESIGN.md). It only
// decides: it owns the sequences' token lists and block tables (through its BlockManager) and
// answers "which tokens of which sequences run in the next step", never runs a model.
//
// Policy (vLLM v1's): each step has a token budget (max_num_batched_tokens) and a sequence cap
// (max_num_seqs). Running sequences go first, decodes before prefill chunks, oldest first; then
// waiting sequences are admitted in arrival order while budget, cap and blocks allow, their
// prompts cut into chunks that fit the budget (chunked prefill). A new sequence reuses the
// longest cached prefix of full blocks (prefix caching). When blocks run out for a running
// sequence, the newest running sequence is preempted: its blocks are freed and it goes back to the
// front of the waiting queue, to be recomputed later from its prompt and the tokens it already
// produced. Every sequence eventually runs (no starvation): waiting ones are admitted strictly in
// order, and a running sequence is never starved by newer ones.
//
// With pipeline parallelism several steps are in flight: a sequence scheduled in a step that has
// not completed yet is not scheduled again until Complete() for that step.
//
// Deterministic: the same calls in the same order give the same outputs (no clocks, no hashing
// of pointers). Not thread-safe: the engine core thread owns it.
#ifndef SPARKSTACK_RUNTIME_ENGINE_SCHEDULER_H_
#define SPARKSTACK_RUNTIME_ENGINE_SCHEDULER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace sparkstack {

using SequenceId = uint64_t;

struct SchedulerConfig {
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t max_model_len = 0;  // a sequence never exceeds this many tokens (callers stop it)
  int64_t num_blocks = 0;     // KV blocks in the pool
  int64_t block_size = 16;
  bool enable_prefix_caching = true;
};

// One sequence's share of a step.
struct ScheduledSequence {
  SequenceId id = 0;
  // The ranks hold no state for this sequence yet: first scheduled, or resumed after preemption.
  // They learn its tokens from the engine and its whole block table from block_ids.
  bool is_new = false;
  int64_t num_computed_tokens = 0;   // tokens whose KV is cached before this step
  int64_t num_scheduled_tokens = 0;  // tokens computed by this step (>= 1)
  // This step reaches the sequence's last known token: it samples the next one.
  bool samples = false;
  // is_new: the whole block table; otherwise the blocks appended to the table by this step.
  std::vector<int32_t> block_ids;
};

struct SchedulerOutput {
  uint64_t step_id = 0;  // 1, 2, ... in scheduling order
  // In batch order: sequences with one scheduled token (decodes) first.
  std::vector<ScheduledSequence> sequences;
  // Sequences the ranks must forget before this step: finished, aborted or preempted since the
  // previous Schedule().
  std::vector<SequenceId> released;
  int64_t num_tokens = 0;  // sum of num_scheduled_tokens

  bool empty() const { return sequences.empty(); }
};

struct SchedulerStats {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t blocks_total = 0;
  int64_t blocks_used = 0;            // referenced by some sequence
  int64_t prefix_cache_queries = 0;   // tokens looked up
  int64_t prefix_cache_hits = 0;      // tokens found
  int64_t preemptions = 0;
};

// A token sampled by a step for one of its sequences.
struct SampledTokenOf {
  SequenceId id = 0;
  int32_t token = -1;
};

class BlockManager;

class Scheduler {
 public:
  // InvalidArgument-style misconfiguration (non-positive sizes, a pool that cannot hold one
  // max_model_len sequence) is reported by Create.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerConfig& config);
  ~Scheduler();

  // Queues a new sequence with its prompt (non-empty, shorter than max_model_len). `id` must be
  // new.
  void Add(SequenceId id, std::vector<int32_t> prompt);

  // Ends a sequence (finished or aborted), wherever it is. Its blocks return to the pool at once
  // (full ones stay in the prefix cache) unless it is in flight, in which case they return when
  // that step completes. Unknown ids are ignored.
  void Finish(SequenceId id);

  // Decides the next step among the sequences not in flight. An empty output means nothing can
  // run now (nothing waiting, or everything in flight).
  SchedulerOutput Schedule();

  // The step is done: `sampled` holds the tokens of its sampling sequences (any order), which are
  // appended to their sequences; every scheduled sequence's computed count advances.
  void Complete(const SchedulerOutput& step, std::span<const SampledTokenOf> sampled);

  // The sequence's tokens: its prompt, then the tokens sampled so far. Id must be known.
  const std::vector<int32_t>& tokens(SequenceId id) const;
  int64_t num_prompt_tokens(SequenceId id) const;
  bool contains(SequenceId id) const;
  // True while any sequence is waiting, running or in flight.
  bool has_work() const;
  SchedulerStats stats() const;

 private:
  struct State;
  explicit Scheduler(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_SCHEDULER_H_
