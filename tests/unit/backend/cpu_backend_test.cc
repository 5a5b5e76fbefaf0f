// Every CPU backend op against a float64 reference written here from the op's definition, on fresh
// random data at odd sizes.
#include "runtime/backend/cpu/cpu_backend.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "kernels/cpu/nvfp4_self_check.h"
#include "runtime/core/half.h"

namespace sparkstack {
namespace {

class CpuBackendTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> backend_ = MakeCpuBackend({.threads = 2});
  std::mt19937 rng_{std::random_device{}()};

  Tensor Random(const Shape& shape, DType dtype = DType::kF32, float scale = 1.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    Tensor t = Tensor::Zeros(dtype, shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float v = dist(rng_);
      switch (dtype) {
        case DType::kF32: t.data_as<float>()[i] = v; break;
        case DType::kBF16: t.data_as<uint16_t>()[i] = FloatToBf16(v); break;
        case DType::kF16: t.data_as<uint16_t>()[i] = FloatToF16(v); break;
        default: ADD_FAILURE() << "unsupported dtype";
      }
    }
    return t;
  }
};

double ValueAt(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kF32: return t.data_as<float>()[i];
    case DType::kBF16: return Bf16ToFloat(t.data_as<uint16_t>()[i]);
    case DType::kF16: return F16ToFloat(t.data_as<uint16_t>()[i]);
    default: return NAN;
  }
}

// Max |got - want| / max(1, max |want|), printing the first few mismatches over `tolerance`.
void ExpectClose(const Tensor& got, const std::vector<double>& want, double tolerance) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  double max_abs = 1.0;
  for (double w : want) max_abs = std::max(max_abs, std::fabs(w));
  int reported = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(got.data_as<float>()[i] - want[i]) / max_abs;
    if (!(err <= tolerance) && reported++ < 5) {
      ADD_FAILURE() << "element " << i << ": got " << got.data_as<float>()[i] << ", want "
                    << want[i];
    }
  }
}

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

void Poison(Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = NAN;
}

TEST_F(CpuBackendTest, LinearMatchesFloat64ForEveryDenseDType) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (auto [m, k, n] : {std::tuple{1, 7, 5}, {3, 33, 17}, {5, 130, 67}, {2, 1000, 3}}) {
      Tensor x = Random({m, k});
      Tensor w_matrix = Random({n, k}, dtype);
      auto w = Weight::Dense(w_matrix);
      ASSERT_TRUE(w.ok());
      Tensor y = Tensor::Zeros(DType::kF32, {m, n});
      Poison(y);
      ASSERT_TRUE(backend_->Linear(x, *w, y).ok());
      ExpectClose(y, ReferenceLinear(x, w_matrix), 1e-5);
    }
  }
}

TEST_F(CpuBackendTest, LinearUsesManyThreadsOnLargeProblems) {
  const int m = 3, k = 517, n = 2049;  // > 1M multiply-adds: the threaded path
  Tensor x = Random({m, k});
  Tensor w_matrix = Random({n, k}, DType::kBF16);
  Tensor y = Tensor::Zeros(DType::kF32, {m, n});
  Poison(y);
  ASSERT_TRUE(backend_->Linear(x, *Weight::Dense(w_matrix), y).ok());
  ExpectClose(y, ReferenceLinear(x, w_matrix), 1e-5);
}

TEST_F(CpuBackendTest, LinearRejectsMismatchedShapes) {
  Tensor x = Random({2, 8});
  auto w = Weight::Dense(Random({4, 9}));
  Tensor y = Tensor::Zeros(DType::kF32, {2, 4});
  auto status = backend_->Linear(x, *w, y);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("linear: x is f32[2, 8]"), absl::string_view::npos)
      << status.message();
}

