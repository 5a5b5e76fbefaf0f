// One test per scheduling rule, on small hand-checked cases (the expected values are derived in
// the comments from the policy in scheduler.h). scheduler_fuzz_test.cc checks the invariants on
// random traces.
#include "runtime/engine/scheduler.h"

#include <cstdint>
#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/engine/block_manager.h"

namespace sparkstack {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

SchedulerConfig Config(int64_t max_seqs, int64_t max_tokens, int64_t max_model_len,
                       int64_t num_blocks, int64_t block_size) {
  SchedulerConfig config;
  config.max_num_seqs = max_seqs;
  config.max_num_batched_tokens = max_tokens;
  config.max_model_len = max_model_len;
  config.num_blocks = num_blocks;
  config.block_size = block_size;
  return config;
}

std::unique_ptr<Scheduler> Make(const SchedulerConfig& config) {
  auto scheduler = Scheduler::Create(config);
  EXPECT_TRUE(scheduler.ok()) << scheduler.status();
  return std::move(scheduler).value();
}

std::vector<int32_t> Iota(int64_t n, int32_t first = 0) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

// Completes `step` with `token` sampled for each sampling sequence.
void CompleteAll(Scheduler& s, const SchedulerOutput& step, int32_t token = 7) {
  std::vector<SampledTokenOf> sampled;
  for (const ScheduledSequence& seq : step.sequences) {
    if (seq.samples) sampled.push_back({seq.id, token});
  }
  s.Complete(step, sampled);
}

std::vector<SequenceId> Ids(const SchedulerOutput& out) {
  std::vector<SequenceId> ids;
  for (const ScheduledSequence& seq : out.sequences) ids.push_back(seq.id);
  return ids;
}

const ScheduledSequence& Get(const SchedulerOutput& out, SequenceId id) {
  for (const ScheduledSequence& seq : out.sequences) {
    if (seq.id == id) return seq;
  }
  ADD_FAILURE() << "sequence " << id << " not scheduled";
  static const ScheduledSequence kNone;
  return kNone;
}

TEST(SchedulerTest, CreateRejectsMisconfiguration) {
  EXPECT_TRUE(Scheduler::Create(Config(4, 16, 32, 8, 4)).ok());
  EXPECT_FALSE(Scheduler::Create(Config(0, 16, 32, 8, 4)).ok());  // no sequence
  EXPECT_FALSE(Scheduler::Create(Config(4, 3, 32, 8, 4)).ok());   // budget < cap
  EXPECT_FALSE(Scheduler::Create(Config(4, 16, 1, 8, 4)).ok());   // no room to generate
  EXPECT_FALSE(Scheduler::Create(Config(4, 16, 32, 7, 4)).ok());  // 32 tokens need 8 blocks
  EXPECT_FALSE(Scheduler::Create(Config(4, 16, 32, 8, 0)).ok());  // block size
  EXPECT_FALSE(Scheduler::Create(Config(4, 16, 32, int64_t{1} << 31, 4)).ok());
  auto bad = Scheduler::Create(Config(4, 3, 32, 8, 4));
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("max_num_batched_tokens"));
}

