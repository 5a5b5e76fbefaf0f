// Scalar conversions for the narrow float formats of NVFP4 checkpoints, host only.
//
// FP8 E4M3 ("e4m3fn", as torch.float8_e4m3fn and PTX .e4m3): 1 sign bit, 4 exponent bits (bias 7),
// 3 mantissa bits. No infinities; 0x7f and 0xff are NaN; the largest finite value is 448 (0x7e);
// subnormals are m * 2^-9 for m = 1..7.
//
// FP4 E2M1: bit 3 sign, bits 2:1 exponent (bias 1), bit 0 mantissa. Codes 0..7 are
// {0, 0.5, 1, 1.5, 2, 3, 4, 6}, 8..15 their negatives (0x8 is -0). No infinities or NaN.
//
// Rounding is round-to-nearest, ties to even, in both encoders, and both saturate:
//   * E4M3: |x| > 448 (and +-inf) gives +-448 ("satfinite", as PTX cvt.rn.satfinite); NaN gives
//     0x7f with the sign of the input.
//   * E2M1: |x| > 5 gives +-6; tie points 0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4.
//     The sign bit is set exactly when x < 0, so a negative value that rounds to zero is 0x8 (-0)
//     while -0.0 itself gives 0x0 (ModelOpt's `_cast_fp4` uses `weight < 0`). NaN gives 0x7 (+6),
//     which is what ModelOpt's searchsorted-based cast produces.
// The templates accept float or double; rounding is done once from the exact input value, so the
// double overloads are correctly rounded references for float64 math.
#ifndef SPARKSTACK_RUNTIME_CORE_FLOAT8_H_
#define SPARKSTACK_RUNTIME_CORE_FLOAT8_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace sparkstack {

inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kE2M1Max = 6.0f;
// Smallest positive E4M3 value (a subnormal): ModelOpt clamps block scales to at least this.
inline constexpr float kE4M3MinSubnormal = 1.0f / 512.0f;
inline constexpr uint8_t kE4M3NaN = 0x7f;

// Decoded e2m1 codes, indexed by the 4-bit code.
inline constexpr float kE2M1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// Exact decode of an E4M3 byte (NaN for 0x7f / 0xff).
inline float E4M3ToFloat(uint8_t bits) {
  const int exponent = (bits >> 3) & 0xf;
  const int mantissa = bits & 0x7;
  float magnitude;
  if (exponent == 0xf && mantissa == 0x7) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -9);
  } else {
    magnitude = std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);
  }
  return (bits & 0x80) ? -magnitude : magnitude;
}

// Round-to-nearest-even, saturating encode to E4M3 (see the file comment).
template <typename T>
uint8_t ToE4M3(T value) {
  static_assert(std::is_floating_point_v<T>);
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  if (std::isnan(value)) return sign | kE4M3NaN;
  const T magnitude = std::fabs(value);
  if (magnitude >= T(448)) return sign | 0x7e;  // also +-inf: satfinite
  if (magnitude < T(1) / T(64)) {
    // Subnormal range, quantum 2^-9. Scaling by a power of two is exact, and nearbyint rounds to
    // nearest even in the default rounding mode. q == 8 is the smallest normal, whose bits are 8.
    const T q = std::nearbyint(std::ldexp(magnitude, 9));
    return sign | static_cast<uint8_t>(q);
  }
  int exp2 = 0;
  std::frexp(magnitude, &exp2);  // magnitude = f * 2^exp2 with f in [0.5, 1)
  int e = exp2 - 1;              // magnitude in [2^e, 2^(e+1)), e in [-6, 8]
  T q = std::nearbyint(std::ldexp(magnitude, 3 - e));  // 8..16 quanta of 2^(e-3)
  if (q == T(16)) {
    q = T(8);
    ++e;
  }
  if (e > 8) return sign | 0x7e;  // cannot happen below 448, kept for safety
  const int bits = ((e + 7) << 3) | (static_cast<int>(q) - 8);
  if (bits > 0x7e) return sign | 0x7e;  // 464 and above rounds past 448: saturate
  return sign | static_cast<uint8_t>(bits);
}

inline uint8_t FloatToE4M3(float value) { return ToE4M3(value); }

// Round-to-nearest-even, saturating encode to an e2m1 code (see the file comment).
template <typename T>
uint8_t ToE2M1(T value) {
  static_assert(std::is_floating_point_v<T>);
  const uint8_t sign = value < T(0) ? 0x8 : 0x0;
  if (std::isnan(value)) return 0x7;
  const T a = std::fabs(value);
  uint8_t code;
  if (a <= T(0.25)) {
    code = 0;
  } else if (a < T(0.75)) {
    code = 1;
  } else if (a <= T(1.25)) {
    code = 2;
  } else if (a < T(1.75)) {
    code = 3;
  } else if (a <= T(2.5)) {
    code = 4;
  } else if (a < T(3.5)) {
    code = 5;
  } else if (a <= T(5)) {
    code = 6;
  } else {
    code = 7;
  }
  return sign | code;
}

inline uint8_t FloatToE2M1(float value) { return ToE2M1(value); }
inline float E2M1ToFloat(uint8_t code) { return kE2M1Values[code & 0xf]; }

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_CORE_FLOAT8_H_
