// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw, "Parallel Random
// Numbers: As Easy as 1, 2, 3" (SC11, 2011), with the constants of their Random123 library: a
// pure function of a 128-bit counter and a 64-bit key, so any draw can be computed on its own, on
// any thread, on the host or on the GPU, and always gives the same bits.
//
// Header-only and usable from CUDA device code: under nvcc every function is __host__ __device__.
// No standard-library types in the interface, so the same code compiles on both sides.
//
// Sampling convention (shared by every backend's sampler, see runtime/backend/sampling.h): the
// uniform for a sequence's n-th output token is SamplingUniform(seed, n).
#ifndef SPARKSTACK_RUNTIME_CORE_PHILOX_H_
#define SPARKSTACK_RUNTIME_CORE_PHILOX_H_

#include <cstdint>

#if defined(__CUDACC__)
#define SPARKSTACK_PHILOX_HD __host__ __device__ __forceinline__
#else
#define SPARKSTACK_PHILOX_HD inline
#endif

namespace sparkstack {

struct PhiloxCounter {
  uint32_t word[4];
};

struct PhiloxKey {
  uint32_t word[2];
};

namespace philox_internal {

// Multipliers and Weyl key increments of Philox4x32 (Random123's PHILOX_M4x32_0/1 and
// PHILOX_W32_0/1; the increments are the golden ratio and sqrt(3) - 1 in 0.32 fixed point).
inline constexpr uint32_t kMultiplier0 = 0xD2511F53u;
inline constexpr uint32_t kMultiplier1 = 0xCD9E8D57u;
inline constexpr uint32_t kKeyIncrement0 = 0x9E3779B9u;
inline constexpr uint32_t kKeyIncrement1 = 0xBB67AE85u;

SPARKSTACK_PHILOX_HD constexpr PhiloxCounter Round(PhiloxCounter c, PhiloxKey k) {
  const uint64_t product0 = static_cast<uint64_t>(kMultiplier0) * c.word[0];
  const uint64_t product1 = static_cast<uint64_t>(kMultiplier1) * c.word[2];
  const uint32_t hi0 = static_cast<uint32_t>(product0 >> 32), lo0 = static_cast<uint32_t>(product0);
  const uint32_t hi1 = static_cast<uint32_t>(product1 >> 32), lo1 = static_cast<uint32_t>(product1);
  return PhiloxCounter{{hi1 ^ c.word[1] ^ k.word[0], lo1, hi0 ^ c.word[3] ^ k.word[1], lo0}};
}

}  // namespace philox_internal

// Ten rounds; the key is bumped between rounds (not before the first).
SPARKSTACK_PHILOX_HD constexpr PhiloxCounter Philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key.word[0] += philox_internal::kKeyIncrement0;
      key.word[1] += philox_internal::kKeyIncrement1;
    }
    counter = philox_internal::Round(counter, key);
  }
  return counter;
}

// Uniform double in [0, 1) with 53 random bits: the top 26 bits of `hi` and the top 27 of `lo`
// make the integer m in [0, 2^53); the result is m * 2^-53 (exact, never 1).
SPARKSTACK_PHILOX_HD constexpr double UniformDouble(uint32_t hi, uint32_t lo) {
  const uint64_t m = (static_cast<uint64_t>(hi >> 6) << 27) | (lo >> 5);
  return static_cast<double>(m) * 0x1.0p-53;
}

// Uniform float in [0, 1) with 24 random bits: (x >> 8) * 2^-24 (exact, never 1).
SPARKSTACK_PHILOX_HD constexpr float UniformFloat(uint32_t x) {
  return static_cast<float>(x >> 8) * 0x1.0p-24f;
}

// The draw that picks a sequence's `output_index`-th output token (0-based) for a request with
// `seed`: key = (seed low word, seed high word), counter = (index low word, index high word, 0, 0),
// u = UniformDouble(word 0, word 1) of the output. Counter words 2 and 3 stay zero here; other
// uses of the same seed (say, speculative decoding) must set them to get independent streams.
SPARKSTACK_PHILOX_HD constexpr double SamplingUniform(uint64_t seed, uint64_t output_index) {
  const PhiloxKey key{{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}};
  const PhiloxCounter counter{
      {static_cast<uint32_t>(output_index), static_cast<uint32_t>(output_index >> 32), 0u, 0u}};
  const PhiloxCounter bits = Philox4x32_10(counter, key);
  return UniformDouble(bits.word[0], bits.word[1]);
}

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_CORE_PHILOX_H_