TEST_F(CpuBackendTest, Nvfp4LinearMatchesTheFloat64Reference) {
  const int64_t m = 5, n = 29, k = 208;  // N odd, K a multiple of 16 but not of 64
  Tensor w = Random({n, k});
  Tensor codes = Tensor::Zeros(DType::kU8, {n, k / 2});
  Tensor scales = Tensor::Zeros(DType::kF8E4M3, {n, k / 16});
  float global = 0;
  kernels::Nvfp4QuantizeWeightReference(w.data_as<float>(), n, k, k, codes.data_as<uint8_t>(),
                                        k / 2, scales.data_as<uint8_t>(), k / 16, &global);
  auto weight = Weight::Nvfp4({.codes = codes, .block_scales = scales, .global_scale = global});
  ASSERT_TRUE(weight.ok()) << weight.status();
  Tensor x = Random({m, k});
  Tensor y = Tensor::Zeros(DType::kF32, {m, n});
  Poison(y);
  ASSERT_TRUE(backend_->Linear(x, *weight, y).ok());
  std::vector<double> want(m * n);
  kernels::Nvfp4GemmReference(x.data_as<float>(), m, k, k, codes.data_as<uint8_t>(), k / 2,
                              scales.data_as<uint8_t>(), k / 16, global, n, want.data(), n);
  ExpectClose(y, want, 1e-5);
}

TEST(Nvfp4CpuSelfCheckTest, EveryPathThisCpuRunsAgreesAndOneIsSelected) {
  EXPECT_TRUE(kernels::Nvfp4CpuPathAgreesWithReference(kernels::Nvfp4CpuPath::kScalar));
  const auto best = kernels::BestNvfp4CpuPath();
  EXPECT_TRUE(kernels::Nvfp4CpuPathAgreesWithReference(best)) << kernels::Nvfp4CpuPathName(best);
  EXPECT_EQ(kernels::SelectVerifiedNvfp4CpuPath(), best);
}

TEST_F(CpuBackendTest, RmsNormMatchesFloat64) {
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    const int rows = 5, width = 77;
    const float eps = 1e-5f;
    Tensor x = Random({rows, width}, DType::kF32, 3.0f);
    Tensor w = Random({width}, dtype);
    Tensor out = Tensor::Zeros(DType::kF32, {rows, width});
    Poison(out);
    ASSERT_TRUE(backend_->RmsNorm(x, w, eps, out).ok());
    std::vector<double> want(rows * width);
    for (int r = 0; r < rows; ++r) {
      double ss = 0;
      for (int i = 0; i < width; ++i) ss += ValueAt(x, r * width + i) * ValueAt(x, r * width + i);
      const double inv = 1.0 / std::sqrt(ss / width + eps);
      for (int i = 0; i < width; ++i) want[r * width + i] = ValueAt(x, r * width + i) * inv * ValueAt(w, i);
    }
    ExpectClose(out, want, 1e-6);
  }
}

TEST_F(CpuBackendTest, RopeRotatesHalvesAsHuggingFace) {
  const int tokens = 3, heads = 5, dim = 22;
  Tensor x = Random({tokens, heads, dim});
  Tensor original = x.Clone();
  std::vector<int32_t> positions = {0, 7, 1234};
  std::vector<float> inv_freq(dim / 2);
  for (int i = 0; i < dim / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / dim);
  ASSERT_TRUE(backend_->Rope(x, positions, inv_freq).ok());
  std::vector<double> want(x.numel());
  for (int t = 0; t < tokens; ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < dim; ++i) {
        // HF: x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1].
        const int base = (t * heads + h) * dim;
        const double angle = static_cast<double>(positions[t]) * inv_freq[i % (dim / 2)];
        const double rotated = i < dim / 2 ? -ValueAt(original, base + i + dim / 2)
                                           : ValueAt(original, base + i - dim / 2);
        want[base + i] = ValueAt(original, base + i) * std::cos(angle) + rotated * std::sin(angle);
      }
  ExpectClose(x, want, 2e-4);  // float32 angles at position 1234
}

