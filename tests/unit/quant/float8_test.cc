// E4M3 and E2M1 conversions against independent double-precision definitions.
#include "runtime/core/float8.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace sparkstack {
namespace {

// Every finite E4M3 value from the definition (not from the decoder): +-m * 2^-9 for subnormals,
// +-(1 + m/8) * 2^(e-7) for normals.
std::vector<double> FiniteE4M3Grid() {
  std::vector<double> grid;
  for (int m = 0; m < 8; ++m) grid.push_back(m / 512.0);
  for (int e = 1; e < 16; ++e) {
    for (int m = 0; m < 8; ++m) {
      if (e == 15 && m == 7) continue;
      grid.push_back((1.0 + m / 8.0) * std::pow(2.0, e - 7));
    }
  }
  return grid;  // ascending, 127 values, last is 448
}

// Round-to-nearest-even onto the grid by brute force; ties pick the value whose index (= code) is
// even. Saturates above 448.
int ReferenceE4M3Code(double magnitude) {
  const std::vector<double> grid = FiniteE4M3Grid();
  if (magnitude >= 448.0) return 0x7e;
  int best = 0;
  for (int i = 1; i < static_cast<int>(grid.size()); ++i) {
    const double d_best = std::fabs(grid[best] - magnitude);
    const double d = std::fabs(grid[i] - magnitude);
    if (d < d_best || (d == d_best && i % 2 == 0)) best = i;
  }
  return best;
}

TEST(Float8Test, E4M3DecodeMatchesDefinitionForAll256Codes) {
  const std::vector<double> grid = FiniteE4M3Grid();
  ASSERT_EQ(grid.size(), 127u);
  for (int code = 0; code < 256; ++code) {
    const float v = E4M3ToFloat(static_cast<uint8_t>(code));
    const int magnitude_code = code & 0x7f;
    if (magnitude_code == 0x7f) {
      EXPECT_TRUE(std::isnan(v)) << code;
      continue;
    }
    const double expected = (code & 0x80) ? -grid[magnitude_code] : grid[magnitude_code];
    EXPECT_EQ(double{v}, expected) << "code " << code;
    // Round trip: encoding the decoded value gives the code back (including -0 = 0x80).
    EXPECT_EQ(FloatToE4M3(v), code) << "code " << code;
    EXPECT_EQ(ToE4M3(double{v}), code) << "code " << code;
  }
  EXPECT_EQ(E4M3ToFloat(0x7e), 448.0f);
  EXPECT_EQ(E4M3ToFloat(0x01), 1.0f / 512.0f);
}

TEST(Float8Test, E4M3SaturatesAndKeepsNaN) {
  EXPECT_EQ(FloatToE4M3(448.0f), 0x7e);
  EXPECT_EQ(FloatToE4M3(463.9f), 0x7e);
  EXPECT_EQ(FloatToE4M3(464.0f), 0x7e);  // tie 448/480: 448 is even, and 480 does not exist
  EXPECT_EQ(FloatToE4M3(1e6f), 0x7e);
  EXPECT_EQ(FloatToE4M3(-1e6f), 0xfe);
  EXPECT_EQ(FloatToE4M3(std::numeric_limits<float>::infinity()), 0x7e);
  EXPECT_EQ(FloatToE4M3(-std::numeric_limits<float>::infinity()), 0xfe);
  EXPECT_EQ(FloatToE4M3(std::numeric_limits<float>::quiet_NaN()) & 0x7f, 0x7f);
  EXPECT_EQ(FloatToE4M3(1.0f / 1024.0f), 0x00);          // tie 0 / 2^-9: 0 is even
  EXPECT_EQ(FloatToE4M3(1.5f / 512.0f), 0x02);           // tie 1 / 2 quanta: 2
  EXPECT_EQ(FloatToE4M3(1.0f / 1024.0f + 1e-9f), 0x01);  // just above the tie
  EXPECT_EQ(FloatToE4M3(-1e-30f), 0x80);                 // -0
}

TEST(Float8Test, E4M3RoundsToNearestEvenOnRandomFloats) {
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> log_mag(-12.0, 9.5);
  const std::vector<double> grid = FiniteE4M3Grid();
  for (int i = 0; i < 20000; ++i) {
    const float value = static_cast<float>(std::pow(2.0, log_mag(rng)) * ((i & 1) ? -1 : 1));
    const int expected = ReferenceE4M3Code(std::fabs(double{value})) | (value < 0 ? 0x80 : 0);
    ASSERT_EQ(FloatToE4M3(value), expected) << "value " << value;
  }
  // Exact midpoints between neighbours (including the subnormal/normal boundary) go to the even
  // code, and a hair above/below goes to the nearer one.
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    const double mid = (grid[i] + grid[i + 1]) / 2;
    const int even = (i % 2 == 0) ? static_cast<int>(i) : static_cast<int>(i + 1);
    EXPECT_EQ(ToE4M3(mid), even) << "midpoint " << mid;
    EXPECT_EQ(ToE4M3(std::nextafter(mid, 0.0)), static_cast<int>(i)) << mid;
    EXPECT_EQ(ToE4M3(std::nextafter(mid, 1e9)), static_cast<int>(i + 1)) << mid;
  }
}