TEST(SchedulerTest, TokenBudgetChunksAndDecodesFirst) {
  auto s = Make(Config(4, 10, 100, 64, 4));
  s->Add(1, Iota(7));
  s->Add(2, Iota(12, 100));
  s->Add(3, Iota(5, 200));
  // Step 1: 1's whole prompt (7), then 3 of 2's 12 tokens; 3 gets no budget.
  SchedulerOutput out = s->Schedule();
  EXPECT_EQ(out.step_id, 1u);
  EXPECT_EQ(out.num_tokens, 10);
  ASSERT_THAT(Ids(out), ElementsAre(1, 2));
  EXPECT_TRUE(out.sequences[0].is_new);
  EXPECT_EQ(out.sequences[0].num_scheduled_tokens, 7);
  EXPECT_TRUE(out.sequences[0].samples);
  EXPECT_EQ(out.sequences[0].block_ids.size(), 2u);  // ceil(7 / 4)
  EXPECT_EQ(out.sequences[1].num_scheduled_tokens, 3);
  EXPECT_FALSE(out.sequences[1].samples);
  EXPECT_EQ(out.sequences[1].block_ids.size(), 1u);
  EXPECT_EQ(s->stats().waiting, 1);
  CompleteAll(*s, out, 50);
  EXPECT_THAT(s->tokens(1), ElementsAre(0, 1, 2, 3, 4, 5, 6, 50));
  // Step 2: 1 decodes (1 token reserved), 2 takes the remaining 9 of the budget and finishes its
  // prompt; 3 still waits.
  out = s->Schedule();
  EXPECT_EQ(out.num_tokens, 10);
  ASSERT_THAT(Ids(out), ElementsAre(1, 2));
  EXPECT_FALSE(out.sequences[0].is_new);
  EXPECT_EQ(out.sequences[0].num_computed_tokens, 7);
  EXPECT_EQ(out.sequences[0].num_scheduled_tokens, 1);
  EXPECT_THAT(out.sequences[0].block_ids, IsEmpty());  // token 7 fits block 1
  EXPECT_EQ(out.sequences[1].num_computed_tokens, 3);
  EXPECT_EQ(out.sequences[1].num_scheduled_tokens, 9);
  EXPECT_TRUE(out.sequences[1].samples);
  EXPECT_EQ(out.sequences[1].block_ids.size(), 2u);  // 1 -> ceil(12 / 4) = 3 blocks
  CompleteAll(*s, out);
  // Step 3: two decodes, then 3's whole prompt (5 <= 10 - 2). 1's token 8 opens its third block.
  out = s->Schedule();
  EXPECT_EQ(out.num_tokens, 7);
  ASSERT_THAT(Ids(out), ElementsAre(1, 2, 3));
  EXPECT_EQ(out.sequences[0].block_ids.size(), 1u);
  EXPECT_EQ(out.sequences[1].block_ids.size(), 1u);  // 2's token 12 opens its fourth block
  EXPECT_TRUE(out.sequences[2].is_new);
}

TEST(SchedulerTest, ChunkedPrefillAtOddSizes) {
  auto s = Make(Config(1, 10, 64, 16, 4));
  s->Add(9, Iota(37));
  // Chunks of 10, 10, 10, 7; the table grows to ceil(end / 4) blocks: 3, 5, 8, 10.
  const int64_t kChunks[] = {10, 10, 10, 7};
  const size_t kNewBlocks[] = {3, 2, 3, 2};
  int64_t computed = 0;
  for (int i = 0; i < 4; ++i) {
    SchedulerOutput out = s->Schedule();
    ASSERT_EQ(out.sequences.size(), 1u);
    const ScheduledSequence& seq = out.sequences[0];
    EXPECT_EQ(seq.is_new, i == 0);
    EXPECT_EQ(seq.num_computed_tokens, computed);
    EXPECT_EQ(seq.num_scheduled_tokens, kChunks[i]);
    EXPECT_EQ(seq.block_ids.size(), kNewBlocks[i]);
    EXPECT_EQ(seq.samples, i == 3);
    computed += kChunks[i];
    CompleteAll(*s, out);
  }
  EXPECT_EQ(s->tokens(9).size(), 38u);
  SchedulerOutput out = s->Schedule();
  ASSERT_EQ(out.sequences.size(), 1u);
  EXPECT_EQ(out.sequences[0].num_computed_tokens, 37);
  EXPECT_EQ(out.sequences[0].num_scheduled_tokens, 1);
}

