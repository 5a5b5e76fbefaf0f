// The CUDA backend's multi-head latent attention (StoreLatent, PagedLatentAttention: DeepSeek MLA
// in the absorbed form) against the CPU backend and the float64 reference of kernels/cpu/
// mla_attention.h, on random data: decode tokens and causal prefill chunks of several sequences
// with shuffled block tables, DeepSeek-V3's rows (576 wide, values 512 wide at offset 64) and odd
// small ones. Built twice, like cuda_backend_ops_test: against the CUDA emulation (label
// `emulated`, never skips) and the CUDA runtime (label `cuda`, skips without a device).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/mla_attention.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "tests/unit/cuda_backend/cuda_vs_cpu_test.h"

namespace sparkstack {
namespace {

CudaBackendOptions LatentOptions() {
  CudaBackendOptions o;
  o.max_tokens = 64;
  o.max_linear_k = 64;
  return o;
}

class CudaLatentAttentionTest : public testing::CudaVsCpuTest<LatentOptions> {
 protected:
  struct Case {
    int64_t heads = 1;
    int64_t width = 576;
    int64_t value_offset = 64;
    int64_t value_width = 512;
    int64_t block_size = 4;
    std::vector<int64_t> query_lens;  // decodes (1) first
    std::vector<int64_t> seq_lens;
  };

