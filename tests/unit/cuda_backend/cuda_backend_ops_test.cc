// Every CUDA backend op against the float64 references beside its kernel (kernels/cuda/ops/
// *_reference.h) and against the CPU backend, on fresh random data at odd sizes spanning several
// blocks, with NaN-poisoned outputs. Built twice: against the CUDA emulation (label `emulated`,
// runs everywhere and never skips) and against the CUDA runtime (label `cuda`, skips when no
// device is visible).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "kernels/cpu/sampling.h"
#include "kernels/cuda/ops/dense_linear_reference.h"
#include "kernels/cuda/ops/elementwise_reference.h"
#include "kernels/cuda/ops/embedding_reference.h"
#include "kernels/cuda/ops/paged_attention_reference.h"
#include "kernels/cuda/ops/rms_norm_reference.h"
#include "kernels/cuda/ops/rope_reference.h"
#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/core/half.h"
#include "runtime/core/philox.h"
#include "tests/unit/cuda_backend/cuda_vs_cpu_test.h"

namespace sparkstack {
namespace {

CudaBackendOptions TestOptions() {
  CudaBackendOptions o;
  o.max_tokens = 256;
  o.max_decode_seqs = 16;
  o.max_logit_rows = 40;
  o.max_linear_k = 1024;
  o.max_heads = 32;
  o.max_head_dim = 256;
  o.max_context = 6000;
  o.sampling_edits = 4096;
  return o;
}

using CudaOpsTest = testing::CudaVsCpuTest<TestOptions>;

using testing::ValueAt;

std::vector<double> Values(const Tensor& t) {
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = ValueAt(t, i);
  return v;
}

// max |got - want| <= tolerance * max(1, max |want|), printing the first few mismatches.
void ExpectClose(const Tensor& got, const std::vector<double>& want, double tolerance,
                 const std::string& what = "") {
  ASSERT_EQ(got.numel(), std::ssize(want)) << what;
  double scale = 1.0;
  for (double w : want) {
    if (std::isfinite(w)) scale = std::max(scale, std::fabs(w));
  }
  int reported = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = ValueAt(got, static_cast<int64_t>(i));
    if (g != want[i] && !(std::fabs(g - want[i]) <= tolerance * scale) && reported++ < 5) {
      ADD_FAILURE() << what << " element " << i << ": got " << g << ", want " << want[i];
    }
  }
}

TEST_F(CudaOpsTest, EmbeddingLooksUpItsRowsAndZeroesOthers) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    const int64_t rows = 37, hidden = 301, first = 100;
    Tensor table = Random({rows, hidden}, dtype);
    std::vector<int32_t> ids;
    for (int i = 0; i < 45; ++i) ids.push_back(static_cast<int32_t>(rng_() % 180));
    ids.push_back(first);
    ids.push_back(first + rows - 1);
    ids.push_back(first + rows);
    Tensor out = Poisoned({std::ssize(ids), hidden});
    ASSERT_TRUE(cuda().Embedding(OnDevice(table), OnDevice(Indices(ids)), first, out).ok());
    ExpectClose(Host(out),
                kernels::cuda_ops::ReferenceEmbedding(Values(table), rows, hidden, ids, first), 0.0,
                std::string(DTypeName(dtype)));
  }
}

