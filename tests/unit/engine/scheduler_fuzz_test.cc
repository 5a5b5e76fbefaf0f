// Random traces through the Scheduler, checking invariants after every call against an
// independent model of what the ranks know (block tables built only from the outputs) and of the
// KV cache (what each slot holds, written by the steps that complete). The KV model is what
// catches wrong prefix reuse and wrong recompute after preemption: every position a step reads
// must hold the KV of exactly its sequence's tokens up to that position.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/engine/block_manager.h"
#include "runtime/engine/scheduler.h"

namespace sparkstack {
namespace {

// A hash that collides all the time (4 buckets): hits must come from content checks alone.
uint64_t WeakHash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = parent;
  for (int32_t t : tokens) h += static_cast<uint64_t>(t);
  return h % 4;
}

// Identity of the KV at position p: the sequence's tokens [0, p]. A 64-bit polynomial hash
// unrelated to the block hashes (a false match would need a 2^-64 coincidence).
std::vector<uint64_t> PrefixFingerprints(const std::vector<int32_t>& tokens, int64_t n) {
  std::vector<uint64_t> fp(static_cast<size_t>(n));
  uint64_t h = 0x243f6a8885a308d3ull;
  for (int64_t p = 0; p < n; ++p) {
    h = (h ^ static_cast<uint64_t>(tokens[p] + 1)) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    fp[p] = h | 1;  // 0 means "never written"
  }
  return fp;
}

struct TraceParams {
  uint64_t seed = 0;
  int64_t steps_with_arrivals = 150;
};

// Maximum waits observed, for the report and the bounds.
struct Observed {
  int64_t max_head_wait = 0;    // Schedule calls at the head of the queue before admission
  int64_t max_oldest_skip = 0;  // calls the oldest running sequence was ready but not scheduled
  int64_t max_lifetime = 0;     // Schedule calls from Add to finish
  int64_t drain_calls = 0;
  int64_t preemptions = 0;
  int64_t hits = 0;
  int64_t steps = 0;
};

class Trace {
 public:
  explicit Trace(const TraceParams& params) : rng_(params.seed), params_(params) {
    block_size_ = Pick({1, 2, 3, 4, 5, 16});
    max_model_len_ = Uniform(2, block_size_ == 16 ? 160 : 60);
    int64_t min_blocks = (max_model_len_ + block_size_ - 1) / block_size_;
    num_blocks_ = min_blocks + Uniform(0, Chance(0.5) ? min_blocks / 2 + 1 : 3 * min_blocks);
    config_.block_size = block_size_;
    config_.max_model_len = max_model_len_;
    config_.num_blocks = num_blocks_;
    config_.max_num_seqs = Uniform(1, 12);
    config_.max_num_batched_tokens = config_.max_num_seqs + Uniform(0, Chance(0.5) ? 8 : 80);
    config_.enable_prefix_caching = Chance(0.85);
    if (Chance(0.3)) config_.block_hasher = &WeakHash;
    depth_ = Uniform(1, 3);  // steps in flight at most (pipeline stages)
    vocab_ = Uniform(2, 6);  // few distinct tokens: many accidental shared blocks
    for (int i = 0; i < 3; ++i) {
      std::vector<int32_t> prefix(static_cast<size_t>(Uniform(1, max_model_len_ - 1)));
      for (int32_t& t : prefix) t = static_cast<int32_t>(Uniform(0, vocab_ - 1));
      shared_prefixes_.push_back(prefix);
    }
    kv_.assign(static_cast<size_t>(num_blocks_ * block_size_), 0);
  }

  std::string Describe() const {
    std::ostringstream os;
    os << "seed " << params_.seed << ": block_size " << block_size_ << ", num_blocks "
       << num_blocks_ << ", max_model_len " << max_model_len_ << ", max_num_seqs "
       << config_.max_num_seqs << ", budget " << config_.max_num_batched_tokens << ", depth "
       << depth_ << ", caching " << config_.enable_prefix_caching << ", weak hash "
       << (config_.block_hasher != nullptr);
    return os.str();
  }