TEST(SchedulerTest, SequenceCapBoundsRunningSequences) {
  auto s = Make(Config(2, 100, 64, 32, 4));
  s->Add(1, Iota(3));
  s->Add(2, Iota(3));
  s->Add(3, Iota(3));
  SchedulerOutput out = s->Schedule();
  EXPECT_THAT(Ids(out), ElementsAre(1, 2));
  CompleteAll(*s, out);
  out = s->Schedule();
  EXPECT_THAT(Ids(out), ElementsAre(1, 2));  // 3 waits although the budget has room
  CompleteAll(*s, out);
  s->Finish(1);
  out = s->Schedule();
  EXPECT_THAT(Ids(out), ElementsAre(2, 3));
  EXPECT_THAT(out.released, ElementsAre(1));
  EXPECT_EQ(s->stats().running, 2);
}

TEST(SchedulerTest, NewerDecodeGoesBeforeOlderPrefillChunk) {
  // Pipeline of two: 1's first chunk is in flight when 2 is admitted; next, 2 decodes while 1
  // continues its prompt, and the batch puts the decode first.
  auto s = Make(Config(4, 8, 64, 32, 4));
  s->Add(1, Iota(20));
  SchedulerOutput a = s->Schedule();
  ASSERT_THAT(Ids(a), ElementsAre(1));
  EXPECT_EQ(a.sequences[0].num_scheduled_tokens, 8);
  s->Add(2, Iota(2, 50));
  SchedulerOutput b = s->Schedule();
  ASSERT_THAT(Ids(b), ElementsAre(2));
  CompleteAll(*s, a);
  CompleteAll(*s, b);
  SchedulerOutput c = s->Schedule();
  ASSERT_THAT(Ids(c), ElementsAre(2, 1));
  EXPECT_EQ(c.sequences[0].num_scheduled_tokens, 1);
  EXPECT_EQ(c.sequences[1].num_scheduled_tokens, 7);  // 8 minus the decode's reserved token
}

TEST(SchedulerTest, PrefixCacheHitsFullBlocksOnly) {
  auto s = Make(Config(8, 64, 64, 32, 4));
  std::vector<int32_t> base = Iota(10, 100);
  s->Add(1, base);
  SchedulerOutput out = s->Schedule();
  std::vector<int32_t> table = out.sequences[0].block_ids;
  ASSERT_EQ(table.size(), 3u);
  CompleteAll(*s, out);  // 10 tokens computed: blocks 0 and 1 are full and enter the cache
  EXPECT_EQ(s->stats().prefix_cache_queries, 10);
  EXPECT_EQ(s->stats().prefix_cache_hits, 0);

  // (id, prompt, expected hit): the hit is at most floor((len - 1) / 4) full blocks.
  struct Case {
    SequenceId id;
    std::vector<int32_t> prompt;
    int64_t hit;
  };
  std::vector<int32_t> diverging = base;
  diverging[5] = 1;
  std::vector<Case> cases = {
      {2, {base.begin(), base.begin() + 9}, 8},      // two blocks + 1 token: hits both
      {3, {base.begin(), base.begin() + 8}, 4},      // exactly two blocks: the last is computed
      {4, {base.begin(), base.begin() + 6}, 4},      // a block and a half
      {5, {base.begin(), base.begin() + 3}, 0},      // less than a block
      {6, diverging, 4},                             // diverges in the second block
      {7, {base.begin() + 4, base.begin() + 10}, 0}  // the second block's tokens, no parent
  };
  int64_t queries = 10, hits = 0;
  for (const Case& c : cases) s->Add(c.id, c.prompt);
  out = s->Schedule();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.id);
    const ScheduledSequence& seq = Get(out, c.id);
    EXPECT_TRUE(seq.is_new);
    EXPECT_EQ(seq.num_computed_tokens, c.hit);
    EXPECT_EQ(seq.num_scheduled_tokens, static_cast<int64_t>(c.prompt.size()) - c.hit);
    EXPECT_TRUE(seq.samples);
    for (int64_t b = 0; b < c.hit / 4; ++b) EXPECT_EQ(seq.block_ids[b], table[b]);
    if (c.hit == 0 && c.prompt.size() > 4) {
      EXPECT_NE(seq.block_ids[0], table[0]);
    }
    queries += static_cast<int64_t>(c.prompt.size());
    hits += c.hit;
  }
  EXPECT_EQ(Get(out, 2).num_scheduled_tokens, 1);  // a full-prompt hit computes one token
  EXPECT_EQ(s->stats().prefix_cache_queries, queries);
  EXPECT_EQ(s->stats().prefix_cache_hits, hits);
}

