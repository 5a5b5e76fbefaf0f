// Every CPU backend op against a float64 reference written here from the op's definition (see
// runtime/backend/backend.h), on fresh random data at odd sizes, plus each op's argument errors.
// Paged attention and the KV store have their own file (cpu_paged_attention_test.cc).
#include "runtime/backend/cpu/cpu_backend.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "kernels/cpu/nvfp4_self_check.h"
#include "tests/unit/backend/backend_test_util.h"

namespace sparkstack {
namespace {

using testing::ExpectClose;
using testing::Indices;
using testing::Poison;
using testing::ValueAt;

class CpuBackendTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> backend_ = MakeCpuBackend({.threads = 3});
  std::mt19937 rng_{std::random_device{}()};

  Tensor Random(const Shape& shape, DType dtype = DType::kF32, float scale = 1.0f) {
    return testing::RandomTensor(rng_, shape, dtype, scale);
  }
  Weight Prepared(const Tensor& matrix) {
    auto w = Weight::Dense(matrix);
    EXPECT_TRUE(w.ok()) << w.status();
    auto prepared = backend_->PrepareWeight(*w);
    EXPECT_TRUE(prepared.ok()) << prepared.status();
    return *prepared;
  }
};

// y = x W^T in float64 for x [m, k] and W [n, k].
std::vector<double> ReferenceLinear(const Tensor& x, const Tensor& w) {
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(0);
  std::vector<double> y(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) sum += ValueAt(x, i * k + p) * ValueAt(w, j * k + p);
      y[i * n + j] = sum;
    }
  }
  return y;
}

void ExpectErrorNaming(const absl::Status& status, const std::string& text) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(text), std::string::npos)
      << "'" << status.message() << "' does not name '" << text << "'";
}

// ---- Linear

TEST_F(CpuBackendTest, DenseLinearMatchesFloat64ForEveryDTypeAtOddSizes) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (auto [m, k, n] : {std::tuple{1, 7, 5},
                           {3, 33, 17},
                           {5, 130, 67},
                           {2, 1000, 3},
                           {7, 65, 129},
                           {40, 97, 70},
                           {200, 31, 9}}) {
      Tensor x = Random({m, k});
      Tensor w = Random({n, k}, dtype);
      Tensor y = Tensor::Zeros(DType::kF32, {m, n});
      Poison(y);
      ASSERT_TRUE(backend_->Linear(x, Prepared(w), y).ok());
      ExpectClose(y, ReferenceLinear(x, w), 1e-5);
    }
  }
}

// A row's result does not depend on the other rows nor on the thread count, bit for bit.
TEST_F(CpuBackendTest, DenseLinearRowsEqualThemselvesAloneAndOnOneThread) {
  const int64_t m = 37, k = 300, n = 517;  // large enough for the threaded, blocked paths
  Tensor x = Random({m, k});
  Tensor w = Random({n, k}, DType::kBF16);
  Weight weight = Prepared(w);
  Tensor all = Tensor::Zeros(DType::kF32, {m, n});
  ASSERT_TRUE(backend_->Linear(x, weight, all).ok());
  auto one_thread = MakeCpuBackend({.threads = 1});
  Tensor serial = Tensor::Zeros(DType::kF32, {m, n});
  ASSERT_TRUE(one_thread->Linear(x, weight, serial).ok());  // a weight prepared elsewhere works
  EXPECT_EQ(std::memcmp(all.data(), serial.data(), all.nbytes()), 0);
  for (int64_t r : {0, 5, 36}) {
    Tensor row = *x.SliceRows(r, r + 1);
    Tensor alone = Tensor::Zeros(DType::kF32, {1, n});
    ASSERT_TRUE(backend_->Linear(row, weight, alone).ok());
    EXPECT_EQ(std::memcmp(alone.data(), all.data_as<float>() + r * n, n * sizeof(float)), 0)
        << "row " << r;
  }
}