  // Runs the trace; returns the transcript of every output (for the determinism check).
  std::string Run(Observed& observed) {
    auto created = Scheduler::Create(config_);
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return "";
    scheduler_ = std::move(created).value();
    int64_t tick = 0;
    const int64_t bound = DrainBound();
    while (true) {
      if (tick < params_.steps_with_arrivals) {
        MaybeArrive();
      } else if (!scheduler_->has_work()) {
        break;
      }
      if (tick - params_.steps_with_arrivals > bound) {
        ADD_FAILURE() << "did not drain within " << bound << " calls after the last arrival";
        break;
      }
      ++tick;
      if (Chance(0.03)) AbortRandom();
      if (static_cast<int64_t>(in_flight_.size()) < depth_) ScheduleAndCheck();
      if (::testing::Test::HasFailure()) break;
      bool must_complete =
          static_cast<int64_t>(in_flight_.size()) == depth_ || (!in_flight_.empty() && last_empty_);
      if (must_complete || (!in_flight_.empty() && Chance(0.3))) CompleteAndCheck();
      if (::testing::Test::HasFailure()) break;
    }
    observed.drain_calls = std::max(observed.drain_calls, tick - params_.steps_with_arrivals);
    observed.max_head_wait = std::max(observed.max_head_wait, max_head_wait_);
    observed.max_oldest_skip = std::max(observed.max_oldest_skip, max_oldest_skip_);
    observed.max_lifetime = std::max(observed.max_lifetime, max_lifetime_);
    observed.preemptions += scheduler_->stats().preemptions;
    observed.hits += scheduler_->stats().prefix_cache_hits;
    observed.steps += steps_;
    // Everything ended; no block is held, none leaked.
    for (const auto& [id, req] : requests_) EXPECT_TRUE(req.done) << "request " << id;
    EXPECT_EQ(scheduler_->stats().blocks_used, 0);
    EXPECT_EQ(scheduler_->stats().running, 0);
    EXPECT_EQ(scheduler_->stats().waiting, 0);
    EXPECT_TRUE(scheduler_->block_manager().CheckConsistency().ok());
    return transcript_.str();
  }

 private:
  struct Request {
    std::vector<int32_t> tokens;  // what the scheduler must report: prompt + sampled
    int64_t num_prompt = 0;
    int64_t max_tokens = 0;
    int64_t added_at = 0;  // Schedule call count
    bool done = false;     // finished or aborted (Finish called)
  };
  // What the ranks know of a sequence.
  struct RankSequence {
    std::vector<int32_t> table;
    int64_t computed = 0;
  };

  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int64_t Pick(std::initializer_list<int64_t> values) {
    return *(values.begin() + Uniform(0, static_cast<int64_t>(values.size()) - 1));
  }

  // Upper bound on the Schedule calls any wait may take: every running sequence ends within
  // max_model_len computed tokens plus recomputes, is scheduled at least every depth + 2 calls,
  // and the sequences ahead of one in the queue number at most what arrived before it.
  int64_t DrainBound() const {
    return (depth_ + 2) * 4 * (max_model_len_ + 1) * (config_.max_num_seqs + 2) *
           (params_.steps_with_arrivals / 2 + 2);
  }

  void MaybeArrive() {
    int n = Chance(0.3) ? static_cast<int>(Uniform(1, 3)) : 0;
    for (int i = 0; i < n; ++i) {
      next_id_ += static_cast<SequenceId>(Uniform(1, 1000));
      std::vector<int32_t> prompt;
      if (Chance(0.6)) {
        const auto& prefix = shared_prefixes_[Uniform(0, 2)];
        prompt.assign(prefix.begin(), prefix.begin() + Uniform(1, prefix.size()));
      }
      int64_t extra = Uniform(prompt.empty() ? 1 : 0, max_model_len_ - 1 - prompt.size());
      extra = std::min<int64_t>(extra, Chance(0.7) ? 2 * block_size_ + 3 : extra);
      for (int64_t k = 0; k < extra; ++k) prompt.push_back(Uniform(0, vocab_ - 1));
      Request req;
      req.tokens = prompt;
      req.num_prompt = static_cast<int64_t>(prompt.size());
      req.max_tokens = Uniform(1, Chance(0.5) ? 4 : max_model_len_);
      req.added_at = schedule_calls_;
      requests_[next_id_] = req;
      scheduler_->Add(next_id_, prompt);
      transcript_ << "add " << next_id_ << " " << prompt.size() << "\n";
    }
  }

  void FinishRequest(SequenceId id) {
    Request& req = requests_.at(id);
    if (req.done) return;
    req.done = true;
    max_lifetime_ = std::max(max_lifetime_, schedule_calls_ - req.added_at);
    scheduler_->Finish(id);
    EXPECT_FALSE(scheduler_->contains(id));
    transcript_ << "finish " << id << "\n";
  }

  void AbortRandom() {
    std::vector<SequenceId> live;
    for (const auto& [id, req] : requests_) {
      if (!req.done) live.push_back(id);
    }
    if (live.empty()) return;
    FinishRequest(live[Uniform(0, static_cast<int64_t>(live.size()) - 1)]);
    CheckBlocks();
  }

