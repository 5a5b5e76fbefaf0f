// The paged latent (MLA absorbed-form) attention kernel against its float64 reference: several
// sequences of odd lengths with prefill chunks and decodes, blocks scattered over the pool, any
// thread count.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/mla_attention.h"

namespace sparkstack::kernels {
namespace {

TEST(MlaAttentionTest, MatchesReference) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t block_size = 4, heads = 5, width = 26, value_offset = 6, value_width = 20;
  // Sequences: (tokens this step, total length): decodes first, then prefill chunks.
  const std::vector<std::pair<int, int>> seqs = {{1, 9}, {1, 1}, {7, 7}, {3, 13}};
  const int64_t max_blocks = 4;
  const int64_t blocks = 20;
  std::vector<int32_t> free(blocks);
  std::iota(free.begin(), free.end(), 0);
  std::shuffle(free.begin(), free.end(), rng);
  std::vector<int32_t> query_start = {0}, seq_lens, table(seqs.size() * max_blocks, 0);
  for (size_t b = 0; b < seqs.size(); ++b) {
    query_start.push_back(query_start.back() + seqs[b].first);
    seq_lens.push_back(seqs[b].second);
    for (int64_t i = 0; i * block_size < seqs[b].second; ++i) {
      table[b * max_blocks + i] = free.back();
      free.pop_back();
    }
  }
  const int64_t tokens = query_start.back();
  std::vector<float> rows(blocks * block_size * width), q(tokens * heads * width);
  for (float& v : rows) v = normal(rng);
  for (float& v : q) v = normal(rng);
  const LatentPool pool{rows.data(), block_size, width, value_offset, value_width};
  const PagedBatch batch{static_cast<int64_t>(seqs.size()), query_start.data(), seq_lens.data(),
                         table.data(), max_blocks};
  const float scale = 0.3f;
  std::vector<double> want(tokens * heads * value_width);
  PagedLatentAttentionReference(q.data(), tokens, heads, pool, batch, scale, want.data());
  for (int threads : {1, 3}) {
    std::vector<float> got(want.size(), NAN);
    PagedLatentAttentionF32(q.data(), tokens, heads, pool, batch, scale, got.data(), threads);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 2e-5) << "threads " << threads << " element " << i;
    }
  }
  // A decode of a one-token sequence attends to itself only: its output is that row's values.
  const float* self = rows.data() + (table[1 * max_blocks] * block_size) * width + value_offset;
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < value_width; ++i) {
      EXPECT_NEAR(want[(1 * heads + h) * value_width + i], self[i], 1e-12);
    }
  }
}

}  // namespace
}  // namespace sparkstack::kernels