TEST_F(CpuBackendTest, PrepareWeightIsIdempotentAndLinearRefusesUnpreparedWeights) {
  Tensor w = Random({9, 20});
  Weight prepared = Prepared(w);
  auto again = backend_->PrepareWeight(prepared);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->dense().data(), prepared.dense().data());
  Tensor x = Random({2, 20});
  Tensor y = Tensor::Zeros(DType::kF32, {2, 9});
  ExpectErrorNaming(backend_->Linear(x, *Weight::Dense(w), y), "not prepared");
  Tensor y4 = Tensor::Zeros(DType::kF32, {2, 4});
  ExpectErrorNaming(backend_->Linear(x, *prepared.SliceRows(0, 4), y4), "not prepared");
}

TEST_F(CpuBackendTest, LinearRejectsMismatchedShapes) {
  Weight w = Prepared(Random({4, 9}));
  Tensor y = Tensor::Zeros(DType::kF32, {2, 4});
  ExpectErrorNaming(backend_->Linear(Random({2, 8}), w, y), "linear: x is f32[2, 8]");
  ExpectErrorNaming(backend_->Linear(Random({2, 9}, DType::kBF16), w, y), "linear: x is bf16");
  Tensor wrong_out = Tensor::Zeros(DType::kF32, {2, 5});
  ExpectErrorNaming(backend_->Linear(Random({2, 9}), w, wrong_out), "linear: out is f32[2, 5]");
}

TEST_F(CpuBackendTest, Nvfp4LinearMatchesTheFloat64ReferenceAtOddSizes) {
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{5, 29, 208},
                         {1, 1, 16},
                         {13, 67, 400},
                         {70, 33, 96}}) {
    Tensor w = Random({n, k});
    Tensor codes = Tensor::Zeros(DType::kU8, {n, k / 2});
    Tensor scales = Tensor::Zeros(DType::kF8E4M3, {n, k / 16});
    float global = 0;
    kernels::Nvfp4QuantizeWeightReference(w.data_as<float>(), n, k, k, codes.data_as<uint8_t>(),
                                          k / 2, scales.data_as<uint8_t>(), k / 16, &global);
    auto weight = Weight::Nvfp4({.codes = codes, .block_scales = scales, .global_scale = global});
    ASSERT_TRUE(weight.ok()) << weight.status();
    auto prepared = backend_->PrepareWeight(*weight);
    ASSERT_TRUE(prepared.ok());
    Tensor x = Random({m, k});
    Tensor y = Tensor::Zeros(DType::kF32, {m, n});
    Poison(y);
    ASSERT_TRUE(backend_->Linear(x, *prepared, y).ok());
    std::vector<double> want(m * n);
    kernels::Nvfp4GemmReference(x.data_as<float>(), m, k, k, codes.data_as<uint8_t>(), k / 2,
                                scales.data_as<uint8_t>(), k / 16, global, n, want.data(), n);
    ExpectClose(y, want, 1e-5);
  }
}

TEST(Nvfp4CpuSelfCheckTest, EveryPathThisCpuRunsAgreesAndOneIsSelected) {
  EXPECT_TRUE(kernels::Nvfp4CpuPathAgreesWithReference(kernels::Nvfp4CpuPath::kScalar));
  const auto best = kernels::BestNvfp4CpuPath();
  EXPECT_TRUE(kernels::Nvfp4CpuPathAgreesWithReference(best)) << kernels::Nvfp4CpuPathName(best);
  EXPECT_EQ(kernels::SelectVerifiedNvfp4CpuPath(), best);
}

// ---- Norms

std::vector<double> ReferenceRmsNorm(const std::vector<double>& x, int64_t rows, int64_t width,
                                     const Tensor& w, double eps) {
  std::vector<double> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < width; ++i) ss += x[r * width + i] * x[r * width + i];
    const double inv = 1.0 / std::sqrt(ss / width + eps);
    for (int64_t i = 0; i < width; ++i) out[r * width + i] = x[r * width + i] * inv * ValueAt(w, i);
  }
  return out;
}

