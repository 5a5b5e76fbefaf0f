// The CPU quantizer (ModelOpt's float32 math) against the float64 reference written from
// NVFP4.md's formula, on bf16 weights; tie points, saturation, -0, zero and tiny blocks; round-trip
// error on normal and heavy-tailed data.
#include "runtime/quant/nvfp4_quantizer.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/nvfp4_reference.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"

namespace sparkstack {
namespace {

Tensor Bf16Matrix(const std::vector<float>& values, int64_t n, int64_t k) {
  Tensor t = Tensor::Zeros(DType::kBF16, {n, k});
  for (int64_t i = 0; i < n * k; ++i) t.data_as<uint16_t>()[i] = FloatToBf16(values[i]);
  return t;
}

std::vector<float> Bf16Values(const Tensor& t) {
  std::vector<float> out(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = Bf16ToFloat(t.data_as<uint16_t>()[i]);
  return out;
}

uint8_t CodeAt(const Weight& w, int64_t r, int64_t c) {
  const uint8_t byte = w.nvfp4().codes.data_as<uint8_t>()[r * (w.cols() / 2) + c / 2];
  return c % 2 == 0 ? (byte & 0xf) : (byte >> 4);
}

uint8_t ScaleAt(const Weight& w, int64_t r, int64_t b) {
  return w.nvfp4().block_scales.data_as<uint8_t>()[r * (w.cols() / 16) + b];
}

// Is x within a relative distance `tol` of a point where rounding to the grid changes?
bool NearE2M1Tie(double v, double tol) {
  const double ties[] = {0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0};
  for (double t : ties) {
    if (std::fabs(std::fabs(v) - t) <= tol * t) return true;
  }
  return false;
}

bool NearE4M3Tie(double v, double tol) {
  // Midpoints between consecutive E4M3 values.
  for (int code = 0; code < 0x7e; ++code) {
    const double mid = (double{E4M3ToFloat(code)} + E4M3ToFloat(code + 1)) / 2;
    if (std::fabs(v - mid) <= tol * mid) return true;
  }
  return false;
}

struct Reference {
  std::vector<uint8_t> codes, scales;
  float global = 0;
};

Reference RunReference(const std::vector<float>& w, int64_t n, int64_t k) {
  Reference ref;
  ref.codes.resize(n * k / 2);
  ref.scales.resize(n * k / 16);
  kernels::Nvfp4QuantizeWeightReference(w.data(), n, k, k, ref.codes.data(), k / 2,
                                        ref.scales.data(), k / 16, &ref.global);
  return ref;
}

// Same codes and scales as the float64 formula; the only differences allowed are where float32
// rounding of an intermediate lands within a few ulps of a rounding boundary (ModelOpt computes in
// float32 too, so there our quantizer follows ModelOpt).
void ExpectMatchesReference(const std::vector<float>& w, int64_t n, int64_t k, const char* what) {
  auto quantized = QuantizeNvfp4(Bf16Matrix(w, n, k), what);
  ASSERT_TRUE(quantized.ok()) << quantized.status();
  const Reference ref = RunReference(w, n, k);
  EXPECT_EQ(quantized->nvfp4().global_scale, ref.global) << what;
  int64_t scale_diffs = 0, code_diffs = 0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t b = 0; b < k / 16; ++b) {
      const uint8_t ref_scale = ref.scales[r * (k / 16) + b];
      if (ScaleAt(*quantized, r, b) != ref_scale) {
        ++scale_diffs;
        double amax = 0;
        for (int i = 0; i < 16; ++i)
          amax = std::max(amax, std::fabs(double{w[r * k + b * 16 + i]}));
        EXPECT_TRUE(NearE4M3Tie(amax / (6.0 * ref.global), 1e-6))
            << what << ": scale of block [" << r << ", " << b << "] differs away from a tie";
        continue;  // codes of this block legitimately differ too
      }
      const double divisor = double{E4M3ToFloat(ref_scale)} * ref.global;
      for (int i = 0; i < 16; ++i) {
        const int64_t c = b * 16 + i;
        if (CodeAt(*quantized, r, c) != ((ref.codes[r * (k / 2) + c / 2] >> (4 * (c % 2))) & 0xf)) {
          ++code_diffs;
          EXPECT_TRUE(NearE2M1Tie(w[r * k + c] / divisor, 1e-6))
              << what << ": code [" << r << ", " << c << "] differs away from a tie";
        }
      }
    }
  }
  // bf16 block amaxes over a bf16 global amax, times 448, hit exact E4M3 midpoints surprisingly
  // often (both have few significant bits), and there float32 rounding decides: every difference
  // was checked above to be such a tie; the counts only guard against systematic drift.
  EXPECT_LE(scale_diffs, n * k / 16 / 50 + 2) << what;
  EXPECT_LE(code_diffs, n * k / 100 + 2) << what;
  std::printf("%s: %lld of %lld block scales and %lld of %lld codes differ at ties\n", what,
              static_cast<long long>(scale_diffs), static_cast<long long>(n * k / 16),
              static_cast<long long>(code_diffs), static_cast<long long>(n * k));
}

std::vector<float> RandomBf16(int64_t count, uint64_t seed, bool heavy_tailed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.02);
  std::student_t_distribution<double> student(3.0);
  std::vector<float> out(count);
  for (float& v : out) {
    const double x = heavy_tailed ? student(rng) * 0.02 : normal(rng);
    v = Bf16ToFloat(FloatToBf16(static_cast<float>(x)));
  }
  return out;
}

