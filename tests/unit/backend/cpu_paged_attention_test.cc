// StoreKv and PagedAttention of the CPU backend: keys and values scattered by slot mapping into
// shuffled blocks, then attention over the paged cache against a contiguous float64 reference,
// across block boundaries at odd lengths, with decodes and prefill chunks mixed in one batch and
// every kind of grouped-query ratio.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "tests/unit/backend/backend_test_util.h"

namespace sparkstack {
namespace {

using testing::ExpectClose;
using testing::Indices;
using testing::Poison;
using testing::ValueAt;

struct Geometry {
  int64_t heads, kv_heads, head_dim, v_head_dim, block_size;
};

// A batch: per sequence its total length and its number of query tokens (decodes first).
struct SeqSpec {
  int64_t len, queries;
};

// Keys and values of every position of every sequence (contiguous, the reference's view), the
// paged cache holding them, and the metadata of one step.
struct PagedBatch {
  Geometry g;
  std::vector<SeqSpec> seqs;
  std::vector<std::vector<float>> keys, values;  // [seq][p * kv_heads * d + ...]
  Tensor k_cache, v_cache, q;
  AttentionMetadata meta;
};

PagedBatch MakeBatch(Backend& backend, std::mt19937& rng, const Geometry& g,
                     const std::vector<SeqSpec>& seqs) {
  PagedBatch b{g, seqs, {}, {}, {}, {}, {}, {}};
  std::normal_distribution<float> normal;
  int64_t blocks_needed = 0, max_blocks = 0, tokens = 0;
  for (const SeqSpec& s : seqs) {
    const int64_t blocks = (s.len + g.block_size - 1) / g.block_size;
    blocks_needed += blocks;
    max_blocks = std::max(max_blocks, blocks);
    tokens += s.queries;
  }
  const int64_t pool_blocks = blocks_needed + 3;  // some blocks nobody uses
  std::vector<int32_t> free_blocks(pool_blocks);
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
  b.k_cache = *backend.Allocate(DType::kF32, {pool_blocks, g.block_size, g.kv_heads, g.head_dim});
  b.v_cache = *backend.Allocate(DType::kF32, {pool_blocks, g.block_size, g.kv_heads, g.v_head_dim});
  Poison(b.k_cache);  // positions nobody stored must never be read
  Poison(b.v_cache);

  // Every position goes through StoreKv: all positions of all sequences in one call, with some
  // extra rows whose negative slots must be skipped.
  std::vector<int32_t> table(seqs.size() * max_blocks, 0), slots, query_start = {0}, seq_lens;
  std::vector<float> k_rows, v_rows;
  const int64_t k_row = g.kv_heads * g.head_dim, v_row = g.kv_heads * g.v_head_dim;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t blocks = (seqs[s].len + g.block_size - 1) / g.block_size;
    for (int64_t i = 0; i < blocks; ++i) {
      table[s * max_blocks + i] = free_blocks.back();
      free_blocks.pop_back();
    }
    b.keys.emplace_back(seqs[s].len * k_row);
    b.values.emplace_back(seqs[s].len * v_row);
    for (float& v : b.keys.back()) v = normal(rng);
    for (float& v : b.values.back()) v = normal(rng);
    for (int64_t p = 0; p < seqs[s].len; ++p) {
      slots.push_back(table[s * max_blocks + p / g.block_size] * g.block_size + p % g.block_size);
      k_rows.insert(k_rows.end(), b.keys[s].begin() + p * k_row,
                    b.keys[s].begin() + (p + 1) * k_row);
      v_rows.insert(v_rows.end(), b.values[s].begin() + p * v_row,
                    b.values[s].begin() + (p + 1) * v_row);
      if (p % 7 == 3) {  // a skipped row (padding) between real ones
        slots.push_back(-1);
        k_rows.insert(k_rows.end(), k_row, 1e9f);
        v_rows.insert(v_rows.end(), v_row, 1e9f);
      }
    }
    query_start.push_back(query_start.back() + static_cast<int32_t>(seqs[s].queries));
    seq_lens.push_back(static_cast<int32_t>(seqs[s].len));
  }
  const int64_t rows = std::ssize(slots);
  Tensor k = Tensor::Zeros(DType::kF32, {rows, g.kv_heads, g.head_dim});
  Tensor v = Tensor::Zeros(DType::kF32, {rows, g.kv_heads, g.v_head_dim});
  std::copy(k_rows.begin(), k_rows.end(), k.data_as<float>());
  std::copy(v_rows.begin(), v_rows.end(), v.data_as<float>());
  const absl::Status stored = backend.StoreKv(k, v, Indices(slots), b.k_cache, b.v_cache);
  EXPECT_TRUE(stored.ok()) << stored;