TEST(SchedulerTest, BlocksEnterTheCacheOnlyWhenTheirStepCompletes) {
  auto s = Make(Config(8, 64, 64, 32, 4));
  s->Add(1, Iota(9));
  SchedulerOutput a = s->Schedule();
  s->Add(2, Iota(9));
  SchedulerOutput b = s->Schedule();  // 1 is in flight: its KV is not written yet
  EXPECT_EQ(Get(b, 2).num_computed_tokens, 0);
  CompleteAll(*s, a);
  s->Add(3, Iota(9));
  SchedulerOutput c = s->Schedule();
  EXPECT_EQ(Get(c, 3).num_computed_tokens, 8);
  EXPECT_EQ(Get(c, 3).block_ids[0], a.sequences[0].block_ids[0]);
}

uint64_t CollidingHash(uint64_t, std::span<const int32_t>) { return 7; }

TEST(SchedulerTest, ForcedHashCollisionsNeverReuseOtherKv) {
  SchedulerConfig config = Config(8, 64, 64, 32, 4);
  config.block_hasher = &CollidingHash;
  auto s = Make(config);
  s->Add(1, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  SchedulerOutput out = s->Schedule();
  CompleteAll(*s, out);
  s->Add(2, {9, 9, 9, 9, 5, 6, 7, 8, 9});  // same second block, other first block
  s->Add(3, {5, 6, 7, 8, 1, 2, 3, 4, 9});  // blocks swapped
  s->Add(4, {1, 2, 3, 4, 5, 6, 7, 8, 0});  // the true prefix
  out = s->Schedule();
  EXPECT_EQ(Get(out, 2).num_computed_tokens, 0);
  EXPECT_EQ(Get(out, 3).num_computed_tokens, 0);
  EXPECT_EQ(Get(out, 4).num_computed_tokens, 8);
  EXPECT_TRUE(s->block_manager().CheckConsistency().ok());
}

TEST(SchedulerTest, PreemptsTheNewestAndResumesWithAllItsTokens) {
  // 12 blocks of 2 tokens. Three sequences of 6 tokens (3 blocks each) leave 3 blocks free.
  auto s = Make(Config(4, 64, 24, 12, 2));
  s->Add(1, Iota(6, 10));
  s->Add(2, Iota(6, 20));
  s->Add(3, Iota(6, 30));
  SchedulerOutput out = s->Schedule();
  std::vector<int32_t> table3 = Get(out, 3).block_ids;
  CompleteAll(*s, out, 1);  // each has 7 tokens: decoding position 6 needs a 4th block
  out = s->Schedule();      // takes the 3 free blocks
  EXPECT_EQ(out.sequences.size(), 3u);
  CompleteAll(*s, out, 2);  // position 7 fits the 4th block
  out = s->Schedule();
  EXPECT_EQ(out.sequences.size(), 3u);
  EXPECT_THAT(out.released, IsEmpty());
  CompleteAll(*s, out, 3);  // 9 tokens each: position 8 needs a 5th block, none is free
  EXPECT_THAT(s->tokens(3), ElementsAre(30, 31, 32, 33, 34, 35, 1, 2, 3));
  // 1 asks first: 3, the newest, is preempted (its 4 blocks freed, the full ones stay cached);
  // 2 takes another of them. No admission after a preemption, although 4 would fit.
  s->Add(4, {99});
  out = s->Schedule();
  EXPECT_THAT(Ids(out), ElementsAre(1, 2));
  EXPECT_THAT(out.released, ElementsAre(3));
  EXPECT_EQ(s->stats().preemptions, 1);
  EXPECT_EQ(s->stats().waiting, 2);
  EXPECT_TRUE(s->contains(3));
  CompleteAll(*s, out, 4);
  // 3 waits: of its cached prefix (at most floor(8 / 2) = 4 blocks) the last two were evicted,
  // and its 2 cached blocks plus 3 new ones exceed the 2 free blocks. 4 (newer) fits but waits
  // behind it.
  out = s->Schedule();
  EXPECT_THAT(Ids(out), ElementsAre(1, 2));
  CompleteAll(*s, out, 5);
  s->Finish(1);
  s->Finish(2);
  out = s->Schedule();
  EXPECT_THAT(out.released, ElementsAre(1, 2));
  ASSERT_THAT(Ids(out), ElementsAre(4, 3));  // 4's single token is a decode-shaped query
  const ScheduledSequence& resumed = out.sequences[1];
  EXPECT_TRUE(resumed.is_new);
  // Its freed blocks were evicted tail first, so its first two (full, cached) survived.
  EXPECT_EQ(resumed.num_computed_tokens, 4);
  EXPECT_EQ(resumed.block_ids[0], table3[0]);
  EXPECT_EQ(resumed.block_ids[1], table3[1]);
  EXPECT_EQ(resumed.num_scheduled_tokens, 5);  // recomputes tokens 4..8, outputs included
  EXPECT_TRUE(resumed.samples);
  EXPECT_EQ(resumed.block_ids.size(), 5u);
  EXPECT_THAT(s->tokens(3), ElementsAre(30, 31, 32, 33, 34, 35, 1, 2, 3));
  EXPECT_EQ(s->num_prompt_tokens(3), 6);
  CompleteAll(*s, out, 6);
  EXPECT_THAT(s->tokens(3), ElementsAre(30, 31, 32, 33, 34, 35, 1, 2, 3, 6));
}

TEST(SchedulerTest, NewestPreemptsItselfWhenNothingNewerCanGiveBlocks) {
  // 8 blocks of 2: 1 holds 5 (10 tokens), 2 holds 2 (4 tokens), 1 free.
  auto s = Make(Config(4, 64, 16, 8, 2));
  s->Add(1, Iota(10));
  s->Add(2, Iota(4));
  CompleteAll(*s, s->Schedule());
  // 1 (older) takes the free block for position 10; 2 needs one for position 4 and is the newest.
  SchedulerOutput out = s->Schedule();
  EXPECT_THAT(Ids(out), ElementsAre(1));
  EXPECT_THAT(out.released, ElementsAre(2));
  EXPECT_EQ(s->stats().preemptions, 1);
}

TEST(SchedulerTest, WaitsForBlocksInsteadOfPreemptingWhileStepsAreInFlight) {
  // 8 blocks of 2: 1 holds 6 (12 tokens, its step in flight), 2 holds 2 (4 tokens), none free.
  auto s = Make(Config(4, 64, 16, 8, 2));
  s->Add(1, Iota(12));
  SchedulerOutput a = s->Schedule();
  s->Add(2, Iota(4));
  CompleteAll(*s, s->Schedule());
  s->Add(3, Iota(1));
  // 2 needs a block for position 4; nothing newer can give one, but a step is in flight: 2 waits
  // (keeps its blocks) and 3 is not admitted past it.
  EXPECT_TRUE(s->Schedule().empty());
  EXPECT_EQ(s->stats().preemptions, 0);
  EXPECT_EQ(s->stats().waiting, 1);
  // Once 1's step completes, 1 (older) needs a block for position 12 and preempts 2.
  CompleteAll(*s, a);
  SchedulerOutput b = s->Schedule();
  EXPECT_THAT(Ids(b), ElementsAre(1));
  EXPECT_THAT(b.released, ElementsAre(2));
  EXPECT_EQ(s->stats().preemptions, 1);
}

TEST(SchedulerTest, FinishWhileInFlightFreesAtComplete) {
  auto s = Make(Config(4, 64, 64, 16, 4));
  s->Add(1, Iota(6));
  SchedulerOutput a = s->Schedule();
  EXPECT_EQ(s->stats().blocks_used, 2);
  s->Finish(1);
  EXPECT_FALSE(s->contains(1));
  EXPECT_TRUE(s->has_work());
  EXPECT_EQ(s->stats().blocks_used, 2);  // the step still writes them
  EXPECT_EQ(s->stats().running, 0);
  s->Add(2, Iota(3));
  SchedulerOutput b = s->Schedule();
  EXPECT_THAT(b.released, IsEmpty());
  s->Complete(a, std::vector<SampledTokenOf>{{1, 5}});  // the token is dropped
  EXPECT_EQ(s->stats().blocks_used, 1);
  CompleteAll(*s, b);
  s->Finish(2);  // not in flight: freed now
  EXPECT_EQ(s->stats().blocks_used, 0);
  EXPECT_FALSE(s->has_work());
  // Releases wait for the next non-empty step; a sequence the ranks never saw is not released.
  EXPECT_TRUE(s->Schedule().empty());
  s->Add(3, Iota(2));
  s->Add(4, Iota(2));
  s->Finish(4);
  SchedulerOutput c = s->Schedule();
  EXPECT_THAT(Ids(c), ElementsAre(3));
  EXPECT_THAT(c.released, ElementsAre(1, 2));
}

TEST(SchedulerTest, InFlightSequencesAreNotScheduledAgain) {
  auto s = Make(Config(4, 64, 64, 16, 4));
  s->Add(1, Iota(3));
  s->Add(2, Iota(3));
  SchedulerOutput a = s->Schedule();
  EXPECT_THAT(Ids(a), ElementsAre(1, 2));
  EXPECT_TRUE(s->Schedule().empty());  // both in flight
  s->Add(3, Iota(3));
  SchedulerOutput b = s->Schedule();
  EXPECT_THAT(Ids(b), ElementsAre(3));
  EXPECT_EQ(b.step_id, 2u);
  CompleteAll(*s, b);  // out of order
  SchedulerOutput c = s->Schedule();
  EXPECT_THAT(Ids(c), ElementsAre(3));
  EXPECT_EQ(c.sequences[0].num_computed_tokens, 3);
  CompleteAll(*s, a);
  SchedulerOutput d = s->Schedule();
  EXPECT_THAT(Ids(d), ElementsAre(1, 2));
}

TEST(SchedulerTest, NeverSchedulesASequenceAtMaxModelLen) {
  auto s = Make(Config(4, 64, 6, 4, 2));
  s->Add(1, Iota(5));
  CompleteAll(*s, s->Schedule());
  EXPECT_EQ(s->tokens(1).size(), 6u);
  EXPECT_TRUE(s->Schedule().empty());
  EXPECT_TRUE(s->has_work());
  s->Finish(1);
  EXPECT_FALSE(s->has_work());
}

TEST(SchedulerTest, PrefixCachingOff) {
  SchedulerConfig config = Config(8, 64, 64, 32, 4);
  config.enable_prefix_caching = false;
  auto s = Make(config);
  s->Add(1, Iota(9));
  CompleteAll(*s, s->Schedule());
  s->Add(2, Iota(9));
  SchedulerOutput out = s->Schedule();
  EXPECT_EQ(Get(out, 2).num_computed_tokens, 0);
  EXPECT_EQ(s->stats().prefix_cache_queries, 0);
}

}  // namespace
}  // namespace sparkstack