TEST(Nvfp4QuantizerTest, MatchesFloat64ReferenceOnRandomBf16) {
  ExpectMatchesReference(RandomBf16(37 * 272, 1, false), 37, 272, "normal 37x272");
  ExpectMatchesReference(RandomBf16(33 * 1040, 2, true), 33, 1040, "student-t 33x1040");
  ExpectMatchesReference(RandomBf16(5 * 16, 3, false), 5, 16, "normal 5x16");
}

// Global scale 2^-10 exactly (amax 2.625 = 2688 * 2^-10), so a block with amax 6 * 8 * 2^-10 has
// block scale exactly 8 and divisor 2^-7: the element values v * 2^-7 reach the e2m1 rounding with
// no intermediate rounding at all.
constexpr float kUnit = 1.0f / 128.0f;

TEST(Nvfp4QuantizerTest, EveryTiePointSaturationAndNegativeZero) {
  const int64_t k = 32;
  std::vector<float> w(3 * k, 0.0f);
  w[0] = 2.625f;  // row 0 sets the global amax
  // Row 1, block 0: the amax 6 and every tie, positive and negative, and -0.1 (-> 0x8).
  const float block[16] = {6.0f,   0.25f,  0.75f,  1.25f,  1.75f, 2.5f,  3.5f,  5.0f,
                           -0.25f, -0.75f, -1.25f, -1.75f, -2.5f, -3.5f, -5.0f, -0.1f};
  // Expected codes from the spec's tie table (0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4,
  // 5->4), negatives with the sign bit, -0.1 -> -0.
  const uint8_t expected[16] = {7, 0, 2, 2, 4, 4, 6, 6, 8, 10, 10, 12, 12, 14, 14, 8};
  for (int i = 0; i < 16; ++i) w[k + i] = block[i] * kUnit;
  // Row 1, block 1: amax 6 * 8.5 units: the quotient 8.5 rounds (ties to even) to scale 8, so
  // the amax scales to 6.375 and saturates at code 7 (and -6.375 at 15).
  w[k + 16] = 6.375f * kUnit;
  w[k + 17] = -6.375f * kUnit;
  w[k + 18] = 6.0f * kUnit;
  // Row 2: block 0 all zero; block 1 tiny: quotient far below 2^-9 is clamped to 2^-9 (0x01).
  w[2 * k + 16] = 1e-7f;
  auto q = QuantizeNvfp4(Bf16Matrix(w, 3, k), "ties");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->nvfp4().global_scale, 1.0f / 1024.0f);
  EXPECT_EQ(E4M3ToFloat(ScaleAt(*q, 1, 0)), 8.0f);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(CodeAt(*q, 1, i), expected[i]) << "element " << i;
  EXPECT_EQ(E4M3ToFloat(ScaleAt(*q, 1, 1)), 8.0f);
  EXPECT_EQ(CodeAt(*q, 1, 16), 7);
  EXPECT_EQ(CodeAt(*q, 1, 17), 15);
  EXPECT_EQ(CodeAt(*q, 1, 18), 7);
  EXPECT_EQ(E4M3ToFloat(ScaleAt(*q, 2, 0)), 1.0f);  // zero block: scale 1.0, codes 0
  for (int i = 0; i < 16; ++i) EXPECT_EQ(CodeAt(*q, 2, i), 0);
  EXPECT_EQ(ScaleAt(*q, 2, 1), 0x01);
  // The reference agrees on all of it.
  const Reference ref = RunReference(Bf16Values(Bf16Matrix(w, 3, k)), 3, k);
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      EXPECT_EQ(CodeAt(*q, r, c), (ref.codes[r * (k / 2) + c / 2] >> (4 * (c % 2))) & 0xf);
    }
    for (int64_t b = 0; b < 2; ++b) EXPECT_EQ(ScaleAt(*q, r, b), ref.scales[r * 2 + b]);
  }
}