  b.q = testing::RandomTensor(rng, {tokens, g.heads, g.head_dim}, DType::kF32, 1.0f);
  AttentionMetadata& m = b.meta;
  m.num_seqs = std::ssize(seqs);
  m.num_tokens = tokens;
  m.block_size = g.block_size;
  for (const SeqSpec& s : seqs) {
    m.num_decodes += s.queries == 1 && m.num_decodes == &s - seqs.data() ? 1 : 0;
    m.max_query_len = std::max(m.max_query_len, s.queries);
    m.max_seq_len = std::max(m.max_seq_len, s.len);
  }
  m.query_start = Indices(query_start);
  m.seq_lens = Indices(seq_lens);
  m.block_table = *Indices(table).Reshape({m.num_seqs, max_blocks});
  return b;
}

// Causal attention of every query token over its sequence's contiguous keys, in float64.
std::vector<double> ReferenceAttention(const PagedBatch& b, float scale) {
  const Geometry& g = b.g;
  const int64_t group = g.heads / g.kv_heads;
  std::vector<double> out(b.meta.num_tokens * g.heads * g.v_head_dim);
  int64_t t = 0;
  for (size_t s = 0; s < b.seqs.size(); ++s) {
    const std::vector<float>& keys = b.keys[s];
    const std::vector<float>& values = b.values[s];
    for (int64_t i = 0; i < b.seqs[s].queries; ++i, ++t) {
      const int64_t position = b.seqs[s].len - b.seqs[s].queries + i;
      for (int64_t h = 0; h < g.heads; ++h) {
        const int64_t kvh = h / group;
        std::vector<double> score(position + 1);
        double max_score = -INFINITY, total = 0;
        for (int64_t p = 0; p <= position; ++p) {
          double dot = 0;
          for (int64_t d = 0; d < g.head_dim; ++d) {
            dot += ValueAt(b.q, (t * g.heads + h) * g.head_dim + d) *
                   keys[(p * g.kv_heads + kvh) * g.head_dim + d];
          }
          score[p] = dot * scale;
          max_score = std::max(max_score, score[p]);
        }
        for (double& e : score) total += (e = std::exp(e - max_score));
        for (int64_t d = 0; d < g.v_head_dim; ++d) {
          double acc = 0;
          for (int64_t p = 0; p <= position; ++p) {
            acc += score[p] / total * values[(p * g.kv_heads + kvh) * g.v_head_dim + d];
          }
          out[(t * g.heads + h) * g.v_head_dim + d] = acc;
        }
      }
    }
  }
  return out;
}

class CpuPagedAttentionTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> backend_ = MakeCpuBackend({.threads = 3});
  std::mt19937 rng_{std::random_device{}()};
};

TEST_F(CpuPagedAttentionTest, MatchesContiguousFloat64AcrossBlocksAndGroupRatios) {
  const std::vector<SeqSpec> seqs = {{1, 1},    {17, 1},  {33, 1}, {16, 1},
                                     {100, 40}, {47, 47}, {5, 3},  {70, 16}};
  for (const Geometry& g :
       {Geometry{4, 4, 12, 12, 16}, Geometry{6, 3, 9, 9, 16}, Geometry{8, 2, 16, 10, 16},
        Geometry{9, 3, 12, 12, 5}, Geometry{7, 1, 33, 7, 7}, Geometry{32, 4, 64, 64, 16}}) {
    PagedBatch b = MakeBatch(*backend_, rng_, g, seqs);
    Tensor out = Tensor::Zeros(DType::kF32, {b.meta.num_tokens, g.heads, g.v_head_dim});
    Poison(out);
    const float scale = 1.0f / std::sqrt(static_cast<float>(g.head_dim));
    const absl::Status status =
        backend_->PagedAttention(b.q, b.k_cache, b.v_cache, b.meta, scale, out);
    ASSERT_TRUE(status.ok()) << status;
    SCOPED_TRACE(::testing::Message()
                 << "heads " << g.heads << "/" << g.kv_heads << " dim " << g.head_dim << "/"
                 << g.v_head_dim << " block " << g.block_size);
    ExpectClose(out, ReferenceAttention(b, scale), 1e-5);
  }
}