std::vector<double> Values(const Tensor& t) {
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = ValueAt(t, i);
  return v;
}

TEST_F(CpuBackendTest, RmsNormMatchesFloat64ForEveryWeightDType) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (auto [rows, width] : {std::pair<int64_t, int64_t>{5, 77}, {1, 1}, {3, 64}, {300, 129}}) {
      const float eps = 1e-5f;
      Tensor x = Random({rows, width}, DType::kF32, 3.0f);
      Tensor w = Random({width}, dtype);
      Tensor out = Tensor::Zeros(DType::kF32, {rows, width});
      Poison(out);
      ASSERT_TRUE(backend_->RmsNorm(x, w, eps, out).ok());
      const auto want = ReferenceRmsNorm(Values(x), rows, width, w, eps);
      ExpectClose(out, want, 1e-6);
      ASSERT_TRUE(backend_->RmsNorm(x, w, eps, x).ok());  // out may alias x
      ExpectClose(x, want, 1e-6);
    }
  }
}

TEST_F(CpuBackendTest, AddRmsNormAddsTheResidualAndNormalizesInOnePass) {
  for (auto [rows, width] : {std::pair<int64_t, int64_t>{4, 90}, {1, 7}, {257, 200}}) {
    const float eps = 1e-6f;
    Tensor residual = Random({rows, width}, DType::kF32, 2.0f);
    Tensor delta = Random({rows, width});
    Tensor w = Random({width}, DType::kBF16);
    std::vector<double> sum(rows * width);
    for (int64_t i = 0; i < rows * width; ++i) sum[i] = ValueAt(residual, i) + ValueAt(delta, i);
    const auto want = ReferenceRmsNorm(sum, rows, width, w, eps);
    Tensor out = Tensor::Zeros(DType::kF32, {rows, width});
    Poison(out);
    Tensor residual2 = residual.Clone();
    ASSERT_TRUE(backend_->AddRmsNorm(residual, delta, w, eps, out).ok());
    ExpectClose(residual, sum, 1e-7);
    ExpectClose(out, want, 1e-6);
    ASSERT_TRUE(backend_->AddRmsNorm(residual2, delta, w, eps, delta).ok());  // out aliases delta
    ExpectClose(residual2, sum, 1e-7);
    ExpectClose(delta, want, 1e-6);
  }
}

TEST_F(CpuBackendTest, NormsRejectMismatchedShapes) {
  Tensor x = Random({3, 8});
  Tensor out = Tensor::Zeros(DType::kF32, {3, 8});
  ExpectErrorNaming(backend_->RmsNorm(x, Random({7}), 1e-5f, out), "rms_norm: weight");
  ExpectErrorNaming(backend_->RmsNorm(Random({24}), Random({8}), 1e-5f, out), "rms_norm: x");
  Tensor bad_out = Tensor::Zeros(DType::kF32, {3, 9});
  ExpectErrorNaming(backend_->RmsNorm(x, Random({8}), 1e-5f, bad_out), "rms_norm: out");
  ExpectErrorNaming(backend_->AddRmsNorm(x, Random({3, 7}), Random({8}), 1e-5f, out),
                    "add_rms_norm: delta");
  ExpectErrorNaming(backend_->AddRmsNorm(x, Random({3, 8}), Random({8}, DType::kI32), 1e-5f, out),
                    "add_rms_norm: weight");
}

// ---- RoPE