TEST_F(CudaOpsTest, RmsNormAndTheFusedResidualMatchFloat64AndTheCpu) {
  for (auto [rows, width] : {std::pair{1, 7}, {5, 97}, {3, 1000}, {70, 12}}) {
    for (DType wtype : {DType::kF32, DType::kBF16}) {
      Tensor x = Random({rows, width});
      Tensor delta = Random({rows, width});
      Tensor weight = Random({width}, wtype);
      const float eps = 1e-5f;
      Tensor out = Poisoned({rows, width});
      Tensor dx = OnDevice(x);
      ASSERT_TRUE(cuda().RmsNorm(dx, OnDevice(weight), eps, out).ok());
      ExpectClose(Host(out),
                  kernels::cuda_ops::ReferenceRmsNorm(Values(x), rows, width, Values(weight), eps),
                  1e-5, "rms_norm");
      // In place (out aliases x) matches the CPU backend.
      ASSERT_TRUE(cuda().RmsNorm(dx, OnDevice(weight), eps, dx).ok());
      Tensor cpu_out = Tensor::Zeros(DType::kF32, {rows, width});
      ASSERT_TRUE(cpu().RmsNorm(x, weight, eps, cpu_out).ok());
      ExpectClose(Host(dx), Values(cpu_out), 1e-6, "rms_norm in place vs cpu");

      // residual += delta; out = norm(residual), with out aliasing delta.
      Tensor residual = OnDevice(x);
      Tensor d = OnDevice(delta);
      ASSERT_TRUE(cuda().AddRmsNorm(residual, d, OnDevice(weight), eps, d).ok());
      std::vector<double> sum = Values(x);
      for (int64_t i = 0; i < rows * width; ++i) sum[i] += ValueAt(delta, i);
      ExpectClose(Host(residual), sum, 1e-6, "residual");
      ExpectClose(Host(d),
                  kernels::cuda_ops::ReferenceRmsNorm(sum, rows, width, Values(weight), eps), 1e-5,
                  "add_rms_norm");
    }
  }
}

TEST_F(CudaOpsTest, RopeRotatesHalvesPairsAndPartialDims) {
  struct Case {
    int64_t heads, head_dim, rotary;
    bool interleaved;
  };
  for (const Case c : {Case{3, 16, 16, false}, Case{5, 12, 8, false}, Case{4, 64, 64, true},
                       Case{2, 40, 24, true}}) {
    const int64_t tokens = 23, max_pos = 300, half = c.rotary / 2;
    std::vector<double> inv_freq(half);
    Tensor cos = Tensor::Zeros(DType::kF32, {max_pos, half});
    Tensor sin = Tensor::Zeros(DType::kF32, {max_pos, half});
    for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(10000.0, -2.0 * i / c.rotary);
    for (int64_t p = 0; p < max_pos; ++p) {
      for (int64_t i = 0; i < half; ++i) {
        cos.data_as<float>()[p * half + i] = static_cast<float>(std::cos(p * inv_freq[i]));
        sin.data_as<float>()[p * half + i] = static_cast<float>(std::sin(p * inv_freq[i]));
      }
    }
    std::vector<int32_t> positions(tokens);
    for (auto& p : positions) p = static_cast<int32_t>(rng_() % max_pos);
    Tensor x = Random({tokens, c.heads, c.head_dim});
    Tensor dx = OnDevice(x);
    RopeTables tables{.cos = OnDevice(cos),
                      .sin = OnDevice(sin),
                      .rotary_dim = c.rotary,
                      .interleaved = c.interleaved};
    ASSERT_TRUE(cuda().Rope(dx, OnDevice(Indices(positions)), tables).ok());
    ExpectClose(Host(dx),
                kernels::cuda_ops::ReferenceRope(Values(x), tokens, c.heads, c.head_dim, positions,
                                                 inv_freq, c.rotary, c.interleaved),
                1e-5, "rope");
    // The CPU backend computes the same rounded operations from the same tables.
    RopeTables host_tables{
        .cos = cos, .sin = sin, .rotary_dim = c.rotary, .interleaved = c.interleaved};
    ASSERT_TRUE(cpu().Rope(x, Indices(positions), host_tables).ok());
    ExpectClose(Host(dx), Values(x), 0.0, "rope vs cpu (bitwise)");
  }
}

TEST_F(CudaOpsTest, DenseLinearMatchesFloat64ForEveryDTypeAndKernel) {
  // m spans the GEMV (<= 8), the GEMMs (> 8, several row tiles); k and n odd and aligned.
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (auto [m, k, n] : {std::tuple{1, 7, 5},
                           {3, 33, 17},
                           {8, 256, 131},
                           {9, 130, 67},
                           {70, 96, 259},
                           {130, 517, 45}}) {
      SCOPED_TRACE(std::string(DTypeName(dtype)) + " m=" + std::to_string(m) +
                   " k=" + std::to_string(k) + " n=" + std::to_string(n));
      Tensor x = Random({m, k});
      Tensor w = Random({n, k}, dtype, 0.5f);
      auto weight = cuda().PrepareWeight(*Weight::Dense(w));
      ASSERT_TRUE(weight.ok()) << weight.status();
      Tensor y = Poisoned({m, n});
      ASSERT_TRUE(cuda().Linear(OnDevice(x), *weight, y).ok());
      std::vector<double> xv = Values(x);
      // The tensor-core GEMM rounds activations to bf16 (bf16 weights above the GEMV's m).
      const bool bf16_x = dtype == DType::kBF16 && m > KernelConfig{}.dense_gemv_max_m;
      if (bf16_x) {
        for (double& v : xv) v = Bf16ToFloat(FloatToBf16(static_cast<float>(v)));
      }
      const auto want = kernels::cuda_ops::ReferenceLinear(xv, Values(w), m, n, k);
      ExpectClose(Host(y), want, 2e-5, "linear");
    }
  }
}