// Each sequence's rows equal those of a step holding that sequence alone, bit for bit (and so do
// runs on one thread): the batch never changes a sequence's numbers.
TEST_F(CpuPagedAttentionTest, SequencesEqualThemselvesAloneBitForBit) {
  const Geometry g{8, 2, 16, 16, 16};
  const std::vector<SeqSpec> seqs = {{9, 1}, {40, 1}, {77, 30}, {20, 20}};
  PagedBatch b = MakeBatch(*backend_, rng_, g, seqs);
  const float scale = 0.25f;
  Tensor all = Tensor::Zeros(DType::kF32, {b.meta.num_tokens, g.heads, g.v_head_dim});
  ASSERT_TRUE(backend_->PagedAttention(b.q, b.k_cache, b.v_cache, b.meta, scale, all).ok());
  auto one_thread = MakeCpuBackend({.threads = 1});
  Tensor serial = Tensor::Zeros(DType::kF32, {b.meta.num_tokens, g.heads, g.v_head_dim});
  ASSERT_TRUE(one_thread->PagedAttention(b.q, b.k_cache, b.v_cache, b.meta, scale, serial).ok());
  EXPECT_EQ(std::memcmp(all.data(), serial.data(), all.nbytes()), 0);

  const int64_t max_blocks = b.meta.block_table.dim(1);
  int64_t first = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t n = seqs[s].queries;
    AttentionMetadata alone;
    alone.num_seqs = 1;
    alone.num_decodes = n == 1 ? 1 : 0;
    alone.num_tokens = n;
    alone.max_query_len = n;
    alone.max_seq_len = seqs[s].len;
    alone.block_size = g.block_size;
    alone.query_start = Indices({0, static_cast<int32_t>(n)});
    alone.seq_lens = Indices({static_cast<int32_t>(seqs[s].len)});
    std::vector<int32_t> row(b.meta.block_table.data_as<int32_t>() + s * max_blocks,
                             b.meta.block_table.data_as<int32_t>() + (s + 1) * max_blocks);
    alone.block_table = *Indices(row).Reshape({1, max_blocks});
    Tensor q = *b.q.SliceRows(first, first + n);
    Tensor out = Tensor::Zeros(DType::kF32, {n, g.heads, g.v_head_dim});
    ASSERT_TRUE(backend_->PagedAttention(q, b.k_cache, b.v_cache, alone, scale, out).ok());
    const size_t row_bytes = g.heads * g.v_head_dim * sizeof(float);
    EXPECT_EQ(std::memcmp(out.data(), all.data_as<float>() + first * g.heads * g.v_head_dim,
                          n * row_bytes),
              0)
        << "sequence " << s;
    first += n;
  }
}

TEST_F(CpuPagedAttentionTest, StoreKvWritesMappedSlotsOnlyAndSkipsNegativeOnes) {
  const int64_t blocks = 5, block_size = 4, kv_heads = 3, d = 5, dv = 2;
  Tensor k_cache = Tensor::Zeros(DType::kF32, {blocks, block_size, kv_heads, d});
  Tensor v_cache = Tensor::Zeros(DType::kF32, {blocks, block_size, kv_heads, dv});
  for (int64_t i = 0; i < k_cache.numel(); ++i) k_cache.data_as<float>()[i] = -7.0f;
  for (int64_t i = 0; i < v_cache.numel(); ++i) v_cache.data_as<float>()[i] = -7.0f;
  const std::vector<int32_t> slots = {13, -1, 0, 19, -5, 6, 7};
  Tensor k = testing::RandomTensor(rng_, {7, kv_heads, d}, DType::kF32, 1.0f);
  Tensor v = testing::RandomTensor(rng_, {7, kv_heads, dv}, DType::kF32, 1.0f);
  ASSERT_TRUE(backend_->StoreKv(k, v, Indices(slots), k_cache, v_cache).ok());
  std::vector<double> want_k(k_cache.numel(), -7.0), want_v(v_cache.numel(), -7.0);
  for (size_t t = 0; t < slots.size(); ++t) {
    if (slots[t] < 0) continue;
    for (int64_t i = 0; i < kv_heads * d; ++i) {
      want_k[slots[t] * kv_heads * d + i] = ValueAt(k, t * kv_heads * d + i);
    }
    for (int64_t i = 0; i < kv_heads * dv; ++i) {
      want_v[slots[t] * kv_heads * dv + i] = ValueAt(v, t * kv_heads * dv + i);
    }
  }
  ExpectClose(k_cache, want_k, 0.0);
  ExpectClose(v_cache, want_v, 0.0);
}