  // Stores every position's row of every sequence (and one skipped token) with StoreLatent on
  // both backends, then runs PagedLatentAttention on both and the float64 reference.
  void Run(const Case& c) {
    SCOPED_TRACE(::testing::Message()
                 << "heads " << c.heads << ", width " << c.width << ", values [" << c.value_offset
                 << ", +" << c.value_width << ")");
    const int64_t seqs = std::ssize(c.seq_lens);
    int64_t max_blocks = 1, total_blocks = 0;
    for (int64_t len : c.seq_lens) {
      max_blocks = std::max(max_blocks, (len + c.block_size - 1) / c.block_size);
      total_blocks += (len + c.block_size - 1) / c.block_size;
    }
    const int64_t num_blocks = total_blocks + 2;  // two blocks nobody owns
    std::vector<int32_t> free(num_blocks);
    std::iota(free.begin(), free.end(), 0);
    std::shuffle(free.begin(), free.end(), rng_);
    std::vector<int32_t> table(seqs * max_blocks, 0), slots, query_start = {0}, lens;
    int64_t tokens = 0, decodes = 0, max_query = 0, max_len = 0;
    for (int64_t b = 0; b < seqs; ++b) {
      const int64_t len = c.seq_lens[b];
      for (int64_t i = 0; i < (len + c.block_size - 1) / c.block_size; ++i) {
        table[b * max_blocks + i] = free.back();
        free.pop_back();
      }
      for (int64_t p = 0; p < len; ++p) {
        slots.push_back(static_cast<int32_t>(
            table[b * max_blocks + p / c.block_size] * c.block_size + p % c.block_size));
      }
      tokens += c.query_lens[b];
      query_start.push_back(static_cast<int32_t>(tokens));
      lens.push_back(static_cast<int32_t>(len));
      if (c.query_lens[b] == 1 && decodes == b) ++decodes;
      max_query = std::max(max_query, c.query_lens[b]);
      max_len = std::max(max_len, len);
    }
    // A skipped token (negative slot) in the middle of the step.
    const int64_t stored = std::ssize(slots);
    slots.insert(slots.begin() + stored / 2, -1);
    Tensor latent = Random({stored + 1, c.width});
    const Shape pool_shape = {num_blocks, c.block_size, 1, c.width};
    Tensor cache = *cuda().Allocate(DType::kF32, pool_shape);  // zeros
    auto status = cuda().StoreLatent(OnDevice(latent), OnDevice(Indices(slots)), cache);
    ASSERT_TRUE(status.ok()) << status;
    Tensor host_cache = Tensor::Zeros(DType::kF32, pool_shape);
    ASSERT_TRUE(cpu().StoreLatent(latent, Indices(slots), host_cache).ok());
    // The pool holds each stored row at its slot and zeros elsewhere (the skipped row nowhere).
    Tensor got_cache = Host(cache);
    std::vector<float> want_cache(num_blocks * c.block_size * c.width, 0.0f);
    for (int64_t t = 0; t < std::ssize(slots); ++t) {
      if (slots[t] < 0) continue;
      std::memcpy(&want_cache[slots[t] * c.width], latent.data_as<float>() + t * c.width,
                  c.width * sizeof(float));
    }
    ASSERT_EQ(std::memcmp(got_cache.data(), want_cache.data(), want_cache.size() * 4), 0)
        << "store_latent";
    ASSERT_EQ(std::memcmp(host_cache.data(), want_cache.data(), want_cache.size() * 4), 0)
        << "the CPU backend's store_latent";

    Tensor q = Random({tokens, c.heads, c.width});
    AttentionMetadata host;
    host.num_seqs = seqs;
    host.num_decodes = decodes;
    host.num_tokens = tokens;
    host.max_query_len = max_query;
    host.max_seq_len = max_len;
    host.block_size = c.block_size;
    host.query_start = Indices(query_start);
    host.seq_lens = Indices(lens);
    host.block_table = *Indices(table).Reshape({seqs, max_blocks});
    host.slot_mapping = Indices(std::vector<int32_t>(tokens, -1));
    AttentionMetadata m = host;
    m.query_start = OnDevice(host.query_start);
    m.seq_lens = OnDevice(host.seq_lens);
    m.block_table = OnDevice(host.block_table);
    m.slot_mapping = OnDevice(host.slot_mapping);
    // DeepSeek-V3's scale: mscale^2 / sqrt(192).
    const float scale = 1.369f * 1.369f / std::sqrt(192.0f);
    Tensor out = Poisoned({tokens, c.heads, c.value_width});
    status = cuda().PagedLatentAttention(OnDevice(q), cache, c.value_offset, c.value_width, m,
                                         scale, out);
    ASSERT_TRUE(status.ok()) << status;
    Tensor got = Host(out);
    Tensor want_cpu = Tensor::Zeros(DType::kF32, {tokens, c.heads, c.value_width});
    ASSERT_TRUE(cpu()
                    .PagedLatentAttention(q, host_cache, c.value_offset, c.value_width, host, scale,
                                          want_cpu)
                    .ok());
    std::vector<double> want(got.numel());
    const kernels::LatentPool pool{.rows = want_cache.data(),
                                   .block_size = c.block_size,
                                   .width = c.width,
                                   .value_offset = c.value_offset,
                                   .value_width = c.value_width};
    const kernels::PagedBatch batch{.num_seqs = seqs,
                                    .query_start = query_start.data(),
                                    .seq_lens = lens.data(),
                                    .block_table = table.data(),
                                    .max_blocks = max_blocks};
    kernels::PagedLatentAttentionReference(q.data_as<float>(), tokens, c.heads, pool, batch, scale,
                                           want.data());
    // Outputs are averages of N(0, 1) values: an absolute bound; f32 sums of 576 products.
    int reported = 0;
    for (int64_t i = 0; i < got.numel(); ++i) {
      const float g = got.data_as<float>()[i];
      const float w = want_cpu.data_as<float>()[i];
      if (!(std::fabs(g - want[i]) <= 2e-5) && reported++ < 5) {
        ADD_FAILURE() << "element " << i << " (token " << i / (c.heads * c.value_width) << "): got "
                      << g << ", float64 reference " << want[i];
      }
      if (!(std::fabs(g - w) <= 2e-5) && reported++ < 5) {
        ADD_FAILURE() << "element " << i << ": got " << g << ", cpu backend " << w;
      }
    }
  }
};

TEST_F(CudaLatentAttentionTest, DecodeTokensOfSequencesOfDifferentLengths) {
  // Contexts from one row to two tiles of 16 rows, blocks of 4 slots.
  for (int64_t heads : {1, 3, 16}) {
    Run({.heads = heads, .query_lens = {1, 1, 1}, .seq_lens = {1, 7, 21}});
  }
  // DeepSeek-V3's 128 heads (eight head blocks per token), three tiles.
  Run({.heads = 128, .query_lens = {1, 1}, .seq_lens = {40, 33}});
}

TEST_F(CudaLatentAttentionTest, CausalPrefillChunksNextToADecode) {
  // A decode, a whole prompt and a chunk that starts mid-sequence; 19 heads take two head
  // blocks, the second with 3 heads.
  for (int64_t heads : {3, 19}) {
    Run({.heads = heads, .query_lens = {1, 5, 4}, .seq_lens = {9, 5, 19}});
  }
}

TEST_F(CudaLatentAttentionTest, OddWidthsValueOffsetsAndBlockSizes) {
  Run({.heads = 3,
       .width = 37,
       .value_offset = 5,
       .value_width = 29,
       .block_size = 5,
       .query_lens = {1, 6},
       .seq_lens = {12, 17}});
  Run({.heads = 16,
       .width = 131,
       .value_offset = 0,
       .value_width = 131,
       .block_size = 3,
       .query_lens = {1, 3},
       .seq_lens = {2, 18}});
}

TEST_F(CudaLatentAttentionTest, WrongShapesAreRefusedNamingThem) {
  const int64_t block = 4, blocks = 2;
  AttentionMetadata m;
  m.num_seqs = m.num_decodes = m.num_tokens = m.max_query_len = 1;
  m.max_seq_len = 3;
  m.block_size = block;
  m.query_start = OnDevice(Indices({0, 1}));
  m.seq_lens = OnDevice(Indices({3}));
  m.block_table = *OnDevice(Indices({1})).Reshape({1, 1});
  m.slot_mapping = OnDevice(Indices({-1}));
  Tensor cache = *cuda().Allocate(DType::kF32, {blocks, block, 1, 576});
  Tensor out = Poisoned({1, 2, 512});
  // q rows narrower than the pool's.
  auto status =
      cuda().PagedLatentAttention(OnDevice(Random({1, 2, 575})), cache, 64, 512, m, 0.1f, out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("paged_latent_attention: q is f32[1, 2, 575]"), std::string::npos)
      << status;
  EXPECT_NE(status.message().find("expected f32[1, 2, 576]"), std::string::npos) << status;
  // Values past the row.
  status = cuda().PagedLatentAttention(OnDevice(Random({1, 2, 576})), cache, 65, 512, m, 0.1f, out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("values [65, 577) outside rows of width 576"), std::string::npos)
      << status;
  // Rows wider than the kernel's shared-memory tiles.
  Tensor wide = *cuda().Allocate(DType::kF32, {blocks, block, 1, 640});
  status = cuda().PagedLatentAttention(OnDevice(Random({1, 2, 640})), wide, 128, 512, m, 0.1f, out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("rows of width 640 with values of width 512 exceed"),
            std::string::npos)
      << status;
  // A latent row that does not match the pool.
  status = cuda().StoreLatent(OnDevice(Random({2, 100})), OnDevice(Indices({0, 1})), cache);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("store_latent: latent is f32[2, 100]"), std::string::npos)
      << status;
  EXPECT_NE(status.message().find("expected f32[2, 576]"), std::string::npos) << status;
  // A host pool.
  Tensor host_cache = Tensor::Zeros(DType::kF32, {blocks, block, 1, 576});
  status = cuda().StoreLatent(OnDevice(Random({2, 576})), OnDevice(Indices({0, 1})), host_cache);
  EXPECT_NE(status.message().find("store_latent: cache is f32[2, 4, 1, 576] on the host"),
            std::string::npos)
      << status;
}

}  // namespace
}  // namespace sparkstack