TEST_F(CudaOpsTest, Nvfp4LinearMatchesTheFloat64ReferenceOnBf16Activations) {
  for (auto [m, n, k] : {std::tuple{3, 29, 208}, {1, 37, 272}, {40, 53, 144}, {130, 19, 64}}) {
    SCOPED_TRACE("m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
    Tensor w = Random({n, k});
    Tensor codes = Tensor::Zeros(DType::kU8, {n, k / 2});
    Tensor scales = Tensor::Zeros(DType::kF8E4M3, {n, k / 16});
    float global = 0;
    kernels::Nvfp4QuantizeWeightReference(w.data_as<float>(), n, k, k, codes.data_as<uint8_t>(),
                                          k / 2, scales.data_as<uint8_t>(), k / 16, &global);
    auto host_weight =
        Weight::Nvfp4({.codes = codes, .block_scales = scales, .global_scale = global});
    ASSERT_TRUE(host_weight.ok());
    auto weight = cuda().PrepareWeight(*host_weight);
    ASSERT_TRUE(weight.ok()) << weight.status();
    Tensor x = Random({m, k});
    Tensor y = Poisoned({m, n});
    ASSERT_TRUE(cuda().Linear(OnDevice(x), *weight, y).ok());
    // W4A16: the kernels see bf16 activations; the reference takes them exactly.
    Tensor xb = x.Clone();
    for (int64_t i = 0; i < xb.numel(); ++i) {
      xb.data_as<float>()[i] = Bf16ToFloat(FloatToBf16(xb.data_as<float>()[i]));
    }
    std::vector<double> want(m * n);
    kernels::Nvfp4GemmReference(xb.data_as<float>(), m, k, k, codes.data_as<uint8_t>(), k / 2,
                                scales.data_as<uint8_t>(), k / 16, global, n, want.data(), n);
    ExpectClose(Host(y), want, 1e-5, "nvfp4 linear");
    // The CPU backend keeps f32 activations: the two differ by the bf16 rounding of x.
    Tensor cpu_y = Tensor::Zeros(DType::kF32, {m, n});
    ASSERT_TRUE(cpu().Linear(x, *host_weight, cpu_y).ok());
    ExpectClose(Host(y), Values(cpu_y), 2e-2, "nvfp4 linear vs cpu");
  }
}

TEST_F(CudaOpsTest, ElementwiseAndRowCopies) {
  const int64_t rows = 19, width = 333;
  Tensor a = Random({rows, width});
  Tensor b = Random({rows, width});
  Tensor da = OnDevice(a);
  ASSERT_TRUE(cuda().Add(da, OnDevice(b)).ok());
  std::vector<double> sum(rows * width);  // f32 additions, exactly
  for (int64_t i = 0; i < rows * width; ++i) {
    sum[i] = a.data_as<float>()[i] + b.data_as<float>()[i];
  }
  ExpectClose(Host(da), sum, 0.0, "add");

  Tensor gate = Random({rows, width}, DType::kF32, 3.0f);
  Tensor dg = OnDevice(gate);
  ASSERT_TRUE(cuda().SwiGlu(dg, OnDevice(b), dg).ok());  // out aliases gate
  ExpectClose(Host(dg), kernels::cuda_ops::ReferenceSwiGlu(Values(gate), Values(b)), 1e-6,
              "swiglu");

  const std::vector<int32_t> picked = {18, 0, 7, 7, 3};
  Tensor gathered = Poisoned({std::ssize(picked), width});
  ASSERT_TRUE(cuda().GatherRows(OnDevice(a), OnDevice(Indices(picked)), gathered).ok());
  ExpectClose(Host(gathered), kernels::cuda_ops::ReferenceGatherRows(Values(a), width, picked), 0.0,
              "gather_rows");

  // Columns [5, 5 + 101) of a into columns [200, 301) of c; the rest of c stays as it was.
  Tensor c = Random({rows, width});
  Tensor dc = OnDevice(c);
  ASSERT_TRUE(cuda().CopyColumns(OnDevice(a), 5, dc, 200, 101).ok());
  std::vector<double> want = Values(c);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < 101; ++j) want[r * width + 200 + j] = ValueAt(a, r * width + 5 + j);
  }
  ExpectClose(Host(dc), want, 0.0, "copy_columns");
}

