// Scheduler: decides what every engine step computes (continuous batching; DESIGN.md). It only
// decides: it owns the sequences' token lists and block tables (through its BlockManager) and
// answers "which tokens of which sequences run in the next step", never runs a model.
//
// Policy (vLLM v1's): each step has a token budget (max_num_batched_tokens) and a sequence cap
// (max_num_seqs, which bounds the running sequences, in flight or not, so every step too; the
// budget must be at least the cap, so every running decode always fits). "Older" means added
// earlier (Add order); a preempted sequence keeps its age.
//  1. Running sequences not in flight, oldest first. A decode (one token left to compute) takes
//     one token; a prefill takes the next chunk of its prompt, as much as the budget allows after
//     reserving one token for every decode (decodes first for the budget).
//  2. Blocks for that: when the pool runs out, the newest running sequence that is newer than the
//     one asking and not in flight is preempted (newest first, until the blocks fit). If there is
//     none, the asker waits (skips this step, keeps its blocks) while any step is in flight, as
//     completing steps free blocks or make newer sequences preemptable; else it preempts itself.
//     A preempted sequence's blocks are freed (full ones stay in the prefix cache); it goes back
//     to the waiting queue (in age order, so ahead of everything never admitted) and is later
//     recomputed from all its tokens (prompt and outputs).
//  3. Then, unless this step preempted or left a running sequence waiting for blocks, waiting
//     sequences are admitted strictly in order (the head blocks those behind it) while budget, cap
//     and blocks allow. An admitted sequence takes the longest cached prefix of full blocks
//     (prefix caching; at most floor((len - 1) / block_size) blocks, so its last token is always
//     computed) and its first chunk.
// Blocks are allocated only for the tokens a step computes. No starvation: the oldest running
// sequence gets budget and blocks whenever it is not in flight (it may preempt any newer one; at
// worst it waits for the steps in flight), no sequence is admitted ahead of an older one, and
// every running sequence ends within max_model_len tokens.
//
// With pipeline parallelism several steps are in flight: a sequence scheduled in a step that has
// not completed yet is not scheduled (nor preempted) again until Complete() for that step. A
// full block enters the prefix cache only when the step that wrote its KV has completed.
//
// Lengths: a sequence is never scheduled once it holds max_model_len tokens (prompt + outputs);
// the engine Finish()es it then (FinishReason::kLength), as it does on max_tokens or a stop.
//
// Deterministic: the same calls in the same order give the same outputs (no clocks, no hashing
// of pointers). Not thread-safe: the engine core thread owns it. Misuse (an unknown step, a
// duplicate id, a missing sampled token) is a programmer error and aborts with a message.
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
  // Hash of a full block from its parent's hash and its tokens; null: the default. Tests pass a
  // colliding one (hits are verified by content, so collisions only cost lookups).
  uint64_t (*block_hasher)(uint64_t parent_hash, std::span<const int32_t> tokens) = nullptr;
};

// One sequence's share of a step.
struct ScheduledSequence {
  SequenceId id = 0;
  // The ranks hold no state for this sequence yet: first scheduled, or resumed after preemption.
  // They learn its tokens from the engine and its whole block table from block_ids.
  bool is_new = false;
  // Tokens whose KV is cached before this step. For is_new: the prefix-cache hit (a multiple of
  // block_size), which is also the sequence's cached prompt tokens on its first admission.
  int64_t num_computed_tokens = 0;
  // Tokens computed by this step (>= 1): tokens(id)[num_computed, num_computed + scheduled).
  int64_t num_scheduled_tokens = 0;
  // This step reaches the sequence's last known token: it samples the next one.
  bool samples = false;
  // is_new: the whole block table; otherwise the blocks appended to the table by this step.
  // After this step the table covers exactly ceil((computed + scheduled) / block_size) blocks.
  std::vector<int32_t> block_ids;
};

struct SchedulerOutput {
  uint64_t step_id = 0;  // 1, 2, ... in scheduling order; 0 for an empty output
  // In batch order: sequences with one scheduled token (decodes) first, then the others.
  std::vector<ScheduledSequence> sequences;
  // Sequences the ranks must forget before this step (apply before `sequences`): those they know
  // that were finished, aborted or preempted since the previous non-empty output. An empty output
  // carries none (they wait for the next step; their blocks are not handed to anyone before it).
  // An id may be released and come back with is_new in the same output (preempted, resumed).
  // A sequence Finish()ed while in flight is released after that step's Complete().
  std::vector<SequenceId> released;
  int64_t num_tokens = 0;  // sum of num_scheduled_tokens

  bool empty() const { return sequences.empty(); }
};

struct SchedulerStats {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t blocks_total = 0;
  int64_t blocks_used = 0;           // referenced by some sequence
  int64_t prefix_cache_queries = 0;  // tokens looked up
  int64_t prefix_cache_hits = 0;     // tokens found
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
  // InvalidArgument for a misconfiguration: non-positive sizes, max_model_len < 2,
  // max_num_batched_tokens < max_num_seqs, a pool that cannot hold one max_model_len sequence or
  // has 2^31 blocks or more.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerConfig& config);
  ~Scheduler();

  // Queues a new sequence with its prompt (non-empty, shorter than max_model_len). `id` must be
  // new (never added before).
  void Add(SequenceId id, std::vector<int32_t> prompt);

  // Ends a sequence (finished or aborted), wherever it is. Its blocks return to the pool at once
  // (full ones stay in the prefix cache) unless it is in flight, in which case they return when
  // that step completes. Unknown ids are ignored.
  void Finish(SequenceId id);

  // Decides the next step among the sequences not in flight. An empty output means nothing can
  // run now (nothing waiting, or everything in flight, or the rest waits for in-flight steps).
  // A non-empty output is in flight until Complete(); an empty one needs no Complete().
  SchedulerOutput Schedule();

  // The step is done (steps may complete in any order): `sampled` holds one token for each of its
  // sampling sequences (any order; sequences Finish()ed meanwhile may be left out, their tokens
  // are dropped), appended to the sequences; every scheduled sequence's computed count advances
  // and its newly full blocks enter the prefix cache. `step` is the output Schedule() returned.
  void Complete(const SchedulerOutput& step, std::span<const SampledTokenOf> sampled);

  // The sequence's tokens: its prompt, then the tokens sampled so far. Id must be known (added,
  // and not finished or its in-flight step not yet completed).
  const std::vector<int32_t>& tokens(SequenceId id) const;
  int64_t num_prompt_tokens(SequenceId id) const;
  // Added and not finished.
  bool contains(SequenceId id) const;
  // True while any sequence is waiting or running, or any step is in flight.
  bool has_work() const;
  SchedulerStats stats() const;
  // Read-only view of the blocks (reference counts, cache state), for tests and metrics.
  const BlockManager& block_manager() const;

 private:
  struct State;
  explicit Scheduler(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_SCHEDULER_H_