TEST(Nvfp4QuantizerTest, AllZeroMatrixDequantizesToZero) {
  auto q = QuantizeNvfp4(Tensor::Zeros(DType::kF32, {3, 48}), "zeros");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->nvfp4().global_scale, 0.0f);
  auto d = DequantizeNvfp4(*q);
  ASSERT_TRUE(d.ok());
  for (int64_t i = 0; i < d->numel(); ++i) EXPECT_EQ(d->data_as<float>()[i], 0.0f);
}

// Round-trip error: every element within half a grid step of its scaled value (the grid spacing is
// 0.5 below 2, 1 below 4, 2 up to 6; above 6 the error is |v| - 6, at most 6/16 since the block
// scale is rounded down by at most 1/16), and the relative Frobenius error within the bounds
// measured for 4-bit floats with 16-element blocks (about 0.09 for Gaussian data).
void CheckRoundTrip(bool heavy_tailed, double max_relative_frobenius) {
  const int64_t n = 64, k = 1024;
  const std::vector<float> w = RandomBf16(n * k, heavy_tailed ? 11 : 12, heavy_tailed);
  auto q = QuantizeNvfp4(Bf16Matrix(w, n, k), "roundtrip");
  ASSERT_TRUE(q.ok()) << q.status();
  auto d = DequantizeNvfp4(*q);
  ASSERT_TRUE(d.ok());
  double err2 = 0, ref2 = 0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      const double divisor = double{E4M3ToFloat(ScaleAt(*q, r, c / 16))} * q->nvfp4().global_scale;
      const double v = std::fabs(w[r * k + c] / divisor);
      const double got = std::fabs(d->data_as<float>()[r * k + c] / divisor);
      const double bound = v <= 2 ? 0.25 : v <= 4 ? 0.5 : v <= 6 ? 1.0 : 6.0 / 16;
      ASSERT_LE(std::fabs(v - got), bound * (1 + 1e-6)) << "[" << r << ", " << c << "]";
      const double e = d->data_as<float>()[r * k + c] - double{w[r * k + c]};
      err2 += e * e;
      ref2 += double{w[r * k + c]} * w[r * k + c];
    }
  }
  const double rel = std::sqrt(err2 / ref2);
  EXPECT_LT(rel, max_relative_frobenius);
  EXPECT_GT(rel, 0.01);  // a 4-bit format cannot be near-lossless: guards against a no-op
  std::printf("%s: relative Frobenius round-trip error %.4f\n",
              heavy_tailed ? "student-t(3)" : "normal", rel);
}

TEST(Nvfp4QuantizerTest, RoundTripErrorNormal) { CheckRoundTrip(false, 0.12); }
TEST(Nvfp4QuantizerTest, RoundTripErrorHeavyTailed) { CheckRoundTrip(true, 0.12); }

TEST(Nvfp4QuantizerTest, AcceptsF32AndF16) {
  const std::vector<float> w = RandomBf16(7 * 64, 5, false);  // bf16-exact values
  Tensor f32 = Tensor::Zeros(DType::kF32, {7, 64});
  Tensor f16 = Tensor::Zeros(DType::kF16, {7, 64});
  std::memcpy(f32.data(), w.data(), w.size() * 4);
  for (size_t i = 0; i < w.size(); ++i) f16.data_as<uint16_t>()[i] = FloatToF16(w[i]);
  auto a = QuantizeNvfp4(f32);
  auto b = QuantizeNvfp4(Bf16Matrix(w, 7, 64));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(std::memcmp(a->nvfp4().codes.data(), b->nvfp4().codes.data(), 7 * 32), 0);
  EXPECT_EQ(std::memcmp(a->nvfp4().block_scales.data(), b->nvfp4().block_scales.data(), 7 * 4), 0);
  EXPECT_TRUE(QuantizeNvfp4(f16).ok());
}

TEST(Nvfp4QuantizerTest, RejectsBadInput) {
  auto odd = QuantizeNvfp4(Tensor::Zeros(DType::kBF16, {4, 24}), "layer.w");
  EXPECT_EQ(odd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(odd.status().message()).find("layer.w"), std::string::npos);
  EXPECT_FALSE(QuantizeNvfp4(Tensor::Zeros(DType::kI32, {4, 32})).ok());
  EXPECT_FALSE(QuantizeNvfp4(Tensor::Zeros(DType::kF32, {4, 2, 16})).ok());
  Tensor nan = Tensor::Zeros(DType::kF32, {2, 16});
  nan.data_as<float>()[17] = std::numeric_limits<float>::quiet_NaN();
  auto bad = QuantizeNvfp4(nan, "nan.w");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("[1, 1]"), std::string::npos) << bad.status();
}

}  // namespace
}  // namespace sparkstack