// A paged batch: decodes first, then prefill chunks; every sequence's whole context stored in
// the cache at scattered blocks.
struct PagedCase {
  int64_t heads, kv_heads, head_dim, v_head_dim;
  std::vector<int64_t> query_lens;  // 1 for the leading decodes
  std::vector<int64_t> seq_lens;
  DType cache = DType::kF32;
};

class PagedAttentionTest : public CudaOpsTest {
 protected:
  void Run(const PagedCase& c, double tolerance) {
    constexpr int64_t kBlock = 16;
    const int64_t seqs = std::ssize(c.seq_lens);
    int64_t max_blocks = 1, total_blocks = 0;
    for (int64_t len : c.seq_lens) {
      max_blocks = std::max(max_blocks, (len + kBlock - 1) / kBlock);
      total_blocks += (len + kBlock - 1) / kBlock;
    }
    const int64_t num_blocks = total_blocks + 3;
    std::vector<int32_t> free(num_blocks);
    std::iota(free.begin(), free.end(), 0);
    std::shuffle(free.begin(), free.end(), rng_);
    std::vector<int32_t> table(seqs * max_blocks, 0), all_slots, query_start = {0}, lens;
    std::vector<int32_t> query_slots;
    int64_t tokens = 0, decodes = 0, max_query = 0, max_len = 0;
    for (int64_t b = 0; b < seqs; ++b) {
      const int64_t len = c.seq_lens[b];
      for (int64_t i = 0; i < (len + kBlock - 1) / kBlock; ++i) {
        table[b * max_blocks + i] = free.back();
        free.pop_back();
      }
      for (int64_t p = 0; p < len; ++p) {
        all_slots.push_back(table[b * max_blocks + p / kBlock] * kBlock + p % kBlock);
      }
      tokens += c.query_lens[b];
      query_start.push_back(static_cast<int32_t>(tokens));
      lens.push_back(static_cast<int32_t>(len));
      if (c.query_lens[b] == 1 && decodes == b) ++decodes;
      max_query = std::max(max_query, c.query_lens[b]);
      max_len = std::max(max_len, len);
    }
    // The whole contexts' keys and values, stored by one StoreKv (with a skipped token).
    const int64_t stored = std::ssize(all_slots);
    Tensor k = Random({stored + 1, c.kv_heads, c.head_dim});
    Tensor v = Random({stored + 1, c.kv_heads, c.v_head_dim});
    all_slots.push_back(-1);
    Tensor k_cache = *cuda().Allocate(c.cache, {num_blocks, kBlock, c.kv_heads, c.head_dim});
    Tensor v_cache = *cuda().Allocate(c.cache, {num_blocks, kBlock, c.kv_heads, c.v_head_dim});
    ASSERT_TRUE(
        cuda()
            .StoreKv(OnDevice(k), OnDevice(v), OnDevice(Indices(all_slots)), k_cache, v_cache)
            .ok());
    kernels::cuda_ops::ReferenceKv ref{
        .k = std::vector<double>(num_blocks * kBlock * c.kv_heads * c.head_dim),
        .v = std::vector<double>(num_blocks * kBlock * c.kv_heads * c.v_head_dim),
        .kv_heads = c.kv_heads,
        .head_dim = c.head_dim,
        .v_head_dim = c.v_head_dim,
        .block_size = kBlock};
    std::vector<double> kv_values = Values(k), vv_values = Values(v);
    if (c.cache == DType::kBF16) {  // the cache holds bf16-rounded values
      for (double& x : kv_values) x = Bf16ToFloat(FloatToBf16(static_cast<float>(x)));
      for (double& x : vv_values) x = Bf16ToFloat(FloatToBf16(static_cast<float>(x)));
    }
    kernels::cuda_ops::ReferenceStoreKv(kv_values, vv_values, all_slots, ref);
    if (c.cache == DType::kF32) {
      std::vector<double> cached = Values(Host(k_cache));
      ASSERT_EQ(cached.size(), ref.k.size());
      for (int64_t slot : all_slots) {
        if (slot < 0) continue;
        for (int64_t e = 0; e < c.kv_heads * c.head_dim; ++e) {
          ASSERT_EQ(cached[slot * c.kv_heads * c.head_dim + e],
                    ref.k[slot * c.kv_heads * c.head_dim + e]);
        }
      }
    }

    Tensor q = Random({tokens, c.heads, c.head_dim});
    AttentionMetadata m;
    m.num_seqs = seqs;
    m.num_decodes = decodes;
    m.num_tokens = tokens;
    m.max_query_len = max_query;
    m.max_seq_len = max_len;
    m.block_size = kBlock;
    m.query_start = OnDevice(Indices(query_start));
    m.seq_lens = OnDevice(Indices(lens));
    m.block_table = *OnDevice(Indices(table)).Reshape({seqs, max_blocks});
    m.slot_mapping = OnDevice(Indices(std::vector<int32_t>(tokens, -1)));
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
    Tensor out = Poisoned({tokens, c.heads, c.v_head_dim});
    auto status = cuda().PagedAttention(OnDevice(q), k_cache, v_cache, m, scale, out);
    ASSERT_TRUE(status.ok()) << status;
    const auto want = kernels::cuda_ops::ReferencePagedAttention(
        Values(q), c.heads, ref, query_start, lens, table, max_blocks, scale);
    // Decode rows are f32 throughout; prefill rows go through bf16 tensor cores.
    Tensor got = Host(out);
    const int64_t row = c.heads * c.v_head_dim;
    const int64_t decode_values = decodes * row;
    std::vector<double> want_decode(want.begin(), want.begin() + decode_values);
    std::vector<double> want_prefill(want.begin() + decode_values, want.end());
    ExpectClose(*got.SliceRows(0, decodes), want_decode, 2e-5, "decode rows");
    ExpectClose(*got.SliceRows(decodes, tokens), want_prefill, tolerance, "prefill rows");
  }
};

