// How dimensions are divided among tensor-parallel ranks.
#ifndef SPARKSTACK_RUNTIME_MODEL_SHARDING_H_
#define SPARKSTACK_RUNTIME_MODEL_SHARDING_H_

#include <algorithm>
#include <cstdint>

namespace sparkstack {

struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// Part `index` of `total` split into `parts` nearly equal contiguous ranges (the first
// total % parts ranges are one longer). Used for the intermediate (MLP) dimension.
inline Range BalancedSplit(int64_t total, int64_t parts, int64_t index) {
  const int64_t base = total / parts;
  const int64_t extra = total % parts;
  const int64_t begin = index * base + std::min(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

// Part `index` of `total` in chunks of ceil(total / parts) (the last ranges may be shorter or
// empty). Used for the vocabulary, so every rank's logits fit one equal-sized all-gather slot.
inline Range ChunkedSplit(int64_t total, int64_t parts, int64_t index) {
  const int64_t chunk = (total + parts - 1) / parts;
  const int64_t begin = std::min(total, index * chunk);
  return {begin, std::min(total, begin + chunk)};
}

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_MODEL_SHARDING_H_
