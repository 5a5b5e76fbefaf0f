// The packed dense GEMM on every ISA this CPU runs, at odd sizes and in f32 / bf16 / f16:
// - bit-identical to one fused multiply-add chain over k in order per output (written here with
//   std::fma), which is what makes a row independent of its batch, the tiles and the threads;
// - within the rounding bound of that chain (K * 2^-24 * sum |x w|) of a float64 reference.
#include "kernels/cpu/packed_dense.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_isa.h"
#include "runtime/core/half.h"

namespace sparkstack::kernels {
namespace {

std::vector<CpuIsa> SupportedIsas() {
  std::vector<CpuIsa> isas;
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512, CpuIsa::kNeon}) {
    if (CpuIsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

struct Problem {
  int64_t m, n, k;
  DType dtype;
  std::vector<float> x;
  std::vector<uint16_t> w16;  // bf16 / f16 bits
  std::vector<float> w32;
  std::vector<float> w;  // the weight's values as floats (exact)
  const void* weight() const {
    return dtype == DType::kF32 ? static_cast<const void*>(w32.data()) : w16.data();
  }
};

Problem MakeProblem(std::mt19937& rng, int64_t m, int64_t n, int64_t k, DType dtype) {
  std::normal_distribution<float> normal;
  Problem p{m, n, k, dtype, {}, {}, {}, {}};
  p.x.resize(m * k);
  for (float& v : p.x) v = normal(rng);
  p.w.resize(n * k);
  if (dtype == DType::kF32) {
    p.w32.resize(n * k);
    for (int64_t i = 0; i < n * k; ++i) p.w[i] = p.w32[i] = normal(rng);
  } else {
    p.w16.resize(n * k);
    for (int64_t i = 0; i < n * k; ++i) {
      const float v = normal(rng);
      p.w16[i] = dtype == DType::kBF16 ? FloatToBf16(v) : FloatToF16(v);
      p.w[i] = dtype == DType::kBF16 ? Bf16ToFloat(p.w16[i]) : F16ToFloat(p.w16[i]);
    }
  }
  return p;
}

std::vector<unsigned char> Pack(const Problem& p, ThreadPool& pool) {
  std::vector<unsigned char> packed(DTypeByteSize(p.dtype, PackedDenseElements(p.n, p.k)));
  PackDense(p.weight(), p.dtype, p.n, p.k, packed.data(), pool);
  return packed;
}

void ExpectBitExact(const std::vector<float>& got, const Problem& p, const std::string& what) {
  int reported = 0;
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t c = 0; c < p.n; ++c) {
      float chain = 0.0f;
      double exact = 0.0, magnitude = 0.0;
      for (int64_t j = 0; j < p.k; ++j) {
        chain = std::fma(p.x[i * p.k + j], p.w[c * p.k + j], chain);
        exact += static_cast<double>(p.x[i * p.k + j]) * p.w[c * p.k + j];
        magnitude += std::fabs(static_cast<double>(p.x[i * p.k + j]) * p.w[c * p.k + j]);
      }
      const float value = got[i * p.n + c];
      if (std::memcmp(&value, &chain, sizeof(float)) != 0 && reported++ < 5) {
        ADD_FAILURE() << what << " y[" << i << ", " << c << "] = " << value
                      << ", the fma chain gives " << chain;
      }
      const double bound = static_cast<double>(p.k) * std::ldexp(1.0, -24) * magnitude + 1e-30;
      if (!(std::fabs(value - exact) <= bound) && reported++ < 5) {
        ADD_FAILURE() << what << " y[" << i << ", " << c << "] = " << value << ", float64 " << exact
                      << " (bound " << bound << ")";
      }
    }
  }
}

TEST(PackedDenseTest, EveryIsaEqualsTheFmaChainAtOddSizes) {
  std::mt19937 rng(1234);
  ThreadPool pool(3);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (auto [m, n, k] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1},
                                                                             {1, 37, 19},
                                                                             {2, 64, 64},
                                                                             {3, 65, 130},
                                                                             {5, 129, 7},
                                                                             {6, 200, 33},
                                                                             {7, 70, 257},
                                                                             {13, 100, 300},
                                                                             {31, 131, 129},
                                                                             {97, 67, 200},
                                                                             {200, 30, 45},
                                                                             {389, 21, 150}}) {
      const Problem p = MakeProblem(rng, m, n, k, dtype);
      const auto packed = Pack(p, pool);
      for (CpuIsa isa : SupportedIsas()) {
        std::vector<float> y(m * n, NAN);
        PackedDenseLinear(p.x.data(), m, k, packed.data(), dtype, n, y.data(), pool, isa);
        ExpectBitExact(y, p,
                       std::string(CpuIsaName(isa)) + " " + std::string(DTypeName(dtype)) +
                           " m=" + std::to_string(m) + " n=" + std::to_string(n) +
                           " k=" + std::to_string(k));
      }
    }
  }
}

// A row computed alone, or in batches of any size, on one or several threads, is the same.
TEST(PackedDenseTest, RowsDoNotDependOnTheBatchOrThreads) {
  std::mt19937 rng(99);
  ThreadPool one(1), three(3);
  const Problem p = MakeProblem(rng, 150, 333, 190, DType::kBF16);
  const auto packed = Pack(p, one);
  std::vector<float> all(p.m * p.n);
  PackedDenseLinear(p.x.data(), p.m, p.k, packed.data(), p.dtype, p.n, all.data(), three,
                    BestCpuIsa());
  for (int64_t rows : {1, 2, 5, 8, 33}) {
    for (int64_t first = 0; first + rows <= p.m; first += 41) {
      std::vector<float> part(rows * p.n);
      PackedDenseLinear(p.x.data() + first * p.k, rows, p.k, packed.data(), p.dtype, p.n,
                        part.data(), rows % 2 ? one : three, BestCpuIsa());
      ASSERT_EQ(std::memcmp(part.data(), all.data() + first * p.n, part.size() * sizeof(float)), 0)
          << rows << " rows from " << first;
    }
  }
}

TEST(PackedDenseTest, EmptyShapes) {
  ThreadPool pool(2);
  std::vector<float> x(3 * 4, 1.0f), y(3 * 5, NAN);
  std::vector<float> packed(PackedDenseElements(5, 0));
  PackedDenseLinear(x.data(), 3, 0, packed.data(), DType::kF32, 5, y.data(), pool, BestCpuIsa());
  for (float v : y) EXPECT_EQ(v, 0.0f);
  PackedDenseLinear(x.data(), 0, 4, packed.data(), DType::kF32, 5, y.data(), pool, BestCpuIsa());
}

}  // namespace
}  // namespace sparkstack::kernels