TEST_F(PagedAttentionTest, DecodeGqaShortAndSplitLongContexts) {
  // Group sizes 1, 4 and 12 (two blocks of heads per kv head); contexts from one key to several
  // splits (DecodeSplitLength: 256 keys and up, at most 16 splits).
  Run({.heads = 4,
       .kv_heads = 4,
       .head_dim = 12,
       .v_head_dim = 12,
       .query_lens = {1, 1, 1},
       .seq_lens = {1, 17, 300}},
      0);
  Run({.heads = 8,
       .kv_heads = 2,
       .head_dim = 64,
       .v_head_dim = 64,
       .query_lens = {1, 1},
       .seq_lens = {700, 33}},
      0);
  Run({.heads = 12,
       .kv_heads = 1,
       .head_dim = 80,
       .v_head_dim = 80,
       .query_lens = {1, 1},
       .seq_lens = {4200, 257}},
      0);
}

TEST_F(PagedAttentionTest, PrefillChunksOnTensorCoresNextToDecodes) {
  // Several 64-query tiles, chunks that start mid-sequence, odd head dims padded to 32/64/128.
  Run({.heads = 6,
       .kv_heads = 3,
       .head_dim = 12,
       .v_head_dim = 12,
       .query_lens = {1, 37, 150},
       .seq_lens = {90, 37, 181}},
      1.5e-2);
  Run({.heads = 8,
       .kv_heads = 2,
       .head_dim = 64,
       .v_head_dim = 64,
       .query_lens = {1, 1, 5, 70},
       .seq_lens = {40, 300, 5, 200}},
      1.5e-2);
  Run({.heads = 4,
       .kv_heads = 1,
       .head_dim = 96,
       .v_head_dim = 96,
       .query_lens = {65},
       .seq_lens = {130}},
      1.5e-2);
}