void ExpectErrorNaming(const absl::Status& status, const std::string& text) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(text), std::string::npos)
      << "'" << status.message() << "' does not name '" << text << "'";
}

TEST_F(CpuPagedAttentionTest, StoreKvRejectsMismatchedShapes) {
  Tensor k_cache = Tensor::Zeros(DType::kF32, {2, 4, 3, 5});
  Tensor v_cache = Tensor::Zeros(DType::kF32, {2, 4, 3, 2});
  Tensor k = Tensor::Zeros(DType::kF32, {2, 3, 5});
  Tensor v = Tensor::Zeros(DType::kF32, {2, 3, 2});
  ExpectErrorNaming(backend_->StoreKv(k, v, Indices({1}), k_cache, v_cache),
                    "store_kv: slot_mapping");
  ExpectErrorNaming(backend_->StoreKv(Tensor::Zeros(DType::kF32, {2, 3, 4}), v, Indices({0, 1}),
                                      k_cache, v_cache),
                    "store_kv: k");
  ExpectErrorNaming(backend_->StoreKv(k, Tensor::Zeros(DType::kF32, {2, 2, 2}), Indices({0, 1}),
                                      k_cache, v_cache),
                    "store_kv: v");
  Tensor other_v = Tensor::Zeros(DType::kF32, {3, 4, 3, 2});
  ExpectErrorNaming(backend_->StoreKv(k, v, Indices({0, 1}), k_cache, other_v),
                    "store_kv: v_cache");
  Tensor half_cache = Tensor::Zeros(DType::kBF16, {2, 4, 3, 5});
  ExpectErrorNaming(backend_->StoreKv(k, v, Indices({0, 1}), half_cache, v_cache),
                    "store_kv: k_cache");
}

TEST_F(CpuPagedAttentionTest, PagedAttentionRejectsMismatchedShapes) {
  const Geometry g{6, 2, 8, 8, 4};
  PagedBatch b = MakeBatch(*backend_, rng_, g, {{3, 1}, {6, 2}});
  Tensor out = Tensor::Zeros(DType::kF32, {3, 6, 8});
  ASSERT_TRUE(backend_->PagedAttention(b.q, b.k_cache, b.v_cache, b.meta, 1.0f, out).ok());
  ExpectErrorNaming(backend_->PagedAttention(Tensor::Zeros(DType::kF32, {4, 6, 8}), b.k_cache,
                                             b.v_cache, b.meta, 1.0f, out),
                    "paged_attention: q");
  ExpectErrorNaming(backend_->PagedAttention(Tensor::Zeros(DType::kF32, {3, 5, 8}), b.k_cache,
                                             b.v_cache, b.meta, 1.0f, out),
                    "paged_attention: k_cache");  // 2 kv heads do not divide 5 heads
  Tensor bad_v = Tensor::Zeros(DType::kF32, {1, 4, 2, 8});
  ExpectErrorNaming(backend_->PagedAttention(b.q, b.k_cache, bad_v, b.meta, 1.0f, out),
                    "paged_attention: v_cache");
  Tensor bad_out = Tensor::Zeros(DType::kF32, {3, 6, 7});
  ExpectErrorNaming(backend_->PagedAttention(b.q, b.k_cache, b.v_cache, b.meta, 1.0f, bad_out),
                    "paged_attention: out");
  AttentionMetadata short_start = b.meta;
  short_start.query_start = Indices({0, 1});
  ExpectErrorNaming(backend_->PagedAttention(b.q, b.k_cache, b.v_cache, short_start, 1.0f, out),
                    "paged_attention: query_start");
  AttentionMetadata flat_table = b.meta;
  flat_table.block_table = Indices({0, 1, 2, 3});
  ExpectErrorNaming(backend_->PagedAttention(b.q, b.k_cache, b.v_cache, flat_table, 1.0f, out),
                    "paged_attention: block_table");
  AttentionMetadata other_block = b.meta;
  other_block.block_size = 16;
  ExpectErrorNaming(backend_->PagedAttention(b.q, b.k_cache, b.v_cache, other_block, 1.0f, out),
                    "paged_attention: k_cache");
}

}  // namespace
}  // namespace sparkstack
