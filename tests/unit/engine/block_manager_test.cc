#include "runtime/engine/block_manager.h"

#include <cstdint>
#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparkstack {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Every block hashes to the same bucket: only the content checks tell blocks apart.
uint64_t CollidingHash(uint64_t, std::span<const int32_t>) { return 42; }

std::vector<int32_t> Iota(int64_t n, int32_t first) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

// Allocates blocks for `tokens` (after the cached prefix it finds), marks them computed and
// registers them, as the scheduler does for a sequence whose prefill completed.
BlockTable Fill(BlockManager& bm, const std::vector<int32_t>& tokens) {
  BlockTable table;
  std::vector<int32_t> hits;
  int64_t bs = bm.block_size();
  bm.FindCachedPrefix(tokens, (static_cast<int64_t>(tokens.size()) - 1) / bs, table, hits);
  bm.AcquireCachedPrefix(hits, static_cast<int64_t>(tokens.size()), table);
  EXPECT_TRUE(bm.Grow(table, static_cast<int64_t>(tokens.size())));
  bm.Cache(table, tokens, static_cast<int64_t>(tokens.size()));
  EXPECT_TRUE(bm.CheckConsistency().ok()) << bm.CheckConsistency();
  return table;
}

std::vector<int32_t> Lookup(const BlockManager& bm, const std::vector<int32_t>& tokens) {
  BlockTable scratch;
  std::vector<int32_t> hits;
  bm.FindCachedPrefix(tokens, INT64_MAX, scratch, hits);
  return hits;
}

TEST(BlockManagerTest, GrowAllocatesExactlyAndFailsWithoutChange) {
  BlockManager bm({.num_blocks = 5, .block_size = 4});
  BlockTable a;
  ASSERT_TRUE(bm.Grow(a, 5));  // ceil(5 / 4) = 2 blocks
  EXPECT_EQ(a.blocks.size(), 2u);
  ASSERT_TRUE(bm.Grow(a, 8));  // still 2
  EXPECT_EQ(a.blocks.size(), 2u);
  BlockTable b;
  EXPECT_FALSE(bm.Grow(b, 13));  // 4 blocks > 3 free
  EXPECT_THAT(b.blocks, IsEmpty());
  EXPECT_EQ(bm.num_free_blocks(), 3);
  ASSERT_TRUE(bm.Grow(b, 12));
  EXPECT_EQ(bm.num_free_blocks(), 0);
  for (int32_t block : a.blocks) EXPECT_EQ(bm.ref_count(block), 1);
  bm.Free(a);
  bm.Free(a);  // a freed table is empty: nothing happens
  EXPECT_EQ(bm.num_free_blocks(), 2);
  bm.Free(b);
  EXPECT_EQ(bm.num_free_blocks(), 5);
  EXPECT_TRUE(bm.CheckConsistency().ok());
}

TEST(BlockManagerTest, FullBlocksHitPartialBlocksDoNot) {
  BlockManager bm({.num_blocks = 16, .block_size = 4});
  std::vector<int32_t> tokens = Iota(11, 100);  // 2 full blocks + 3 tokens
  BlockTable a = Fill(bm, tokens);
  EXPECT_EQ(a.num_cached, 2);
  // Same 11 tokens then more: the two full blocks hit, the third (partial in `a`) was never
  // cached even though the query's third block is full.
  std::vector<int32_t> longer = Iota(16, 100);
  EXPECT_THAT(Lookup(bm, longer), ElementsAre(a.blocks[0], a.blocks[1]));
  // A query diverging in the second block hits only the first.
  std::vector<int32_t> diverging = tokens;
  diverging[6] = 7;
  EXPECT_THAT(Lookup(bm, diverging), ElementsAre(a.blocks[0]));
  // Diverging in the first block: nothing, although the second block's tokens match.
  diverging = tokens;
  diverging[0] = 7;
  EXPECT_THAT(Lookup(bm, diverging), IsEmpty());
  // max_blocks caps the hit.
  BlockTable scratch;
  std::vector<int32_t> hits;
  bm.FindCachedPrefix(longer, 1, scratch, hits);
  EXPECT_THAT(hits, ElementsAre(a.blocks[0]));
}