  bool InFlight(SequenceId id) const { return in_flight_ids_.count(id) != 0; }

  int64_t BlocksFor(int64_t tokens) const { return (tokens + block_size_ - 1) / block_size_; }

  // The scheduler's reference counts equal the uses in the tables of the sequences that still
  // hold blocks: those the ranks know, less the ones ended since and not in flight.
  void CheckBlocks() {
    const BlockManager& bm = scheduler_->block_manager();
    absl::Status consistent = bm.CheckConsistency();
    ASSERT_TRUE(consistent.ok()) << consistent;
    if (releases_hidden_) return;  // a preemption in an empty step: ranks learn it later
    std::vector<int32_t> uses(static_cast<size_t>(num_blocks_), 0);
    for (const auto& [id, rank] : ranks_) {
      if (requests_.at(id).done && !InFlight(id)) continue;
      for (int32_t b : rank.table) ++uses[b];
    }
    for (int32_t b = 0; b < num_blocks_; ++b) {
      ASSERT_EQ(bm.ref_count(b), uses[b]) << "block " << b;
    }
  }

  void ScheduleAndCheck() {
    SchedulerStats before = scheduler_->stats();
    SchedulerOutput out = scheduler_->Schedule();
    ++schedule_calls_;
    last_empty_ = out.empty();
    SchedulerStats after = scheduler_->stats();
    ASSERT_LE(after.running, config_.max_num_seqs);
    if (out.empty()) {
      ASSERT_EQ(out.step_id, 0u);
      ASSERT_TRUE(out.released.empty());
      // Liveness: with nothing in flight, work that exists can always run.
      ASSERT_FALSE(in_flight_.empty() && scheduler_->has_work())
          << "nothing scheduled, nothing in flight, yet work remains";
      if (after.preemptions != before.preemptions) releases_hidden_ = true;
      TrackWaits(out);
      CheckBlocks();
      return;
    }
    releases_hidden_ = false;
    ++steps_;
    ASSERT_EQ(out.step_id, ++last_step_id_);
    transcript_ << "step " << out.step_id << " rel";
    for (SequenceId id : out.released) transcript_ << " " << id;
    // Released ids are ones the ranks know; they forget them first.
    for (SequenceId id : out.released) {
      ASSERT_EQ(ranks_.count(id), 1u) << "released unknown sequence " << id;
      ASSERT_FALSE(InFlight(id)) << "released sequence " << id << " is in flight";
      ranks_.erase(id);
    }
    int64_t total = 0;
    bool multi_seen = false;
    std::set<SequenceId> ids;
    for (const ScheduledSequence& s : out.sequences) {
      transcript_ << " | " << s.id << " " << s.is_new << " " << s.num_computed_tokens << "+"
                  << s.num_scheduled_tokens << " " << s.samples << " b";
      for (int32_t b : s.block_ids) transcript_ << " " << b;
      ASSERT_TRUE(ids.insert(s.id).second) << "sequence twice in a step";
      ASSERT_FALSE(InFlight(s.id)) << "sequence " << s.id << " in two steps in flight";
      ASSERT_GE(s.num_scheduled_tokens, 1);
      total += s.num_scheduled_tokens;
      // Decodes first.
      if (s.num_scheduled_tokens > 1) multi_seen = true;
      ASSERT_FALSE(multi_seen && s.num_scheduled_tokens == 1) << "a decode after a prefill";
      const Request& req = requests_.at(s.id);
      ASSERT_FALSE(req.done) << "finished sequence " << s.id << " scheduled";
      const int64_t len = static_cast<int64_t>(req.tokens.size());
      ASSERT_LT(len, max_model_len_);
      ASSERT_LE(s.num_computed_tokens + s.num_scheduled_tokens, len);
      ASSERT_EQ(s.samples, s.num_computed_tokens + s.num_scheduled_tokens == len);
      ASSERT_EQ(scheduler_->tokens(s.id), req.tokens);
      RankSequence* rank;
      if (s.is_new) {
        ASSERT_EQ(ranks_.count(s.id), 0u) << "new sequence " << s.id << " already known";
        ASSERT_EQ(s.num_computed_tokens % block_size_, 0);
        ASSERT_LE(s.num_computed_tokens, (len - 1) / block_size_ * block_size_);
        if (!config_.enable_prefix_caching) {
          ASSERT_EQ(s.num_computed_tokens, 0);
        }
        rank = &ranks_[s.id];
        rank->computed = s.num_computed_tokens;
        if (head_ == s.id) head_ = 0;
      } else {
        ASSERT_EQ(ranks_.count(s.id), 1u) << "continuing sequence " << s.id << " unknown";
        rank = &ranks_[s.id];
        ASSERT_EQ(s.num_computed_tokens, rank->computed);
      }
      rank->table.insert(rank->table.end(), s.block_ids.begin(), s.block_ids.end());
      ASSERT_EQ(static_cast<int64_t>(rank->table.size()),
                BlocksFor(s.num_computed_tokens + s.num_scheduled_tokens));
      for (int32_t b : rank->table) ASSERT_TRUE(b >= 0 && b < num_blocks_);
      // Every position the step reads holds the KV of this sequence's tokens up to there.
      std::vector<uint64_t> fp = PrefixFingerprints(req.tokens, s.num_computed_tokens);
      for (int64_t p = 0; p < s.num_computed_tokens; ++p) {
        int64_t slot = rank->table[p / block_size_] * block_size_ + p % block_size_;
        ASSERT_EQ(kv_[slot], fp[p])
            << "sequence " << s.id << " position " << p << (s.is_new ? " (prefix-cache hit)" : "");
      }
    }
    transcript_ << "\n";
    ASSERT_EQ(total, out.num_tokens);
    ASSERT_LE(total, config_.max_num_batched_tokens);
    ASSERT_LE(static_cast<int64_t>(out.sequences.size()), config_.max_num_seqs);
    // The blocks a step writes belong to the writer alone.
    const BlockManager& bm = scheduler_->block_manager();
    for (const ScheduledSequence& s : out.sequences) {
      const RankSequence& rank = ranks_.at(s.id);
      for (int64_t b = s.num_computed_tokens / block_size_;
           b < BlocksFor(s.num_computed_tokens + s.num_scheduled_tokens); ++b) {
        ASSERT_EQ(bm.ref_count(rank.table[b]), 1) << "sequence " << s.id << " writes shared block";
      }
    }
    TrackWaits(out);
    for (const ScheduledSequence& s : out.sequences) in_flight_ids_.insert(s.id);
    in_flight_.push_back(std::move(out));
    CheckBlocks();
  }

