#include "runtime/engine/scheduler.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/engine/block_manager.h"

namespace sparkstack {
namespace {

struct Sequence {
  SequenceId id = 0;
  uint64_t arrival = 0;  // Add order: smaller is older
  std::vector<int32_t> tokens;
  int64_t num_prompt = 0;
  int64_t num_computed = 0;
  BlockTable table;
  uint64_t in_flight_step = 0;  // 0: not in flight
  bool awaits_sample = false;   // in flight in a step that samples it
  bool running = false;         // in running_, else in waiting_ (unless finished)
  bool on_ranks = false;        // scheduled since it was last released
  bool finished = false;        // Finish()ed while in flight: freed by Complete()

  int64_t length() const { return static_cast<int64_t>(tokens.size()); }
};

struct InFlightStep {
  uint64_t step_id = 0;
  std::vector<Sequence*> sequences;  // in the output's order
};

bool OlderThan(const Sequence* a, const Sequence* b) { return a->arrival < b->arrival; }

}  // namespace

struct Scheduler::State {
  explicit State(const SchedulerConfig& c)
      : config(c),
        blocks(BlockManagerOptions{.num_blocks = c.num_blocks,
                                   .block_size = c.block_size,
                                   .enable_prefix_caching = c.enable_prefix_caching,
                                   .hasher = c.block_hasher}) {}

  bool Schedulable(const Sequence* s) const {
    return s->in_flight_step == 0 && s->length() < config.max_model_len;
  }
  bool IsDecode(const Sequence* s) const {
    return Schedulable(s) && s->length() - s->num_computed == 1;
  }
  Sequence& Get(SequenceId id) const {
    auto it = sequences.find(id);
    SPARKSTACK_ENGINE_CHECK(it != sequences.end(), "Scheduler: unknown sequence id");
    return *it->second;
  }
  // Frees the blocks of a sequence leaving the scheduler and forgets it.
  void Drop(Sequence* s) {
    blocks.Free(s->table);
    if (s->on_ranks) released.push_back(s->id);
    sequences.erase(s->id);
  }
  void Preempt(size_t index);
  void InsertRunning(Sequence* s);
  void Emit(Sequence* s, bool is_new, int64_t num_tokens, size_t old_blocks, SchedulerOutput& out);

  SchedulerConfig config;
  BlockManager blocks;
  absl::flat_hash_map<SequenceId, std::unique_ptr<Sequence>> sequences;
  std::vector<Sequence*> running;  // oldest first
  std::deque<Sequence*> waiting;   // oldest first
  std::vector<InFlightStep> in_flight;
  std::vector<std::vector<Sequence*>> spare_lists;  // recycled InFlightStep::sequences
  std::vector<SequenceId> released;                 // for the next non-empty output
  uint64_t next_arrival = 1;
  uint64_t next_step = 1;
  int64_t preemptions = 0;

  // Per-step scratch, kept to avoid allocating every step.
  std::vector<ScheduledSequence> multi_token;  // entries with several tokens, output order
  std::vector<Sequence*> multi_token_sequences;
  std::vector<Sequence*> step_sequences;
  std::vector<int32_t> hits;
};

void Scheduler::State::Preempt(size_t index) {
  Sequence* s = running[index];
  running.erase(running.begin() + static_cast<ptrdiff_t>(index));
  blocks.Free(s->table);
  s->num_computed = 0;
  s->running = false;
  if (s->on_ranks) released.push_back(s->id);
  s->on_ranks = false;
  waiting.insert(std::upper_bound(waiting.begin(), waiting.end(), s, OlderThan), s);
  ++preemptions;
}

void Scheduler::State::InsertRunning(Sequence* s) {
  s->running = true;
  if (running.empty() || OlderThan(running.back(), s)) {
    running.push_back(s);
  } else {
    running.insert(std::upper_bound(running.begin(), running.end(), s, OlderThan), s);
  }
}

void Scheduler::State::Emit(Sequence* s, bool is_new, int64_t num_tokens, size_t old_blocks,
                            SchedulerOutput& out) {
  ScheduledSequence entry;
  entry.id = s->id;
  entry.is_new = is_new;
  entry.num_computed_tokens = s->num_computed;
  entry.num_scheduled_tokens = num_tokens;
  entry.samples = s->num_computed + num_tokens == s->length();
  if (s->table.blocks.size() > old_blocks) {
    entry.block_ids.assign(s->table.blocks.begin() + static_cast<ptrdiff_t>(old_blocks),
                           s->table.blocks.end());
  }
  s->awaits_sample = entry.samples;
  s->on_ranks = true;
  out.num_tokens += num_tokens;
  if (num_tokens == 1) {
    out.sequences.push_back(std::move(entry));
    step_sequences.push_back(s);
  } else {
    multi_token.push_back(std::move(entry));
    multi_token_sequences.push_back(s);
  }
}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerConfig& config) {
  if (config.max_num_seqs < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler: max_num_seqs must be >= 1, got ", config.max_num_seqs));
  }
  if (config.max_num_batched_tokens < config.max_num_seqs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scheduler: max_num_batched_tokens (", config.max_num_batched_tokens,
        ") must be >= max_num_seqs (", config.max_num_seqs, ") so every running decode fits"));
  }
  if (config.max_model_len < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler: max_model_len must be >= 2, got ", config.max_model_len));
  }
  if (config.block_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler: block_size must be >= 1, got ", config.block_size));
  }
  int64_t blocks_per_sequence = (config.max_model_len + config.block_size - 1) / config.block_size;
  if (config.num_blocks < blocks_per_sequence || config.num_blocks > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler: num_blocks must be in [", blocks_per_sequence,
                     ", 2^31) (one sequence of ", "max_model_len ", config.max_model_len,
                     " in blocks of ", config.block_size, " tokens), got ", config.num_blocks));
  }
  return std::unique_ptr<Scheduler>(new Scheduler(std::make_unique<State>(config)));
}

