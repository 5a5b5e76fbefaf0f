// BlockManager: the KV cache's blocks as the engine sees them (DESIGN.md, "Paged KV cache"). It
// only counts: which block belongs to which sequence's block table, how many tables use each
// block, and which freed blocks still hold a reusable prefix. The KV bytes live in the model's
// KvCache; slot s of the pool is token s % block_size of block s / block_size.
//
// Prefix caching. A block is full once all block_size of its tokens are computed; a full block
// that is registered (Cache) gets an identity: its tokens and its parent's identity (the block
// before it in the table, none for the first). Blocks are found by the hash chain
// hash_i = hasher(hash_{i-1}, tokens of block i), but a hash only names a bucket: a hit also
// compares the block's tokens and its parent's identity with the query's, so a hash collision can
// never serve another prefix's KV. Identities are content ids: two blocks with equal tokens under
// equal parents share one, so a chain may continue through either copy.
//
// Free blocks. A block nobody references is free. Free blocks without an identity are reused
// first; a freed full block keeps its identity and waits in an LRU list until its slot is needed
// (then it is evicted: its identity is dropped). A table is freed last block first, so a
// sequence's prefix outlives its tail.
//
// Not thread-safe: the scheduler (engine core thread) owns it.
#ifndef SPARKSTACK_RUNTIME_ENGINE_BLOCK_MANAGER_H_
#define SPARKSTACK_RUNTIME_ENGINE_BLOCK_MANAGER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

// Aborts with file, line and message when `cond` is false: for broken invariants and API misuse
// by the engine (programmer errors), never for bad user input.
#define SPARKSTACK_ENGINE_CHECK(cond, message)                                                    \
  do {                                                                                            \
    if (!(cond)) ::sparkstack::internal::EngineCheckFailed(__FILE__, __LINE__, #cond, (message)); \
  } while (0)

namespace sparkstack {
namespace internal {
[[noreturn]] void EngineCheckFailed(const char* file, int line, const char* condition,
                                    const char* message);
}  // namespace internal

// Hash of a full block from its parent's hash (kRootBlockHash for a sequence's first block) and
// its tokens. Deterministic across processes and runs.
using BlockHasher = uint64_t (*)(uint64_t parent_hash, std::span<const int32_t> tokens);
inline constexpr uint64_t kRootBlockHash = 0x5350524b42415345ull;
uint64_t HashBlockTokens(uint64_t parent_hash, std::span<const int32_t> tokens);

// One sequence's blocks. Owned by the sequence, changed only through the BlockManager.
struct BlockTable {
  std::vector<int32_t> blocks;  // block i holds the sequence's tokens [i * bs, (i + 1) * bs)
  int64_t num_cached = 0;       // leading blocks registered in the prefix cache
  // hash chain of the sequence's full blocks computed so far: a property of the tokens, kept
  // across Free (a preempted sequence looks its prefix up again).
  std::vector<uint64_t> hashes;
};

struct BlockManagerOptions {
  int64_t num_blocks = 0;  // in [1, 2^31)
  int64_t block_size = 16;
  bool enable_prefix_caching = true;
  BlockHasher hasher = nullptr;  // null: HashBlockTokens (tests pass a colliding one)
};

class BlockManager {
 public:
  // Sizes must be valid (the scheduler validates its config first).
  explicit BlockManager(const BlockManagerOptions& options);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  // Blocks no table references (reusable now, whether or not they hold a cached prefix).
  int64_t num_free_blocks() const { return static_cast<int64_t>(empty_.size()) + lru_size_; }
  int64_t num_used_blocks() const { return num_blocks_ - num_free_blocks(); }
  // Free blocks that still hold a cached prefix.
  int64_t num_cached_free_blocks() const { return lru_size_; }

  // Finds the longest run of leading full blocks of `tokens`, at most `max_blocks`, whose KV is
  // cached for exactly these tokens, and writes their ids to `hits` (cleared first). Takes no
  // reference. `table.hashes` is extended as needed. Nothing is found with prefix caching off.
  void FindCachedPrefix(std::span<const int32_t> tokens, int64_t max_blocks, BlockTable& table,
                        std::vector<int32_t>& hits) const;

  // Whether taking `hits` (from FindCachedPrefix, nothing changed since) and then `num_new` new
  // blocks fits in the free pool.
  bool CanAllocate(std::span<const int32_t> hits, int64_t num_new) const;

  // Starts an empty table with the cached prefix `hits`: takes a reference on each (a free one
  // leaves the LRU list) and counts the lookup: `num_query_tokens` queried, hits * block_size
  // found.
  void AcquireCachedPrefix(std::span<const int32_t> hits, int64_t num_query_tokens,
                           BlockTable& table);

  // Appends blocks until the table covers `num_tokens` tokens. Returns false, changing nothing,
  // when the free pool is too small.
  bool Grow(BlockTable& table, int64_t num_tokens);

  // Registers the table's full blocks among the first `num_computed` of `tokens` (the KV of those
  // positions is written) in the prefix cache. No-op with prefix caching off.
  void Cache(BlockTable& table, std::span<const int32_t> tokens, int64_t num_computed);

  // Drops the table's reference on each of its blocks, last block first; a block left unused is
  // free (still cached if registered). Leaves `table.blocks` empty and keeps `table.hashes`.
  void Free(BlockTable& table);

  // Tables referencing `block`.
  int32_t ref_count(int32_t block) const { return blocks_[block].ref_count; }
  // Whether `block` has a prefix-cache identity.
  bool is_cached(int32_t block) const { return blocks_[block].content != 0; }

  int64_t prefix_cache_queries() const { return queries_; }  // tokens looked up
  int64_t prefix_cache_hits() const { return hits_; }        // tokens found

  // Internal consistency (free lists, LRU links, buckets, counts); for tests.
  absl::Status CheckConsistency() const;

 private:
  static constexpr int32_t kNone = -1;

  struct Block {
    int32_t ref_count = 0;
    // Prefix-cache identity; 0: none. Content ids are never reused.
    uint64_t content = 0;
    uint64_t parent_content = 0;
    uint64_t hash = 0;
    int32_t bucket_prev = kNone, bucket_next = kNone;  // blocks with the same hash
    int32_t lru_prev = kNone, lru_next = kNone;        // free cached blocks, oldest first
  };

  std::span<const int32_t> block_tokens(int32_t block) const {
    return {cached_tokens_.data() + block * block_size_, static_cast<size_t>(block_size_)};
  }
  // The block in `hash`'s bucket holding `tokens` under `parent_content`, or kNone. Prefers one
  // some table references (taking it costs no free block).
  int32_t FindInBucket(uint64_t hash, uint64_t parent_content,
                       std::span<const int32_t> tokens) const;
  void ExtendHashes(std::span<const int32_t> tokens, int64_t num_full, BlockTable& table) const;
  int32_t TakeFreeBlock();
  void Evict(int32_t block);
  void LruPushBack(int32_t block);
  void LruRemove(int32_t block);

  int64_t num_blocks_;
  int64_t block_size_;
  bool prefix_caching_;
  BlockHasher hasher_;

  std::vector<Block> blocks_;
  std::vector<int32_t> empty_;  // free blocks without identity (a stack)
  int32_t lru_head_ = kNone, lru_tail_ = kNone;
  int64_t lru_size_ = 0;
  absl::flat_hash_map<uint64_t, int32_t> buckets_;  // hash -> first block of its bucket
  std::vector<int32_t> cached_tokens_;              // [num_blocks, block_size] when caching
  uint64_t next_content_ = 1;

  int64_t queries_ = 0;
  int64_t hits_ = 0;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_BLOCK_MANAGER_H_