  // Starvation bounds: the oldest waiting sequence and the oldest running one.
  void TrackWaits(const SchedulerOutput& out) {
    // The head: the oldest live request the ranks do not know (waiting or preempted).
    SequenceId head = 0;
    SequenceId oldest_running = 0;
    for (const auto& [id, req] : requests_) {  // ids grow with arrival
      if (req.done) continue;
      if (ranks_.count(id) == 0) {
        if (head == 0) head = id;
      } else if (oldest_running == 0) {
        oldest_running = id;
      }
    }
    if (head != head_) {
      head_ = head;
      head_wait_ = 0;
    } else if (head != 0) {
      max_head_wait_ = std::max(max_head_wait_, ++head_wait_);
    }
    // The oldest running sequence, when not in flight, is scheduled at once unless it waits for
    // blocks held by steps in flight.
    bool scheduled = false;
    for (const ScheduledSequence& s : out.sequences) scheduled |= s.id == oldest_running;
    if (oldest_running != 0 && !scheduled && !InFlight(oldest_running)) {
      max_oldest_skip_ = std::max(max_oldest_skip_, ++oldest_skip_);
    } else {
      oldest_skip_ = 0;
    }
    ASSERT_LE(oldest_skip_, depth_ + 1)
        << "the oldest running sequence " << oldest_running << " starves";
    // The head waits only for older sequences, all running (it is the oldest not running): they
    // progress in parallel, each at least every depth + 1 calls, and end within max_model_len
    // tokens; twice that allows for recomputing one preempted meanwhile.
    ASSERT_LE(head_wait_, 2 * (depth_ + 1) * (max_model_len_ + 1))
        << "the head of the queue " << head_ << " starves";
  }