Scheduler::Scheduler(std::unique_ptr<State> state) : state_(std::move(state)) {}
Scheduler::~Scheduler() = default;

void Scheduler::Add(SequenceId id, std::vector<int32_t> prompt) {
  State& st = *state_;
  SPARKSTACK_ENGINE_CHECK(!prompt.empty(), "Scheduler::Add: empty prompt");
  SPARKSTACK_ENGINE_CHECK(static_cast<int64_t>(prompt.size()) < st.config.max_model_len,
                          "Scheduler::Add: prompt not shorter than max_model_len");
  auto [it, inserted] = st.sequences.try_emplace(id);
  SPARKSTACK_ENGINE_CHECK(inserted, "Scheduler::Add: sequence id already used");
  it->second = std::make_unique<Sequence>();
  Sequence* s = it->second.get();
  s->id = id;
  s->arrival = st.next_arrival++;
  s->num_prompt = static_cast<int64_t>(prompt.size());
  s->tokens = std::move(prompt);
  st.waiting.push_back(s);  // the newest: the queue stays in age order
}

void Scheduler::Finish(SequenceId id) {
  State& st = *state_;
  auto it = st.sequences.find(id);
  if (it == st.sequences.end() || it->second->finished) return;
  Sequence* s = it->second.get();
  if (s->running) {
    st.running.erase(std::find(st.running.begin(), st.running.end(), s));
  } else {
    st.waiting.erase(std::find(st.waiting.begin(), st.waiting.end(), s));
  }
  s->running = false;
  if (s->in_flight_step != 0) {
    s->finished = true;  // its step still writes its blocks; Complete() frees them
    return;
  }
  st.Drop(s);
}

SchedulerOutput Scheduler::Schedule() {
  State& st = *state_;
  const SchedulerConfig& config = st.config;
  const int64_t block_size = config.block_size;
  SchedulerOutput out;
  out.sequences.reserve(st.running.size() + 8);
  st.multi_token.clear();
  st.multi_token_sequences.clear();
  st.step_sequences.clear();

  // 1 + 2: running sequences, oldest first; one budget token held back for every decode.
  int64_t budget_left = config.max_num_batched_tokens;
  int64_t reserved = 0;
  for (const Sequence* s : st.running) reserved += st.IsDecode(s) ? 1 : 0;
  bool preempted = false;
  bool waits_for_blocks = false;
  for (size_t i = 0; i < st.running.size(); ++i) {
    Sequence* s = st.running[i];
    if (!st.Schedulable(s)) continue;
    int64_t remaining = s->length() - s->num_computed;
    int64_t n = 1;
    if (remaining == 1) {
      --reserved;
    } else {
      n = std::min(remaining, budget_left - reserved);
      if (n <= 0) continue;
    }
    size_t old_blocks = s->table.blocks.size();
    bool fits = true;
    while (!st.blocks.Grow(s->table, s->num_computed + n)) {
      size_t victim = st.running.size();
      for (size_t j = st.running.size(); j-- > i + 1;) {
        if (st.running[j]->in_flight_step == 0) {
          victim = j;
          break;
        }
      }
      if (victim == st.running.size()) {
        fits = false;
        break;
      }
      if (st.IsDecode(st.running[victim])) --reserved;
      st.Preempt(victim);
      preempted = true;
    }
    if (!fits) {
      // Every newer running sequence is in flight (or there is none), so nothing after this one
      // can run. While any step is in flight this one waits (keeping its blocks): completing
      // steps return blocks (finished sequences) or make newer sequences preemptable. Otherwise
      // it is the newest and gives its blocks back to the older ones.
      if (!st.in_flight.empty()) {
        waits_for_blocks = true;
      } else {
        st.Preempt(i);
        preempted = true;
      }
      break;
    }
    st.Emit(s, /*is_new=*/false, n, old_blocks, out);
    budget_left -= n;
  }

  // 3: admit waiting sequences in order.
  const int64_t max_num_seqs = config.max_num_seqs;
  while (!preempted && !waits_for_blocks && !st.waiting.empty() && budget_left > 0 &&
         static_cast<int64_t>(st.running.size()) < max_num_seqs) {
    Sequence* s = st.waiting.front();
    const int64_t length = s->length();
    if (length >= config.max_model_len) break;  // the engine finishes it
    st.blocks.FindCachedPrefix(s->tokens, (length - 1) / block_size, s->table, st.hits);
    const int64_t num_hits = static_cast<int64_t>(st.hits.size());
    const int64_t computed = num_hits * block_size;
    const int64_t n = std::min(length - computed, budget_left);
    const int64_t new_blocks = (computed + n + block_size - 1) / block_size - num_hits;
    if (!st.blocks.CanAllocate(st.hits, new_blocks)) break;
    st.blocks.AcquireCachedPrefix(st.hits, length, s->table);
    SPARKSTACK_ENGINE_CHECK(st.blocks.Grow(s->table, computed + n),
                            "Schedule: blocks checked free could not be taken");
    s->num_computed = computed;
    st.waiting.pop_front();
    st.InsertRunning(s);
    st.Emit(s, /*is_new=*/true, n, /*old_blocks=*/0, out);
    budget_left -= n;
  }

  if (out.sequences.empty() && st.multi_token.empty()) return out;  // releases wait
  for (ScheduledSequence& entry : st.multi_token) out.sequences.push_back(std::move(entry));
  out.step_id = st.next_step++;
  out.released = std::move(st.released);
  st.released.clear();

  InFlightStep step;
  step.step_id = out.step_id;
  if (!st.spare_lists.empty()) {
    step.sequences = std::move(st.spare_lists.back());
    st.spare_lists.pop_back();
  }
  step.sequences.assign(st.step_sequences.begin(), st.step_sequences.end());
  step.sequences.insert(step.sequences.end(), st.multi_token_sequences.begin(),
                        st.multi_token_sequences.end());
  for (Sequence* s : step.sequences) s->in_flight_step = out.step_id;
  st.in_flight.push_back(std::move(step));
  return out;
}