TEST_F(CpuBackendTest, AttentionIsCausalGroupedQuery) {
  const int heads = 6, kv_heads = 2, dim = 9, capacity = 13, start = 4, tokens = 5;
  Tensor q = Random({tokens, heads, dim});
  Tensor k_cache = Random({capacity, kv_heads, dim});
  Tensor v_cache = Random({capacity, kv_heads, dim});
  Tensor out = Tensor::Zeros(DType::kF32, {tokens, heads, dim});
  Poison(out);
  const float scale = 1.0f / 3.0f;
  ASSERT_TRUE(backend_->Attention(q, k_cache, v_cache, start, scale, out).ok());
  std::vector<double> want(out.numel());
  for (int t = 0; t < tokens; ++t)
    for (int h = 0; h < heads; ++h) {
      const int kvh = h / (heads / kv_heads);
      std::vector<double> s(start + t + 1);
      double mx = -INFINITY, total = 0;
      for (int p = 0; p <= start + t; ++p) {
        double dot = 0;
        for (int d = 0; d < dim; ++d)
          dot += ValueAt(q, (t * heads + h) * dim + d) * ValueAt(k_cache, (p * kv_heads + kvh) * dim + d);
        s[p] = dot * scale;
        mx = std::max(mx, s[p]);
      }
      for (double& e : s) total += (e = std::exp(e - mx));
      for (int d = 0; d < dim; ++d) {
        double acc = 0;
        for (int p = 0; p <= start + t; ++p)
          acc += s[p] / total * ValueAt(v_cache, (p * kv_heads + kvh) * dim + d);
        want[(t * heads + h) * dim + d] = acc;
      }
    }
  ExpectClose(out, want, 1e-5);
}

TEST_F(CpuBackendTest, StoreKvWritesRowsAndChecksCapacity) {
  Tensor k_cache = Tensor::Zeros(DType::kF32, {6, 2, 3});
  Tensor v_cache = Tensor::Zeros(DType::kF32, {6, 2, 3});
  Tensor k = Random({2, 2, 3});
  Tensor v = Random({2, 2, 3});
  ASSERT_TRUE(backend_->StoreKv(k, v, 3, k_cache, v_cache).ok());
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(k_cache.data_as<float>()[3 * 6 + i], k.data_as<float>()[i]);
    EXPECT_EQ(v_cache.data_as<float>()[3 * 6 + i], v.data_as<float>()[i]);
  }
  EXPECT_EQ(backend_->StoreKv(k, v, 5, k_cache, v_cache).code(), absl::StatusCode::kOutOfRange);
}

TEST_F(CpuBackendTest, SwiGluAndAdd) {
  Tensor gate = Random({3, 31});
  Tensor up = Random({3, 31});
  Tensor out = Tensor::Zeros(DType::kF32, {3, 31});
  ASSERT_TRUE(backend_->SwiGlu(gate, up, out).ok());
  std::vector<double> want(93);
  for (int i = 0; i < 93; ++i) {
    const double g = ValueAt(gate, i);
    want[i] = g / (1 + std::exp(-g)) * ValueAt(up, i);
  }
  ExpectClose(out, want, 1e-6);
  Tensor sum = gate.Clone();
  ASSERT_TRUE(backend_->AddInPlace(sum, up).ok());
  for (int i = 0; i < 93; ++i) want[i] = ValueAt(gate, i) + ValueAt(up, i);
  ExpectClose(sum, want, 1e-7);
}

TEST_F(CpuBackendTest, EmbeddingLooksUpItsRowsAndZeroesOthers) {
  Tensor table = Random({10, 7}, DType::kBF16);  // ids [20, 30)
  std::vector<int32_t> ids = {25, 3, 29, 20};
  Tensor out = Tensor::Zeros(DType::kF32, {4, 7});
  Poison(out);
  ASSERT_TRUE(backend_->Embedding(table, ids, 20, out).ok());
  std::vector<double> want(28, 0.0);
  for (int t = 0; t < 4; ++t)
    if (ids[t] >= 20 && ids[t] < 30)
      for (int i = 0; i < 7; ++i) want[t * 7 + i] = ValueAt(table, (ids[t] - 20) * 7 + i);
  ExpectClose(out, want, 0.0);
}

}  // namespace
}  // namespace sparkstack