TEST(Float8Test, E2M1TablesAndEveryTiePoint) {
  const double magnitudes[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};  // from the format definition
  for (int code = 0; code < 16; ++code) {
    const double expected = (code & 8 ? -1 : 1) * magnitudes[code & 7];
    EXPECT_EQ(double{E2M1ToFloat(static_cast<uint8_t>(code))}, expected);
    EXPECT_EQ(std::signbit(E2M1ToFloat(static_cast<uint8_t>(code))), (code & 8) != 0);
  }
  // Each tie lies between codes `lower` and `lower + 1` and goes to the even one.
  const double ties[] = {0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0};
  for (int lower = 0; lower < 7; ++lower) {
    const double t = ties[lower];
    ASSERT_EQ(t, (magnitudes[lower] + magnitudes[lower + 1]) / 2);
    const int even = (lower % 2 == 0) ? lower : lower + 1;
    EXPECT_EQ(ToE2M1(t), even) << t;
    EXPECT_EQ(FloatToE2M1(static_cast<float>(t)), even) << t;
    EXPECT_EQ(ToE2M1(-t), even | 8) << -t;
    EXPECT_EQ(ToE2M1(std::nextafter(t, 0.0)), lower) << t;
    EXPECT_EQ(ToE2M1(std::nextafter(t, 10.0)), lower + 1) << t;
  }
  // Saturation at +-6, negative values rounding to zero are -0 (0x8), -0.0 itself is 0x0.
  EXPECT_EQ(FloatToE2M1(6.0f), 7);
  EXPECT_EQ(FloatToE2M1(1e30f), 7);
  EXPECT_EQ(FloatToE2M1(-7.5f), 15);
  EXPECT_EQ(FloatToE2M1(-0.1f), 8);
  EXPECT_EQ(FloatToE2M1(-0.25f), 8);
  EXPECT_EQ(FloatToE2M1(-0.0f), 0);
  EXPECT_EQ(FloatToE2M1(0.0f), 0);
}

TEST(Float8Test, E2M1RandomValuesRoundToNearest) {
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> dist(-8.0, 8.0);
  const double magnitudes[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  for (int i = 0; i < 20000; ++i) {
    const double v = dist(rng);
    const uint8_t code = ToE2M1(v);
    const double got = std::fabs(double{E2M1ToFloat(code)});
    double best = 1e9;
    for (double m : magnitudes) best = std::min(best, std::fabs(std::fabs(v) - m));
    ASSERT_EQ(std::fabs(std::fabs(v) - got), best) << v;
    ASSERT_EQ((code & 8) != 0, v < 0) << v;
  }
}

}  // namespace
}  // namespace sparkstack
