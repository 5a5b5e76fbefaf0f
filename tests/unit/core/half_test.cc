// f16/bf16 conversions against the compiler's own _Float16 / exhaustive round trips.
#include "runtime/core/half.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>

#include "gtest/gtest.h"

namespace sparkstack {
namespace {

TEST(HalfTest, F16RoundTripsEveryBitPattern) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = F16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToF16(f), h) << std::hex << h;
  }
}

TEST(HalfTest, Bf16RoundTripsEveryBitPattern) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Bf16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToBf16(f), h) << std::hex << h;
  }
}

// Rounding reference in double: the nearest representable neighbour, ties to even.
TEST(HalfTest, F16RoundsToNearestEvenOnRandomFloats) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    const float f = std::bit_cast<float>(bits(rng) & 0xc7ffffffu);  // |f| < 2^16 mostly
    if (!std::isfinite(f) || std::fabs(f) > 65504.0f) continue;
    const uint16_t h = FloatToF16(f);
    const double got = F16ToFloat(h);
    const double lo = F16ToFloat(h - ((h & 0x7fff) ? 1 : 0));
    const double hi = F16ToFloat(static_cast<uint16_t>(h + 1));
    const double err = std::fabs(got - f);
    EXPECT_LE(err, std::fabs(lo - f) + 1e-30) << f;
    if ((h & 0x7fff) != 0x7bff) EXPECT_LE(err, std::fabs(hi - f) + 1e-30) << f;
  }
}

TEST(HalfTest, Bf16TiesToEven) {
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
}

}  // namespace
}  // namespace sparkstack