TEST_F(PagedAttentionTest, WideHeadsAndBf16Cache) {
  Run({.heads = 2,
       .kv_heads = 1,
       .head_dim = 256,
       .v_head_dim = 256,
       .query_lens = {1, 40},
       .seq_lens = {100, 90}},
      1.5e-2);
  Run({.heads = 8,
       .kv_heads = 4,
       .head_dim = 64,
       .v_head_dim = 64,
       .query_lens = {1, 1, 33},
       .seq_lens = {500, 20, 60},
       .cache = DType::kBF16},
      1.5e-2);
}

TEST_F(PagedAttentionTest, MatchesTheCpuBackendOnTheSameCache) {
  // Same cache contents on both backends (the CPU reads a host copy of the device pools).
  const int64_t heads = 6, kv = 2, d = 16, block = 16, blocks = 12;
  Tensor k_host = Random({blocks, block, kv, d});
  Tensor v_host = Random({blocks, block, kv, d});
  const std::vector<int32_t> query_start = {0, 1, 30}, lens = {50, 60};
  const std::vector<int32_t> table = {3, 7, 1, 0, 9, 2, 5, 11};
  const int64_t tokens = 30;
  Tensor q = Random({tokens, heads, d});
  AttentionMetadata m{.num_seqs = 2,
                      .num_decodes = 1,
                      .num_tokens = tokens,
                      .max_query_len = 29,
                      .max_seq_len = 60,
                      .block_size = block};
  AttentionMetadata host = m;
  host.query_start = Indices(query_start);
  host.seq_lens = Indices(lens);
  host.block_table = *Indices(table).Reshape({2, 4});
  host.slot_mapping = Indices(std::vector<int32_t>(tokens, -1));
  m.query_start = OnDevice(host.query_start);
  m.seq_lens = OnDevice(host.seq_lens);
  m.block_table = *OnDevice(Indices(table)).Reshape({2, 4});
  m.slot_mapping = OnDevice(host.slot_mapping);
  const float scale = 0.25f;
  Tensor out = Poisoned({tokens, heads, d});
  ASSERT_TRUE(
      cuda().PagedAttention(OnDevice(q), OnDevice(k_host), OnDevice(v_host), m, scale, out).ok());
  Tensor want = Tensor::Zeros(DType::kF32, {tokens, heads, d});
  ASSERT_TRUE(cpu().PagedAttention(q, k_host, v_host, host, scale, want).ok());
  Tensor got = Host(out);
  ExpectClose(*got.SliceRows(0, 1), Values(*want.SliceRows(0, 1)), 1e-5, "decode vs cpu");
  ExpectClose(*got.SliceRows(1, tokens), Values(*want.SliceRows(1, tokens)), 1.5e-2,
              "prefill vs cpu");
}

// ---- Sampling

std::vector<int32_t> RandomIds(std::mt19937& rng, int count, int vocab) {
  std::vector<int32_t> ids(count);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
  return ids;
}

