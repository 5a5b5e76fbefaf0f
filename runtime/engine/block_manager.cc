#include "runtime/engine/block_manager.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace sparkstack {
namespace internal {

void EngineCheckFailed(const char* file, int line, const char* condition, const char* message) {
  std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", file, line, condition, message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace internal

namespace {

// splitmix64's finalizer: a bijection that spreads every input bit over the output.
uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

uint64_t HashBlockTokens(uint64_t parent_hash, std::span<const int32_t> tokens) {
  uint64_t h = Mix64(parent_hash ^ (0x9e3779b97f4a7c15ull * (tokens.size() + 1)));
  for (int32_t token : tokens) {
    h = Mix64(h + static_cast<uint32_t>(token));
  }
  return h;
}

BlockManager::BlockManager(const BlockManagerOptions& options)
    : num_blocks_(options.num_blocks),
      block_size_(options.block_size),
      prefix_caching_(options.enable_prefix_caching),
      hasher_(options.hasher != nullptr ? options.hasher : &HashBlockTokens),
      blocks_(static_cast<size_t>(options.num_blocks)) {
  SPARKSTACK_ENGINE_CHECK(num_blocks_ >= 1 && num_blocks_ <= INT32_MAX && block_size_ >= 1,
                          "BlockManager: num_blocks in [1, 2^31) and block_size >= 1");
  // Block 0 is handed out first: the stack pops from the back.
  empty_.reserve(static_cast<size_t>(num_blocks_));
  for (int64_t b = num_blocks_ - 1; b >= 0; --b) empty_.push_back(static_cast<int32_t>(b));
  if (prefix_caching_) {
    cached_tokens_.resize(static_cast<size_t>(num_blocks_ * block_size_));
    buckets_.reserve(static_cast<size_t>(num_blocks_));
  }
}

void BlockManager::ExtendHashes(std::span<const int32_t> tokens, int64_t num_full,
                                BlockTable& table) const {
  for (int64_t i = static_cast<int64_t>(table.hashes.size()); i < num_full; ++i) {
    uint64_t parent = i == 0 ? kRootBlockHash : table.hashes[i - 1];
    table.hashes.push_back(hasher_(parent, tokens.subspan(i * block_size_, block_size_)));
  }
}

int32_t BlockManager::FindInBucket(uint64_t hash, uint64_t parent_content,
                                   std::span<const int32_t> tokens) const {
  auto it = buckets_.find(hash);
  if (it == buckets_.end()) return kNone;
  int32_t found = kNone;
  for (int32_t b = it->second; b != kNone; b = blocks_[b].bucket_next) {
    const Block& block = blocks_[b];
    if (block.parent_content != parent_content) continue;
    std::span<const int32_t> stored = block_tokens(b);
    if (!std::equal(stored.begin(), stored.end(), tokens.begin(), tokens.end())) continue;
    if (block.ref_count > 0) return b;
    if (found == kNone) found = b;
  }
  return found;
}

void BlockManager::FindCachedPrefix(std::span<const int32_t> tokens, int64_t max_blocks,
                                    BlockTable& table, std::vector<int32_t>& hits) const {
  hits.clear();
  if (!prefix_caching_) return;
  int64_t num_full =
      std::min<int64_t>(max_blocks, static_cast<int64_t>(tokens.size()) / block_size_);
  if (num_full <= 0) return;
  ExtendHashes(tokens, num_full, table);
  uint64_t parent_content = 0;
  for (int64_t i = 0; i < num_full; ++i) {
    int32_t b =
        FindInBucket(table.hashes[i], parent_content, tokens.subspan(i * block_size_, block_size_));
    if (b == kNone) break;
    hits.push_back(b);
    parent_content = blocks_[b].content;
  }
}

bool BlockManager::CanAllocate(std::span<const int32_t> hits, int64_t num_new) const {
  int64_t from_pool = num_new;
  for (int32_t b : hits) from_pool += blocks_[b].ref_count == 0 ? 1 : 0;
  return from_pool <= num_free_blocks();
}

void BlockManager::AcquireCachedPrefix(std::span<const int32_t> hits, int64_t num_query_tokens,
                                       BlockTable& table) {
  SPARKSTACK_ENGINE_CHECK(table.blocks.empty(), "AcquireCachedPrefix: the table is not empty");
  for (int32_t b : hits) {
    Block& block = blocks_[b];
    SPARKSTACK_ENGINE_CHECK(block.content != 0, "AcquireCachedPrefix: a hit is not cached");
    if (block.ref_count == 0) LruRemove(b);
    ++block.ref_count;
    table.blocks.push_back(b);
  }
  table.num_cached = static_cast<int64_t>(hits.size());
  if (prefix_caching_) {
    queries_ += num_query_tokens;
    hits_ += static_cast<int64_t>(hits.size()) * block_size_;
  }
}

int32_t BlockManager::TakeFreeBlock() {
  if (!empty_.empty()) {
    int32_t b = empty_.back();
    empty_.pop_back();
    return b;
  }
  int32_t b = lru_head_;
  SPARKSTACK_ENGINE_CHECK(b != kNone, "BlockManager: no free block");
  LruRemove(b);
  Evict(b);
  return b;
}

bool BlockManager::Grow(BlockTable& table, int64_t num_tokens) {
  int64_t needed = (num_tokens + block_size_ - 1) / block_size_;
  int64_t missing = needed - static_cast<int64_t>(table.blocks.size());
  if (missing <= 0) return true;
  if (missing > num_free_blocks()) return false;
  for (int64_t i = 0; i < missing; ++i) {
    int32_t b = TakeFreeBlock();
    blocks_[b].ref_count = 1;
    table.blocks.push_back(b);
  }
  return true;
}

void BlockManager::Cache(BlockTable& table, std::span<const int32_t> tokens, int64_t num_computed) {
  if (!prefix_caching_) return;
  int64_t num_full =
      std::min(num_computed / block_size_, static_cast<int64_t>(table.blocks.size()));
  if (table.num_cached >= num_full) return;
  ExtendHashes(tokens, num_full, table);
  for (int64_t i = table.num_cached; i < num_full; ++i) {
    int32_t b = table.blocks[i];
    Block& block = blocks_[b];
    SPARKSTACK_ENGINE_CHECK(block.content == 0 && block.ref_count == 1,
                            "Cache: a block being filled is shared or already cached");
    std::span<const int32_t> block_tokens_in = tokens.subspan(i * block_size_, block_size_);
    uint64_t parent_content = i == 0 ? 0 : blocks_[table.blocks[i - 1]].content;
    uint64_t hash = table.hashes[i];
    int32_t twin = FindInBucket(hash, parent_content, block_tokens_in);
    block.content = twin != kNone ? blocks_[twin].content : next_content_++;
    block.parent_content = parent_content;
    block.hash = hash;
    std::copy(block_tokens_in.begin(), block_tokens_in.end(),
              cached_tokens_.begin() + b * block_size_);
    // Link at the front of the bucket.
    auto [it, inserted] = buckets_.try_emplace(hash, b);
    block.bucket_prev = kNone;
    block.bucket_next = inserted ? kNone : it->second;
    if (!inserted) {
      blocks_[it->second].bucket_prev = b;
      it->second = b;
    }
  }
  table.num_cached = num_full;
}

void BlockManager::Free(BlockTable& table) {
  for (auto it = table.blocks.rbegin(); it != table.blocks.rend(); ++it) {
    int32_t b = *it;
    Block& block = blocks_[b];
    SPARKSTACK_ENGINE_CHECK(block.ref_count > 0, "Free: a block freed more than once");
    if (--block.ref_count > 0) continue;
    if (block.content != 0) {
      LruPushBack(b);
    } else {
      empty_.push_back(b);
    }
  }
  table.blocks.clear();
  table.num_cached = 0;
}

void BlockManager::Evict(int32_t b) {
  Block& block = blocks_[b];
  if (block.bucket_prev != kNone) {
    blocks_[block.bucket_prev].bucket_next = block.bucket_next;
  } else if (block.bucket_next != kNone) {
    buckets_[block.hash] = block.bucket_next;
  } else {
    buckets_.erase(block.hash);
  }
  if (block.bucket_next != kNone) blocks_[block.bucket_next].bucket_prev = block.bucket_prev;
  block = Block{};
}

void BlockManager::LruPushBack(int32_t b) {
  blocks_[b].lru_prev = lru_tail_;
  blocks_[b].lru_next = kNone;
  if (lru_tail_ != kNone) {
    blocks_[lru_tail_].lru_next = b;
  } else {
    lru_head_ = b;
  }
  lru_tail_ = b;
  ++lru_size_;
}

void BlockManager::LruRemove(int32_t b) {
  Block& block = blocks_[b];
  if (block.lru_prev != kNone) {
    blocks_[block.lru_prev].lru_next = block.lru_next;
  } else {
    lru_head_ = block.lru_next;
  }
  if (block.lru_next != kNone) {
    blocks_[block.lru_next].lru_prev = block.lru_prev;
  } else {
    lru_tail_ = block.lru_prev;
  }
  block.lru_prev = block.lru_next = kNone;
  --lru_size_;
}

absl::Status BlockManager::CheckConsistency() const {
  std::vector<int> where(static_cast<size_t>(num_blocks_), 0);  // 1: empty, 2: lru
  for (int32_t b : empty_) {
    if (where[b] != 0) return absl::InternalError(absl::StrCat("block ", b, " listed twice"));
    where[b] = 1;
    if (blocks_[b].ref_count != 0 || blocks_[b].content != 0) {
      return absl::InternalError(absl::StrCat("empty block ", b, " is used or cached"));
    }
  }
  int64_t lru_count = 0;
  int32_t prev = kNone;
  for (int32_t b = lru_head_; b != kNone; prev = b, b = blocks_[b].lru_next) {
    if (where[b] != 0 || blocks_[b].lru_prev != prev || ++lru_count > num_blocks_) {
      return absl::InternalError(absl::StrCat("LRU list broken at block ", b));
    }
    where[b] = 2;
    if (blocks_[b].ref_count != 0 || blocks_[b].content == 0) {
      return absl::InternalError(absl::StrCat("LRU block ", b, " is used or not cached"));
    }
  }
  if (prev != lru_tail_ || lru_count != lru_size_) {
    return absl::InternalError("LRU tail or size wrong");
  }
  int64_t cached = 0;
  for (int32_t b = 0; b < num_blocks_; ++b) {
    const Block& block = blocks_[b];
    if (block.ref_count < 0) return absl::InternalError(absl::StrCat("block ", b, " ref < 0"));
    if (block.ref_count == 0 && where[b] == 0) {
      return absl::InternalError(absl::StrCat("block ", b, " leaked: unused and not free"));
    }
    if (block.ref_count > 0 && where[b] != 0) {
      return absl::InternalError(absl::StrCat("block ", b, " used and free"));
    }
    if (block.content != 0) ++cached;
  }
  int64_t in_buckets = 0;
  for (const auto& [hash, first] : buckets_) {
    int32_t prev_in_bucket = kNone;
    for (int32_t b = first; b != kNone; prev_in_bucket = b, b = blocks_[b].bucket_next) {
      if (blocks_[b].hash != hash || blocks_[b].content == 0 ||
          blocks_[b].bucket_prev != prev_in_bucket || ++in_buckets > num_blocks_) {
        return absl::InternalError(absl::StrCat("bucket chain broken at block ", b));
      }
    }
  }
  if (in_buckets != cached) return absl::InternalError("cached blocks and buckets disagree");
  return absl::OkStatus();
}

}  // namespace sparkstack