void Scheduler::Complete(const SchedulerOutput& step, std::span<const SampledTokenOf> sampled) {
  State& st = *state_;
  if (step.sequences.empty()) return;
  auto record = std::find_if(st.in_flight.begin(), st.in_flight.end(),
                             [&](const InFlightStep& s) { return s.step_id == step.step_id; });
  SPARKSTACK_ENGINE_CHECK(record != st.in_flight.end(), "Complete: the step is not in flight");
  SPARKSTACK_ENGINE_CHECK(record->sequences.size() == step.sequences.size(),
                          "Complete: the step's sequences differ from what was scheduled");
  for (const SampledTokenOf& token : sampled) {
    Sequence& s = st.Get(token.id);
    SPARKSTACK_ENGINE_CHECK(s.in_flight_step == step.step_id && s.awaits_sample,
                            "Complete: a token for a sequence this step does not sample");
    s.awaits_sample = false;
    if (!s.finished) s.tokens.push_back(token.token);
  }
  for (size_t i = 0; i < record->sequences.size(); ++i) {
    Sequence* s = record->sequences[i];
    SPARKSTACK_ENGINE_CHECK(s->id == step.sequences[i].id,
                            "Complete: the step's sequences differ from what was scheduled");
    s->num_computed += step.sequences[i].num_scheduled_tokens;
    s->in_flight_step = 0;
    // The step wrote the KV: its full blocks are worth caching even for a finished sequence.
    st.blocks.Cache(s->table, s->tokens, s->num_computed);
    if (s->finished) {
      st.Drop(s);
      continue;
    }
    SPARKSTACK_ENGINE_CHECK(!s->awaits_sample, "Complete: no sampled token for a sequence");
  }
  record->sequences.clear();
  st.spare_lists.push_back(std::move(record->sequences));
  st.in_flight.erase(record);
}

const std::vector<int32_t>& Scheduler::tokens(SequenceId id) const {
  return state_->Get(id).tokens;
}

int64_t Scheduler::num_prompt_tokens(SequenceId id) const { return state_->Get(id).num_prompt; }

bool Scheduler::contains(SequenceId id) const {
  auto it = state_->sequences.find(id);
  return it != state_->sequences.end() && !it->second->finished;
}

bool Scheduler::has_work() const {
  return !state_->running.empty() || !state_->waiting.empty() || !state_->in_flight.empty();
}

SchedulerStats Scheduler::stats() const {
  const State& st = *state_;
  SchedulerStats stats;
  stats.running = static_cast<int64_t>(st.running.size());
  stats.waiting = static_cast<int64_t>(st.waiting.size());
  stats.blocks_total = st.blocks.num_blocks();
  stats.blocks_used = st.blocks.num_used_blocks();
  stats.prefix_cache_queries = st.blocks.prefix_cache_queries();
  stats.prefix_cache_hits = st.blocks.prefix_cache_hits();
  stats.preemptions = st.preemptions;
  return stats;
}

const BlockManager& Scheduler::block_manager() const { return state_->blocks; }

}  // namespace sparkstack