  void CompleteAndCheck() {
    // Mostly in order (a pipeline), sometimes the second oldest first.
    size_t which = in_flight_.size() >= 2 && Chance(0.2) ? 1 : 0;
    SchedulerOutput step = std::move(in_flight_[which]);
    in_flight_.erase(in_flight_.begin() + static_cast<ptrdiff_t>(which));
    for (const ScheduledSequence& s : step.sequences) in_flight_ids_.erase(s.id);
    std::vector<SampledTokenOf> sampled;
    for (const ScheduledSequence& s : step.sequences) {
      RankSequence& rank = ranks_.at(s.id);
      Request& req = requests_.at(s.id);
      // The step wrote the KV of its positions.
      std::vector<uint64_t> fp =
          PrefixFingerprints(req.tokens, s.num_computed_tokens + s.num_scheduled_tokens);
      for (int64_t p = s.num_computed_tokens; p < s.num_computed_tokens + s.num_scheduled_tokens;
           ++p) {
        kv_[rank.table[p / block_size_] * block_size_ + p % block_size_] = fp[p];
      }
      rank.computed += s.num_scheduled_tokens;
      if (!s.samples) continue;
      // A finished sequence's token may be passed or not; the scheduler drops it.
      if (req.done && Chance(0.5)) continue;
      // EOS-like token 0 with some chance, else a random token.
      int32_t token = Chance(0.1) ? 0 : static_cast<int32_t>(Uniform(1, vocab_ - 1));
      sampled.push_back({s.id, token});
    }
    std::shuffle(sampled.begin(), sampled.end(), rng_);
    scheduler_->Complete(step, sampled);
    transcript_ << "complete " << step.step_id << "\n";
    for (const SampledTokenOf& t : sampled) {
      Request& req = requests_.at(t.id);
      if (req.done) continue;
      req.tokens.push_back(t.token);
      ASSERT_EQ(scheduler_->tokens(t.id), req.tokens);
      int64_t outputs = static_cast<int64_t>(req.tokens.size()) - req.num_prompt;
      if (t.token == 0 || outputs >= req.max_tokens ||
          static_cast<int64_t>(req.tokens.size()) >= max_model_len_) {
        FinishRequest(t.id);
      }
    }
    CheckBlocks();
  }

  std::mt19937_64 rng_;
  TraceParams params_;
  SchedulerConfig config_;
  int64_t block_size_ = 0, max_model_len_ = 0, num_blocks_ = 0, depth_ = 1, vocab_ = 2;
  std::vector<std::vector<int32_t>> shared_prefixes_;
  std::unique_ptr<Scheduler> scheduler_;

  std::map<SequenceId, Request> requests_;
  std::map<SequenceId, RankSequence> ranks_;
  std::deque<SchedulerOutput> in_flight_;
  std::set<SequenceId> in_flight_ids_;
  std::vector<uint64_t> kv_;  // slot -> fingerprint of the KV written there (0: none)
  SequenceId next_id_ = 0;
  uint64_t last_step_id_ = 0;
  int64_t schedule_calls_ = 0;
  int64_t steps_ = 0;
  bool last_empty_ = false;
  bool releases_hidden_ = false;

  SequenceId head_ = 0;
  int64_t head_wait_ = 0, max_head_wait_ = 0;
  int64_t oldest_skip_ = 0, max_oldest_skip_ = 0;
  int64_t max_lifetime_ = 0;
  std::ostringstream transcript_;
};

TEST(SchedulerFuzzTest, RandomTracesKeepEveryInvariant) {
  Observed observed;
  constexpr int kTraces = 250;
  for (uint64_t seed = 1; seed <= kTraces; ++seed) {
    Trace trace({.seed = seed});
    SCOPED_TRACE(trace.Describe());
    trace.Run(observed);
    if (::testing::Test::HasFailure()) return;
  }
  // Make sure the traces exercised what they are meant to.
  EXPECT_GT(observed.preemptions, 100);
  EXPECT_GT(observed.hits, 1000);
  std::printf(
      "%d traces, %lld steps: %lld preemptions, %lld prefix-hit tokens; longest head-of-queue "
      "wait %lld calls, oldest running skipped %lld calls in a row, longest lifetime %lld calls, "
      "longest drain %lld calls\n",
      kTraces, static_cast<long long>(observed.steps), static_cast<long long>(observed.preemptions),
      static_cast<long long>(observed.hits), static_cast<long long>(observed.max_head_wait),
      static_cast<long long>(observed.max_oldest_skip),
      static_cast<long long>(observed.max_lifetime), static_cast<long long>(observed.drain_calls));
}

TEST(SchedulerFuzzTest, SameTraceGivesTheSameOutputs) {
  for (uint64_t seed = 1000; seed < 1012; ++seed) {
    Observed unused;
    Trace first({.seed = seed});
    Trace second({.seed = seed});
    SCOPED_TRACE(first.Describe());
    std::string a = first.Run(unused);
    std::string b = second.Run(unused);
    ASSERT_FALSE(a.empty());
    ASSERT_EQ(a, b);
  }
}

}  // namespace
}  // namespace sparkstack