// Tables as RopeTables holds them: cos/sin of p * inv_freq[i] computed in float64, rounded.
RopeTables MakeRopeTables(int64_t max_positions, int64_t rotary_dim, bool interleaved) {
  const int64_t half = rotary_dim / 2;
  RopeTables tables;
  tables.cos = Tensor::Zeros(DType::kF32, {max_positions, half});
  tables.sin = Tensor::Zeros(DType::kF32, {max_positions, half});
  tables.rotary_dim = rotary_dim;
  tables.interleaved = interleaved;
  for (int64_t p = 0; p < max_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = p * std::pow(10000.0, -2.0 * i / rotary_dim);
      tables.cos.data_as<float>()[p * half + i] = static_cast<float>(std::cos(angle));
      tables.sin.data_as<float>()[p * half + i] = static_cast<float>(std::sin(angle));
    }
  }
  return tables;
}

TEST_F(CpuBackendTest, RopeRotatesHalvesInterleavedPairsAndPartialDims) {
  const int64_t tokens = 4, heads = 5, dim = 22;
  for (auto [rotary_dim, interleaved] :
       {std::pair<int64_t, bool>{22, false}, {22, true}, {10, false}, {6, true}}) {
    const RopeTables tables = MakeRopeTables(1300, rotary_dim, interleaved);
    Tensor x = Random({tokens, heads, dim});
    const Tensor original = x.Clone();
    const std::vector<int32_t> positions = {0, 7, 1234, 3};
    ASSERT_TRUE(backend_->Rope(x, Indices(positions), tables).ok());
    std::vector<double> want = Values(original);
    const int64_t half = rotary_dim / 2;
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t base = (t * heads + h) * dim;
        for (int64_t i = 0; i < half; ++i) {
          // Rotate-half pairs (i, i + half) as Hugging Face; interleaved pairs (2i, 2i + 1).
          const int64_t a = interleaved ? 2 * i : i;
          const int64_t b = interleaved ? 2 * i + 1 : i + half;
          const double c = tables.cos.data_as<float>()[positions[t] * half + i];
          const double s = tables.sin.data_as<float>()[positions[t] * half + i];
          const double xa = ValueAt(original, base + a), xb = ValueAt(original, base + b);
          want[base + a] = xa * c - xb * s;
          want[base + b] = xb * c + xa * s;
        }
      }
    }
    ExpectClose(x, want, 1e-6);
  }
}

TEST_F(CpuBackendTest, RopeRejectsBadArguments) {
  const RopeTables tables = MakeRopeTables(16, 8, false);
  Tensor x = Random({2, 3, 8});
  ExpectErrorNaming(backend_->Rope(x, Indices({1, 2, 3}), tables), "rope: positions");
  Tensor narrow = Random({2, 3, 6});
  ExpectErrorNaming(backend_->Rope(narrow, Indices({1, 2}), tables), "rope: x");
  RopeTables odd = tables;
  odd.rotary_dim = 7;
  ExpectErrorNaming(backend_->Rope(x, Indices({1, 2}), odd), "rope: x");
  RopeTables short_sin = tables;
  short_sin.sin = Tensor::Zeros(DType::kF32, {15, 4});
  ExpectErrorNaming(backend_->Rope(x, Indices({1, 2}), short_sin), "rope: sin");
}

// ---- Element-wise, gathers, embedding

TEST_F(CpuBackendTest, SwiGluAndAddMatchFloat64) {
  for (auto [rows, width] : {std::pair<int64_t, int64_t>{3, 31}, {1, 1}, {70, 1500}}) {
    Tensor gate = Random({rows, width}, DType::kF32, 4.0f);
    Tensor up = Random({rows, width});
    Tensor out = Tensor::Zeros(DType::kF32, {rows, width});
    Poison(out);
    ASSERT_TRUE(backend_->SwiGlu(gate, up, out).ok());
    std::vector<double> want(rows * width);
    for (int64_t i = 0; i < rows * width; ++i) {
      const double g = ValueAt(gate, i);
      want[i] = g / (1 + std::exp(-g)) * ValueAt(up, i);
    }
    ExpectClose(out, want, 1e-6);
    Tensor aliased = gate.Clone();
    ASSERT_TRUE(backend_->SwiGlu(aliased, up, aliased).ok());  // out may alias gate
    ExpectClose(aliased, want, 1e-6);
    Tensor sum = gate.Clone();
    ASSERT_TRUE(backend_->Add(sum, up).ok());
    for (int64_t i = 0; i < rows * width; ++i) want[i] = ValueAt(gate, i) + ValueAt(up, i);
    ExpectClose(sum, want, 1e-7);
  }
  Tensor a = Random({2, 3});
  ExpectErrorNaming(backend_->Add(a, Random({3, 2})), "add: y");
  Tensor out = Tensor::Zeros(DType::kF32, {2, 3});
  ExpectErrorNaming(backend_->SwiGlu(a, Random({2, 4}), out), "swiglu: up");
}