TEST(BlockManagerTest, SharedPrefixCountsReferencesAndHits) {
  BlockManager bm({.num_blocks = 16, .block_size = 4});
  std::vector<int32_t> tokens = Iota(9, 0);
  BlockTable a = Fill(bm, tokens);
  BlockTable b = Fill(bm, tokens);  // hits floor(8 / 4) = 2 blocks, computes the last token
  EXPECT_EQ(b.blocks[0], a.blocks[0]);
  EXPECT_EQ(b.blocks[1], a.blocks[1]);
  EXPECT_NE(b.blocks[2], a.blocks[2]);
  EXPECT_EQ(bm.ref_count(a.blocks[0]), 2);
  EXPECT_EQ(bm.ref_count(a.blocks[2]), 1);
  EXPECT_EQ(bm.prefix_cache_queries(), 18);
  EXPECT_EQ(bm.prefix_cache_hits(), 8);
  EXPECT_EQ(bm.num_used_blocks(), 4);
  bm.Free(a);
  EXPECT_EQ(bm.ref_count(b.blocks[0]), 1);
  EXPECT_EQ(bm.num_used_blocks(), 3);
  bm.Free(b);
  EXPECT_EQ(bm.num_used_blocks(), 0);
  EXPECT_EQ(bm.num_cached_free_blocks(), 2);  // the two full blocks stay cached
  EXPECT_TRUE(bm.CheckConsistency().ok());
}

TEST(BlockManagerTest, UncachedFreeBlocksAreReusedBeforeEvicting) {
  BlockManager bm({.num_blocks = 4, .block_size = 2});
  BlockTable a = Fill(bm, Iota(4, 0));  // 2 full cached blocks
  bm.Free(a);
  BlockTable b;
  ASSERT_TRUE(bm.Grow(b, 4));  // the 2 never-used blocks, no eviction
  EXPECT_EQ(bm.num_cached_free_blocks(), 2);
  EXPECT_EQ(Lookup(bm, Iota(4, 0)).size(), 2u);
  ASSERT_TRUE(bm.Grow(b, 6));  // now one cached block must go
  EXPECT_EQ(bm.num_cached_free_blocks(), 1);
  EXPECT_TRUE(bm.CheckConsistency().ok());
}

TEST(BlockManagerTest, EvictsLeastRecentlyFreedAndTailBeforeHead) {
  BlockManager bm({.num_blocks = 6, .block_size = 2});
  std::vector<int32_t> x = {1, 2, 3, 4, 5, 6};  // 3 full blocks
  std::vector<int32_t> y = {7, 8, 9, 10, 11, 12};
  BlockTable a = Fill(bm, x);
  BlockTable b = Fill(bm, y);
  bm.Free(a);  // x's blocks freed first: they are the least recently used
  bm.Free(b);
  EXPECT_EQ(bm.num_cached_free_blocks(), 6);
  BlockTable c;
  // Each new block evicts one: x's last block, then its middle, then its first; then y's last.
  ASSERT_TRUE(bm.Grow(c, 2));
  EXPECT_EQ(Lookup(bm, x).size(), 2u);
  EXPECT_EQ(Lookup(bm, y).size(), 3u);
  ASSERT_TRUE(bm.Grow(c, 4));
  EXPECT_EQ(Lookup(bm, x).size(), 1u);
  ASSERT_TRUE(bm.Grow(c, 6));
  EXPECT_EQ(Lookup(bm, x).size(), 0u);
  EXPECT_EQ(Lookup(bm, y).size(), 3u);
  ASSERT_TRUE(bm.Grow(c, 8));
  EXPECT_EQ(Lookup(bm, y).size(), 2u);
  EXPECT_TRUE(bm.CheckConsistency().ok());
}

TEST(BlockManagerTest, HitMovesABlockOutOfTheLruAndRefreshesIt) {
  BlockManager bm({.num_blocks = 4, .block_size = 2});
  std::vector<int32_t> x = {1, 2, 3, 4};
  std::vector<int32_t> y = {5, 6, 7, 8};
  BlockTable a = Fill(bm, x);
  BlockTable b = Fill(bm, y);
  bm.Free(a);
  bm.Free(b);  // LRU: x's blocks then y's
  // Taking x's prefix again (a hit on both blocks plus one new block for the last token ... here
  // the whole query is x + 1 token) pulls x's blocks out of the LRU list.
  std::vector<int32_t> x_more = {1, 2, 3, 4, 9};
  BlockTable c;
  std::vector<int32_t> hits;
  bm.FindCachedPrefix(x_more, 2, c, hits);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_TRUE(bm.CanAllocate(hits, 1));   // 2 taken from the LRU + 1 evicted = 3 <= 4 free
  EXPECT_FALSE(bm.CanAllocate(hits, 3));  // 5 > 4
  bm.AcquireCachedPrefix(hits, 5, c);
  ASSERT_TRUE(bm.Grow(c, 5));  // evicts y's last block, not x's
  EXPECT_EQ(Lookup(bm, y).size(), 1u);
  bm.Free(c);  // x's blocks are now the most recently freed
  BlockTable d;
  ASSERT_TRUE(bm.Grow(d, 2));  // the uncached block c had
  ASSERT_TRUE(bm.Grow(d, 4));  // evicts y's first block (older than x's)
  EXPECT_EQ(Lookup(bm, y).size(), 0u);
  EXPECT_EQ(Lookup(bm, x).size(), 2u);
  EXPECT_TRUE(bm.CheckConsistency().ok());
}