TEST_F(CudaOpsTest, SampleGivesTheCpuSamplersTokenForTheSameUniform) {
  const int64_t vocab = 1537, limit = 1500;
  // Rows of every kind: greedy, plain temperature, top-k, top-p, min-p, all of them, penalties
  // and bans, logprobs, ties (a coarse grid of logit values).
  std::vector<SamplingParams> kinds = {
      {.temperature = 0.0f},
      {.temperature = 0.8f, .seed = 11},
      {.temperature = 1.3f, .top_k = 40, .seed = 12},
      {.temperature = 1.0f, .top_p = 0.7f, .seed = 13},
      {.temperature = 0.6f, .min_p = 0.05f, .seed = 14},
      {.temperature = 0.9f, .top_k = 100, .top_p = 0.9f, .min_p = 0.01f, .seed = 15},
      {.temperature = 1.0f,
       .repetition_penalty = 1.3f,
       .presence_penalty = 0.5f,
       .frequency_penalty = 0.25f,
       .seed = 16,
       .logprobs = 5},
      {.temperature = 0.0f, .repetition_penalty = 1.8f, .logprobs = 20},
      {.temperature = 2.0f, .top_k = 1, .seed = 17, .logprobs = 0},
      {.temperature = 1e-3f, .top_p = 0.5f, .seed = 18},
  };
  const int rows = 20;
  std::vector<std::vector<int32_t>> prompts(rows), outputs(rows), banned(rows);
  std::vector<SamplingRow> sampling(rows);
  Tensor logits = Tensor::Zeros(DType::kF32, {rows, vocab});
  for (int r = 0; r < rows; ++r) {
    std::normal_distribution<float> dist(0.0f, 1.0f + 3.0f * (r % 3));
    for (int64_t i = 0; i < vocab; ++i) {
      float v = dist(rng_);
      if (r % 4 == 1) v = std::round(v * 2.0f) / 2.0f;  // many ties
      logits.data_as<float>()[r * vocab + i] = v;
    }
    if (r % 5 == 2) logits.data_as<float>()[r * vocab + 3] = -INFINITY;
    prompts[r] = RandomIds(rng_, 20 + r, static_cast<int>(vocab));
    outputs[r] = RandomIds(rng_, r, static_cast<int>(vocab));
    if (r % 3 == 0) banned[r] = {7, 1499, 1520};
    sampling[r].params = kinds[r % kinds.size()];
    sampling[r].params.seed += 1000 * r;
    sampling[r].output_index = 3 * r + 1;
    sampling[r].prompt_tokens = prompts[r];
    sampling[r].output_tokens = outputs[r];
    sampling[r].banned_tokens = banned[r];
  }
  Tensor device_logits = OnDevice(logits);
  std::vector<SampledToken> got(rows), want(rows);
  ASSERT_TRUE(cuda().Sample(device_logits, limit, sampling, got).ok());
  ASSERT_TRUE(cpu().Sample(logits, limit, sampling, want).ok());
  for (int r = 0; r < rows; ++r) {
    SCOPED_TRACE("row " + std::to_string(r));
    EXPECT_EQ(got[r].token, want[r].token);
    EXPECT_NEAR(got[r].logprob, want[r].logprob, 1e-5);
    ASSERT_EQ(got[r].num_top, want[r].num_top);
    for (int j = 0; j < want[r].num_top; ++j) {
      EXPECT_EQ(got[r].top[j].token, want[r].top[j].token);
      EXPECT_NEAR(got[r].top[j].logprob, want[r].top[j].logprob, 1e-5);
    }
  }
  // The op undoes its in-place penalties: the device logits are unchanged.
  ExpectClose(Host(device_logits), Values(logits), 0.0, "logits after sampling");

  // Many uniforms on one row: the same token as CpuSampler::SampleRow given that uniform.
  kernels::CpuSampler sampler;
  for (const SamplingParams& params : kinds) {
    for (uint64_t index = 0; index < 6; ++index) {
      SamplingRow row;
      row.params = params;
      row.output_index = index;
      const int r = static_cast<int>(index % rows);
      row.prompt_tokens = prompts[r];
      row.output_tokens = outputs[r];
      SampledToken one[1], cpu_one;
      Tensor line = *device_logits.SliceRows(r, r + 1);
      ASSERT_TRUE(cuda().Sample(line, vocab, {&row, 1}, one).ok());
      const std::span<const float> host_row(logits.data_as<float>() + r * vocab, vocab);
      ASSERT_TRUE(
          sampler.SampleRow(host_row, vocab, row, SamplingUniform(params.seed, index), cpu_one)
              .ok());
      EXPECT_EQ(one[0].token, cpu_one.token) << "seed " << params.seed << " index " << index;
    }
  }
}

TEST_F(CudaOpsTest, SampleRefusesNanAndRowsWithNothingToChoose) {
  const int64_t vocab = 300;
  Tensor logits = Random({2, vocab});
  logits.data_as<float>()[vocab + 123] = NAN;
  std::vector<SamplingRow> rows(2);
  std::vector<SampledToken> out(2);
  auto status = cuda().Sample(OnDevice(logits), vocab, rows, out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("row 1: logit of id 123 is nan"), std::string::npos) << status;

  Tensor all_banned = Random({1, 4});
  std::vector<int32_t> ban = {0, 1, 2, 3};
  SamplingRow row;
  row.banned_tokens = ban;
  SampledToken one[1];
  status = cuda().Sample(OnDevice(all_banned), 4, {&row, 1}, one);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("no token can be chosen"), std::string::npos) << status;
}

// ---- Contract checks