TEST_F(CpuBackendTest, GatherRowsAndCopyColumns) {
  Tensor x = Random({9, 13});
  const std::vector<int32_t> rows = {8, 0, 3, 3};
  Tensor gathered = Tensor::Zeros(DType::kF32, {4, 13});
  Poison(gathered);
  ASSERT_TRUE(backend_->GatherRows(x, Indices(rows), gathered).ok());
  std::vector<double> want(4 * 13);
  for (int r = 0; r < 4; ++r) {
    for (int i = 0; i < 13; ++i) want[r * 13 + i] = ValueAt(x, rows[r] * 13 + i);
  }
  ExpectClose(gathered, want, 0.0);
  ExpectErrorNaming(backend_->GatherRows(x, Indices({1, 2}), gathered), "gather_rows: out");

  Tensor dst = Random({9, 7});
  const std::vector<double> before = Values(dst);
  ASSERT_TRUE(backend_->CopyColumns(x, 4, dst, 2, 5).ok());
  want = before;
  for (int r = 0; r < 9; ++r) {
    for (int j = 0; j < 5; ++j) want[r * 7 + 2 + j] = ValueAt(x, r * 13 + 4 + j);
  }
  ExpectClose(dst, want, 0.0);
  ExpectErrorNaming(backend_->CopyColumns(x, 10, dst, 0, 5), "copy_columns: src");
  ExpectErrorNaming(backend_->CopyColumns(x, 0, dst, 3, 5), "copy_columns: dst");
  Tensor short_dst = Random({8, 7});
  ExpectErrorNaming(backend_->CopyColumns(x, 0, short_dst, 0, 5), "copy_columns: dst");
}

TEST_F(CpuBackendTest, EmbeddingLooksUpItsRowsAndZeroesOthers) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    Tensor table = Random({10, 37}, dtype);  // ids [20, 30)
    const std::vector<int32_t> ids = {25, 3, 29, 20, 30, 19, 25};
    Tensor out = Tensor::Zeros(DType::kF32, {7, 37});
    Poison(out);
    ASSERT_TRUE(backend_->Embedding(table, Indices(ids), 20, out).ok());
    std::vector<double> want(7 * 37, 0.0);
    for (int t = 0; t < 7; ++t) {
      if (ids[t] < 20 || ids[t] >= 30) continue;
      for (int i = 0; i < 37; ++i) want[t * 37 + i] = ValueAt(table, (ids[t] - 20) * 37 + i);
    }
    ExpectClose(out, want, 0.0);
  }
  Tensor table = Random({10, 4});
  Tensor out = Tensor::Zeros(DType::kF32, {2, 4});
  ExpectErrorNaming(backend_->Embedding(table, Indices({1, 2, 3}), 0, out), "embedding: out");
  ExpectErrorNaming(backend_->Embedding(Random({40}), Indices({1, 2}), 0, out), "embedding: table");
  Tensor int_ids = Tensor::Zeros(DType::kI64, {2});
  ExpectErrorNaming(backend_->Embedding(table, int_ids, 0, out), "embedding: ids");
}

}  // namespace
}  // namespace sparkstack
