// The optimized CPU NVFP4 linear (every path this machine can run) against the float64 reference,
// at odd sizes with fresh random inputs and poisoned outputs.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/nvfp4_linear.h"
#include "kernels/cpu/nvfp4_reference.h"

namespace sparkstack::kernels {
namespace {

struct Problem {
  int64_t m, n, k;
  std::vector<float> x;
  std::vector<uint8_t> codes, scales;
  float global = 0;
};

Problem MakeProblem(int64_t m, int64_t n, int64_t k, uint64_t seed) {
  Problem p{m, n, k, {}, {}, {}, 0};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(n * k);
  for (float& v : w) v = normal(rng) * 0.05f;
  p.x.resize(m * k);
  for (float& v : p.x) v = normal(rng);
  p.codes.resize(n * k / 2);
  p.scales.resize(n * k / 16);
  Nvfp4QuantizeWeightReference(w.data(), n, k, k, p.codes.data(), k / 2, p.scales.data(), k / 16,
                               &p.global);
  return p;
}

// Relative Frobenius error ||y - ref|| / ||ref|| and the worst element error relative to the row's
// sum of |x| * |w| (the scale of f32 rounding error for that dot product).
void ExpectClose(const Problem& p, const std::vector<float>& y, const char* what) {
  std::vector<double> ref(p.m * p.n);
  Nvfp4GemmReference(p.x.data(), p.m, p.k, p.k, p.codes.data(), p.k / 2, p.scales.data(),
                     p.k / 16, p.global, p.n, ref.data(), p.n);
  std::vector<float> w(p.n * p.k);
  Nvfp4DequantizeReference(p.codes.data(), p.k / 2, p.scales.data(), p.k / 16, p.global, p.n, p.k,
                           w.data(), p.k);
  double err2 = 0, ref2 = 0;
  int reported = 0;
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t r = 0; r < p.n; ++r) {
      double magnitude = 0;
      for (int64_t c = 0; c < p.k; ++c) magnitude += std::fabs(double{p.x[i * p.k + c]} * w[r * p.k + c]);
      const double got = y[i * p.n + r];
      const double want = ref[i * p.n + r];
      err2 += (got - want) * (got - want);
      ref2 += want * want;
      // f32 accumulation of k terms: error well below k * eps * sum|x w|.
      const double bound = 1e-6 * static_cast<double>(p.k) * magnitude + 1e-30;
      if (!(std::fabs(got - want) <= bound) && reported++ < 5) {
        ADD_FAILURE() << what << " m=" << p.m << " n=" << p.n << " k=" << p.k << " at [" << i
                      << ", " << r << "]: got " << got << " want " << want << " bound " << bound;
      }
    }
  }
  EXPECT_LT(std::sqrt(err2 / ref2), 1e-5) << what << " m=" << p.m << " n=" << p.n << " k=" << p.k;
}

TEST(CpuNvfp4LinearTest, EveryPathMatchesFloat64ReferenceAtOddSizes) {
  const Nvfp4CpuPath paths[] = {Nvfp4CpuPath::kScalar, Nvfp4CpuPath::kAvx2, Nvfp4CpuPath::kNeon};
  uint64_t seed = 1;
  for (int64_t m = 1; m <= 16; ++m) {
    const int64_t n = 2 * m + 1;              // odd
    const int64_t k = 16 * (2 * (m % 3) + 1) + (m > 8 ? 64 : 0);  // 16, 48, 80, 112, 144: not x64
    const Problem p = MakeProblem(m, n, k, seed++);
    for (Nvfp4CpuPath path : paths) {
      std::vector<float> y(m * n, std::numeric_limits<float>::quiet_NaN());  // poisoned
      if (!Nvfp4LinearF32WithPath(path, p.x.data(), m, k, p.codes.data(), p.scales.data(),
                                  p.global, n, y.data())) {
        continue;  // not available on this CPU / build
      }
      ExpectClose(p, y, Nvfp4CpuPathName(path));
    }
    std::vector<float> y(m * n, std::numeric_limits<float>::quiet_NaN());
    Nvfp4LinearF32(p.x.data(), m, k, p.codes.data(), p.scales.data(), p.global, n, y.data());
    ExpectClose(p, y, "dispatch");
  }
}

TEST(CpuNvfp4LinearTest, ThreadedMatchesAndCoversEveryColumn) {
  const Problem p = MakeProblem(3, 1031, 272, 77);  // big enough to use several threads
  std::vector<float> y(p.m * p.n, std::numeric_limits<float>::quiet_NaN());
  Nvfp4LinearF32(p.x.data(), p.m, p.k, p.codes.data(), p.scales.data(), p.global, p.n, y.data(),
                 /*threads=*/4);
  ExpectClose(p, y, "threads=4");
}

TEST(CpuNvfp4LinearTest, EveryCodeAndScaleByteDecodes) {
  // One row per scale byte value (NaN scales excluded), codes cycling through all 16 values in
  // both nibbles; x = one-hot columns so y reads back single dequantized elements exactly.
  const int64_t k = 32, n = 254;
  std::vector<uint8_t> codes(n * k / 2), scales(n * k / 16);
  int64_t r = 0;
  for (int s = 0; s < 256; ++s) {
    if ((s & 0x7f) == 0x7f) continue;
    for (int64_t j = 0; j < k / 2; ++j) codes[r * k / 2 + j] = static_cast<uint8_t>((j * 3 + s) % 256);
    scales[r * 2] = static_cast<uint8_t>(s);
    scales[r * 2 + 1] = static_cast<uint8_t>(s ^ 0x80);  // the negated scale, never NaN
    ++r;
  }
  ASSERT_EQ(r, n);
  std::vector<float> x(k * k, 0.0f);
  for (int64_t c = 0; c < k; ++c) x[c * k + c] = 1.0f;
  std::vector<float> want(n * k);
  Nvfp4DequantizeReference(codes.data(), k / 2, scales.data(), k / 16, 0.75f, n, k, want.data(), k);
  for (Nvfp4CpuPath path : {Nvfp4CpuPath::kScalar, Nvfp4CpuPath::kAvx2, Nvfp4CpuPath::kNeon}) {
    std::vector<float> y(k * n, std::numeric_limits<float>::quiet_NaN());
    if (!Nvfp4LinearF32WithPath(path, x.data(), k, k, codes.data(), scales.data(), 0.75f, n,
                                y.data())) {
      continue;
    }
    int bad = 0;
    for (int64_t c = 0; c < k; ++c) {
      for (int64_t row = 0; row < n; ++row) {
        if (y[c * n + row] != want[row * k + c] && bad++ < 5) {
          ADD_FAILURE() << Nvfp4CpuPathName(path) << " row " << row << " col " << c << ": got "
                        << y[c * n + row] << " want " << want[row * k + c];
        }
      }
    }
  }
}

}  // namespace
}  // namespace sparkstack::kernels