TEST_F(CudaOpsTest, OpsRefuseHostTensorsAndWrongShapesNamingThem) {
  Tensor x = Random({2, 8});
  auto w = cuda().PrepareWeight(*Weight::Dense(Random({4, 8})));
  ASSERT_TRUE(w.ok());
  Tensor y = Poisoned({2, 4});
  auto status = cuda().Linear(x, *w, y);  // x still on the host
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("linear: x is f32[2, 8] on the host"), std::string::npos)
      << status;
  Tensor bad = Poisoned({2, 5});
  status = cuda().Linear(OnDevice(x), *w, bad);
  EXPECT_NE(status.message().find("linear: out is f32[2, 5], expected f32[2, 4]"),
            std::string::npos)
      << status;
  status = cuda().Linear(OnDevice(x), *Weight::Dense(Random({4, 8})), y);  // not prepared
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST_F(CudaOpsTest, OpsBeyondTheSizedScratchAreResourceExhausted) {
  const int64_t k = 1040;  // > max_linear_k 1024
  Tensor codes = Tensor::Zeros(DType::kU8, {3, k / 2});
  Tensor scales = Tensor::Zeros(DType::kF8E4M3, {3, k / 16});
  auto w = cuda().PrepareWeight(*Weight::Nvfp4({.codes = codes, .block_scales = scales}));
  ASSERT_TRUE(w.ok());
  Tensor y = Poisoned({1, 3});
  auto status = cuda().Linear(OnDevice(Random({1, k})), *w, y);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("max_linear_k"), std::string::npos) << status;
}

TEST_F(CudaOpsTest, GraphReplayRerunsTheCapturedOpsOnNewInputs) {
  auto* graphs = AsCudaBackend(cuda());
  ASSERT_NE(graphs, nullptr);
  const int64_t rows = 3, width = 65;
  Tensor x = OnDevice(Random({rows, width}));
  Tensor weight = OnDevice(Random({width}));
  Tensor out = Poisoned({rows, width});
  ASSERT_TRUE(graphs->BeginCapture().ok());
  ASSERT_TRUE(cuda().RmsNorm(x, weight, 1e-6f, out).ok());
  ASSERT_TRUE(cuda().Add(out, x).ok());
  // Host copies cannot be part of a graph.
  float probe = 0;
  EXPECT_EQ(cuda().CopyToHost(*out.SliceRows(0, 1), &probe).code(),
            absl::StatusCode::kFailedPrecondition);
  auto graph = graphs->EndCapture();
  ASSERT_TRUE(graph.ok()) << graph.status();
  for (int round = 0; round < 2; ++round) {
    Tensor host_x = Random({rows, width});
    ASSERT_TRUE(cuda().CopyFromHost(host_x.data(), x).ok());
    ASSERT_TRUE(graphs->Replay(*graph).ok());
    Tensor host_w = Host(weight);
    std::vector<double> want =
        kernels::cuda_ops::ReferenceRmsNorm(Values(host_x), rows, width, Values(host_w), 1e-6);
    for (int64_t i = 0; i < rows * width; ++i) want[i] += ValueAt(host_x, i);
    ExpectClose(Host(out), want, 1e-5, "replay " + std::to_string(round));
  }
}

TEST(CudaBackendArenaTest, AReservedArenaRefusesAllocationsPastThePlan) {
#if defined(SPARKSTACK_CUDA_EMULATION)
  emu::SetEmulatedDevice(emu::Gb10Device());
#endif
  CudaBackendOptions options = TestOptions();
  options.arena_bytes = CudaScratchBytes(options) + (1 << 20);
  auto backend = MakeCudaBackend(options);
#if !defined(SPARKSTACK_CUDA_EMULATION)
  if (!backend.ok() && absl::IsFailedPrecondition(backend.status())) {
    GTEST_SKIP() << backend.status().message();
  }
#endif
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_LE((*backend)->AvailableMemory(), 1 << 20);
  EXPECT_TRUE((*backend)->Allocate(DType::kF32, {1000}).ok());
  auto too_big = (*backend)->Allocate(DType::kF32, {1 << 20});
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(too_big.status().message().find("memory plan"), std::string::npos) << too_big.status();
}

}  // namespace
}  // namespace sparkstack
