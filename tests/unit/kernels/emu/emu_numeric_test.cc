// The emulation's number conversions (kernels/emu/numeric.cc, written from the format definitions)
// against the project's own encoders (runtime/core/half.h, float8.h): two implementations that
// must agree on every value, ties and saturation included.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/numeric.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"

namespace sparkstack::emu {
namespace {

TEST(EmuNumeric, Bf16RoundsToNearestEven) {
  std::mt19937 rng(1);
  std::vector<float> values = {0.0f,    -0.0f,    1.0f,   1.00390625f, 1.01171875f,
                               3.4e38f, -3.4e38f, 1e-40f, INFINITY,    -INFINITY};
  for (uint32_t bits = 0x3f800000u; bits < 0x3f800000u + 0x20000u; bits += 0x1000u - 1) {
    values.push_back(std::bit_cast<float>(bits));
  }
  for (int i = 0; i < 100000; ++i)
    values.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  for (float v : values) {
    if (std::isnan(v)) continue;
    const __nv_bfloat16 b = __float2bfloat16_rn(v);
    EXPECT_EQ(b.__x, FloatToBf16(v)) << v;
    EXPECT_EQ(__bfloat162float(b), Bf16ToFloat(b.__x)) << v;
  }
  EXPECT_TRUE(std::isnan(__bfloat162float(__float2bfloat16_rn(NAN))));
  const __nv_bfloat162 pair = __floats2bfloat162_rn(1.5f, -2.0f);
  EXPECT_EQ(__bfloat162float(pair.x), 1.5f);
  EXPECT_EQ(__bfloat162float(pair.y), -2.0f);
}

TEST(EmuNumeric, HalfDecodesEveryPattern) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float got = __half2float(__ushort_as_half(static_cast<unsigned short>(h)));
    const float want = F16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      EXPECT_EQ(got, want) << h;
      EXPECT_EQ(std::signbit(got), std::signbit(want)) << h;
    }
  }
}

TEST(EmuNumeric, E4M3RoundsToNearestEvenAndSaturates) {
  std::vector<double> values = {
      0.0, 448.0, 464.0, 465.0, 480.0, 1e9, 1.0 / 1024, 3.0 / 1024, 1.0 / 1024 + 1e-12, 1e-30};
  for (int b = 0; b < 0x7e; ++b) {
    const double lo = E4M3ToFloat(static_cast<uint8_t>(b));
    const double hi = E4M3ToFloat(static_cast<uint8_t>(b + 1));
    const double mid = (lo + hi) / 2;
    for (double v : {lo, hi, mid, std::nextafter(mid, 0.0), std::nextafter(mid, 1e9)}) {
      values.push_back(v);
    }
  }
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> exponent(-14.0, 10.0);
  for (int i = 0; i < 100000; ++i) values.push_back(std::exp2(exponent(rng)));
  for (double v : values) {
    for (double s : {v, -v}) {
      EXPECT_EQ(__nv_cvt_double_to_fp8(s, __NV_SATFINITE, __NV_E4M3), ToE4M3(s)) << s;
      if (std::fabs(s) < 464.0) {  // below the first value that rounds past 448
        EXPECT_EQ(__nv_cvt_double_to_fp8(s, __NV_NOSAT, __NV_E4M3), ToE4M3(s)) << s;
      }
    }
  }
  EXPECT_EQ(__nv_cvt_double_to_fp8(465.0, __NV_NOSAT, __NV_E4M3) & 0x7f, 0x7f);
  EXPECT_EQ(__nv_cvt_double_to_fp8(NAN, __NV_SATFINITE, __NV_E4M3) & 0x7f, 0x7f);
  EXPECT_EQ(__nv_cvt_float_to_fp8(448.0f, __NV_SATFINITE, __NV_E4M3), 0x7e);
}

}  // namespace
}  // namespace sparkstack::emu