TEST(BlockManagerTest, HashCollisionsNeverServeOtherContent) {
  BlockManager bm({.num_blocks = 32, .block_size = 3, .hasher = &CollidingHash});
  // Same second block under different first blocks, and same first block twice.
  std::vector<int32_t> p = {1, 2, 3, 4, 5, 6, 7};
  std::vector<int32_t> q = {9, 9, 9, 4, 5, 6, 7};
  std::vector<int32_t> r = {1, 2, 3, 8, 8, 8, 7};
  BlockTable a = Fill(bm, p);
  BlockTable b = Fill(bm, q);
  BlockTable c = Fill(bm, r);
  EXPECT_EQ(c.blocks[0], a.blocks[0]);  // the true shared block
  EXPECT_NE(b.blocks[1], a.blocks[1]);  // equal tokens, different parent: not shared
  EXPECT_THAT(Lookup(bm, p), ElementsAre(a.blocks[0], a.blocks[1]));
  EXPECT_THAT(Lookup(bm, q), ElementsAre(b.blocks[0], b.blocks[1]));
  EXPECT_THAT(Lookup(bm, r), ElementsAre(a.blocks[0], c.blocks[1]));
  // A second block alone, or under an unknown first block, never hits.
  EXPECT_THAT(Lookup(bm, {4, 5, 6, 4, 5, 6}), IsEmpty());
  EXPECT_THAT(Lookup(bm, {7, 7, 7, 4, 5, 6}), IsEmpty());
  // Evicting p's second block keeps q's and r's findable in the shared bucket.
  bm.Free(a);
  BlockTable filler;
  ASSERT_TRUE(bm.Grow(filler, 3 * bm.num_free_blocks()));
  EXPECT_THAT(Lookup(bm, p), ElementsAre(c.blocks[0]));  // the first block is still c's
  EXPECT_THAT(Lookup(bm, q), ElementsAre(b.blocks[0], b.blocks[1]));
  EXPECT_TRUE(bm.CheckConsistency().ok()) << bm.CheckConsistency();
}

TEST(BlockManagerTest, DuplicateBlocksShareAnIdentity) {
  // Two sequences computed the same first block separately (admitted in the same step); a third
  // one's chain continues through either copy.
  BlockManager bm({.num_blocks = 16, .block_size = 2});
  std::vector<int32_t> first = {1, 2, 3};
  BlockTable a, b;
  ASSERT_TRUE(bm.Grow(a, 3));
  ASSERT_TRUE(bm.Grow(b, 5));
  std::vector<int32_t> longer = {1, 2, 3, 4, 5};
  bm.Cache(a, first, 3);
  bm.Cache(b, longer, 5);  // b's first block duplicates a's; its second continues the chain
  EXPECT_NE(a.blocks[0], b.blocks[0]);
  std::vector<int32_t> b_blocks = b.blocks;
  EXPECT_THAT(Lookup(bm, longer), ElementsAre(b_blocks[0], b_blocks[1]));
  // With b freed its copy of the first block is unreferenced: the lookup prefers a's (taking it
  // costs no free block) and still continues into b's second block.
  bm.Free(b);
  EXPECT_THAT(Lookup(bm, longer), ElementsAre(a.blocks[0], b_blocks[1]));
  EXPECT_TRUE(bm.CheckConsistency().ok()) << bm.CheckConsistency();
}

TEST(BlockManagerTest, PrefixCachingOffNeverCaches) {
  BlockManager bm({.num_blocks = 4, .block_size = 2, .enable_prefix_caching = false});
  BlockTable a = Fill(bm, {1, 2, 3, 4});
  EXPECT_EQ(a.num_cached, 0);
  EXPECT_FALSE(bm.is_cached(a.blocks[0]));
  bm.Free(a);
  EXPECT_EQ(bm.num_cached_free_blocks(), 0);
  EXPECT_THAT(Lookup(bm, {1, 2, 3, 4}), IsEmpty());
  EXPECT_EQ(bm.prefix_cache_queries(), 0);
}

}  // namespace
}  // namespace sparkstack
